package whatsapp

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Config is the WhatsApp part of deflectd's configuration file. Secrets are
// not in it: the access token and the app secret come from the environment
// or from files (Docker and Kubernetes secrets), so the file can be
// committed and shown.
type Config struct {
	// BaseURL is the Graph API root; empty is Meta's.
	BaseURL string `yaml:"base_url"`
	// Version is the Graph API version; empty is DefaultVersion.
	Version string `yaml:"version"`
	// PhoneNumberID is the business number's id in WhatsApp Manager.
	PhoneNumberID string `yaml:"phone_number_id"`
	// TokenFile and AppSecretFile name files holding the secrets; the
	// environment variables DEFLECTD_WA_TOKEN and DEFLECTD_WA_APP_SECRET
	// are used when they are empty.
	TokenFile     string `yaml:"token_file"`
	AppSecretFile string `yaml:"app_secret_file"`
	// VerifyTokenFile names the file with the webhook verify token;
	// default DEFLECTD_WA_VERIFY_TOKEN.
	VerifyTokenFile string `yaml:"verify_token_file"`
}

// Secrets are the credentials Config points at. They have no String or
// JSON form, so logging a Secrets by accident prints nothing useful.
type Secrets struct {
	Token, AppSecret, VerifyToken secret
}

// secret is a string that formats as "[redacted]".
type secret string

func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return "[redacted]" }
func (secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
func (s secret) Reveal() string             { return string(s) }
func (s secret) empty() bool                { return strings.TrimSpace(string(s)) == "" }

// LoadSecrets reads the credentials, each from its file when one is named,
// else from its environment variable. getenv is os.Getenv outside tests.
func (c Config) LoadSecrets(getenv func(string) string) (Secrets, error) {
	var s Secrets
	var errs []error
	load := func(dst *secret, file, env, what string) {
		v := getenv(env)
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("whatsapp: %s: %w", what, err))
				return
			}
			v = string(b)
		}
		*dst = secret(strings.TrimSpace(v))
		if dst.empty() {
			errs = append(errs, fmt.Errorf("whatsapp: no %s: set %s or the config's file for it", what, env))
		}
	}
	load(&s.Token, c.TokenFile, "DEFLECTD_WA_TOKEN", "access token")
	load(&s.AppSecret, c.AppSecretFile, "DEFLECTD_WA_APP_SECRET", "app secret")
	load(&s.VerifyToken, c.VerifyTokenFile, "DEFLECTD_WA_VERIFY_TOKEN", "webhook verify token")
	return s, errors.Join(errs...)
}

// ClientOptions returns the client's options for c and the loaded secrets.
func (c Config) ClientOptions(s Secrets) ClientOptions {
	return ClientOptions{BaseURL: c.BaseURL, Version: c.Version, PhoneNumberID: c.PhoneNumberID, Token: s.Token.Reveal()}
}

// Validate checks what can be checked without the secrets.
func (c Config) Validate() error {
	if c.PhoneNumberID == "" {
		return errors.New("whatsapp: phone_number_id is required")
	}
	if c.Version != "" && !strings.HasPrefix(c.Version, "v") {
		return fmt.Errorf("whatsapp: version %q: want a Graph API version such as %s", c.Version, DefaultVersion)
	}
	return nil
}
