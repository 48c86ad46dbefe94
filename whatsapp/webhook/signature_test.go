package webhook

import (
	"errors"
	"strings"
	"testing"
)

func TestVerifySignature(t *testing.T) {
	secret := []byte("app-secret")
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	good := Sign(body, secret)
	tests := []struct {
		name   string
		body   []byte
		header string
		secret []byte
		want   error
	}{
		{"valid", body, good, secret, nil},
		{"upper-case hex", body, "sha256=" + strings.ToUpper(good[len("sha256="):]), secret, nil},
		{"upper-case prefix", body, "SHA256=" + good[len("sha256="):], secret, nil},
		{"surrounding spaces", body, " " + good + " ", secret, nil},
		{"no header", body, "", secret, ErrNoSignature},
		{"no secret", body, good, nil, ErrNoSecret},
		{"sha1 signature", body, "sha1=" + good[len("sha256="):], secret, ErrMalformedSignature},
		{"bare hex", body, good[len("sha256="):], secret, ErrMalformedSignature},
		{"not hex", body, "sha256=" + strings.Repeat("zz", 32), secret, ErrMalformedSignature},
		{"short", body, good[:len(good)-2], secret, ErrMalformedSignature},
		{"prefix only", body, "sha256=", secret, ErrMalformedSignature},
		{"wrong secret", body, good, []byte("other-secret"), ErrSignatureMismatch},
		{"body altered", append([]byte(" "), body...), good, secret, ErrSignatureMismatch},
		{"signature of re-encoded JSON", []byte(`{"entry":[],"object":"whatsapp_business_account"}`), good, secret, ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.body, tt.header, tt.secret); !errors.Is(got, tt.want) {
				t.Errorf("VerifySignature(%.40q, %q) = %v, want %v", tt.body, tt.header, got, tt.want)
			}
		})
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(`{"object":"whatsapp_business_account"}`), "sha256=00", []byte("secret"))
	f.Add([]byte(""), "", []byte(""))
	f.Add([]byte("x"), Sign([]byte("x"), []byte("k")), []byte("k"))
	f.Add([]byte("x"), "SHA256="+strings.Repeat("A", 64), []byte("k"))
	f.Fuzz(func(t *testing.T, body []byte, header string, secret []byte) {
		err := VerifySignature(body, header, secret)
		// Only the one true signature (in either hex case) may pass.
		if err == nil && !strings.EqualFold(strings.TrimSpace(header), Sign(body, secret)) {
			t.Fatalf("VerifySignature(%q, %q, %q) = nil for a header other than %q", body, header, secret, Sign(body, secret))
		}
		if len(secret) > 0 {
			if err := VerifySignature(body, Sign(body, secret), secret); err != nil {
				t.Fatalf("VerifySignature(%q, Sign(), %q) = %v, want nil", body, secret, err)
			}
		}
	})
}
