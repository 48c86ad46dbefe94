package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader is the header in which Meta signs every webhook POST.
const SignatureHeader = "X-Hub-Signature-256"

// Errors of VerifySignature. The handler answers 401 to all of them; they
// are distinct so the log says whether a caller sent no signature, a broken
// one, or a wrong one (a wrong one usually means a wrong app secret).
var (
	ErrNoSecret           = errors.New("webhook: no app secret configured")
	ErrNoSignature        = errors.New("webhook: no " + SignatureHeader + " header")
	ErrMalformedSignature = errors.New("webhook: malformed " + SignatureHeader + " header, want sha256=<64 hex digits>")
	ErrSignatureMismatch  = errors.New("webhook: " + SignatureHeader + " does not match the body (wrong app secret, or the body was altered)")
)

const signaturePrefix = "sha256="

// VerifySignature checks header, the value of X-Hub-Signature-256
// ("sha256=<hex>"), against the HMAC-SHA256 of body keyed with secret.
// body must be the raw bytes as received: re-encoded JSON would not match.
// The comparison takes constant time, so a forger cannot learn the
// signature byte by byte from response times.
func VerifySignature(body []byte, header string, secret []byte) error {
	// An empty key is a key anyone can use: refuse rather than accept
	// signatures forged with it.
	if len(secret) == 0 {
		return ErrNoSecret
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	if len(header) < len(signaturePrefix) || !strings.EqualFold(header[:len(signaturePrefix)], signaturePrefix) {
		return ErrMalformedSignature
	}
	got, err := hex.DecodeString(header[len(signaturePrefix):])
	if err != nil || len(got) != sha256.Size {
		return ErrMalformedSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrSignatureMismatch
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value Meta would send for body: for
// tests and for the fake Cloud API, which must send webhooks a real
// deployment accepts.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}
