package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/whatsapp"
	"go.yaml.in/yaml/v3"
)

// Config is deflectd's configuration file (configs/deflectd/deflectd.yaml
// is the commented sample). Secrets are never in it: passwords and tokens
// come from environment variables or the files it names.
type Config struct {
	// Listen is the HTTP address of everything: /metrics, the health
	// checks, the WhatsApp webhook, /-/reload, the dry-run API and the
	// inbox. Listeners, when set, splits them instead.
	Listen string `yaml:"listen"`
	// Listeners serves the admin endpoints, the inbox and the webhook on
	// listeners of their own (listeners.go).
	Listeners *ListenersConfig `yaml:"listeners"`
	// AdminTokenFile holds the bearer token that /-/reload and the
	// dry-run API need. Required when they are served off loopback.
	AdminTokenFile string `yaml:"admin_token_file"`
	// RedisURL is the shared state; several instances may share it.
	RedisURL string `yaml:"redis_url"`
	// KeyPrefix starts every Redis key, so several deployments can share
	// one Redis.
	KeyPrefix string `yaml:"key_prefix"`

	ARI struct {
		URL          string `yaml:"url"`
		User         string `yaml:"user"`
		PasswordFile string `yaml:"password_file"` // else DEFLECTD_ARI_PASSWORD
		App          string `yaml:"app"`
		QueueContext string `yaml:"queue_context"`
		// MaxConnections bounds this instance's HTTP connections to
		// Asterisk (default 32); keep the sum over instances under
		// http.conf's sessionlimit.
		MaxConnections int `yaml:"max_connections"`
	} `yaml:"ari"`

	Calls struct {
		// Queues are the queues served; their metrics exist from start.
		Queues            []string          `yaml:"queues"`
		DefaultRegion     string            `yaml:"default_region"`
		DefaultLanguage   string            `yaml:"default_language"`
		TemplateLanguages map[string]string `yaml:"template_languages"`
		Cooldown          time.Duration     `yaml:"cooldown"`
		QueueTimeout      time.Duration     `yaml:"queue_timeout"`
		// QueueExitKey is the key a deflected caller leaves the queue
		// with, so queue_log says EXITWITHKEY, not ABANDON (configs/asterisk
		// README); "none" hangs the queue half up. Default "D".
		QueueExitKey string `yaml:"queue_exit_key"`
	} `yaml:"calls"`

	// RulesFile and TemplatesFile are relative to this file's directory.
	RulesFile     string `yaml:"rules_file"`
	TemplatesFile string `yaml:"templates_file"`

	WhatsApp struct {
		whatsapp.Config  `yaml:",inline"`
		MPS              int           `yaml:"mps"`
		TierLimit        int           `yaml:"tier_limit"`
		ConversionWindow time.Duration `yaml:"conversion_window"`
		// PairInterval is the least time between two messages to one
		// customer (Meta's pair rate limit). Default 6 s.
		PairInterval   time.Duration `yaml:"pair_interval"`
		OptOutKeywords []string      `yaml:"opt_out_keywords"`
	} `yaml:"whatsapp"`

	// Inbox, when present, runs the WhatsApp team inbox: its API under
	// /api/v1/inbox/ (docs/inbox.md).
	Inbox *inbox.Config `yaml:"inbox"`
	// SecureCookies marks the inbox's session cookie Secure: set it when
	// deflectd is reached over HTTPS.
	SecureCookies bool `yaml:"secure_cookies"`

	dir string // the file's directory, for relative paths
}

// loadConfig reads and checks the configuration file: unknown keys are
// errors, as are missing required settings.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Config{dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, "127.0.0.1:9102")
	def(&c.KeyPrefix, "deflectd:")
	def(&c.ARI.URL, "http://127.0.0.1:8088/ari")
	def(&c.ARI.User, "deflectd")
	def(&c.ARI.App, "deflect")
	def(&c.ARI.QueueContext, "queue-entry")
	def(&c.RulesFile, "rules.yaml")
	def(&c.TemplatesFile, "templates.yaml")
}

func (c *Config) validate() error {
	var errs []error
	if c.RedisURL == "" {
		errs = append(errs, errors.New("redis_url is required"))
	}
	errs = append(errs, c.validateListeners()...)
	if err := c.WhatsApp.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if k := c.Calls.QueueExitKey; k != "" && k != "none" && (len(k) != 1 || !strings.Contains("0123456789*#ABCD", k)) {
		errs = append(errs, fmt.Errorf("calls.queue_exit_key: %q is not one DTMF key (0-9, *, #, A-D) or none", k))
	}
	if c.WhatsApp.PairInterval < 0 {
		errs = append(errs, fmt.Errorf("whatsapp.pair_interval: %v must not be negative", c.WhatsApp.PairInterval))
	}
	if c.Inbox != nil {
		if err := c.Inbox.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.Inbox.UsersFile == "" {
			errs = append(errs, errors.New("inbox.users_file is required"))
		}
	}
	return errors.Join(errs...)
}

// path resolves a file named in the config.
func (c *Config) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// ariPassword reads the ARI password from its file or the environment.
func (c *Config) ariPassword(getenv func(string) string) (string, error) {
	if c.ARI.PasswordFile != "" {
		b, err := os.ReadFile(c.path(c.ARI.PasswordFile))
		if err != nil {
			return "", fmt.Errorf("reading the ARI password: %w", err)
		}
		return string(bytes.TrimSpace(b)), nil
	}
	if pw := getenv("DEFLECTD_ARI_PASSWORD"); pw != "" {
		return pw, nil
	}
	return "", errors.New("no ARI password: set DEFLECTD_ARI_PASSWORD or ari.password_file")
}

// loadUsers reads the inbox's users file and checks its teams.
func (c *Config) loadUsers() (*inbox.Directory, error) {
	d, err := inbox.LoadUsers(c.path(c.Inbox.UsersFile))
	if err != nil {
		return nil, err
	}
	if err := d.CheckTeams(c.Inbox.TeamNames()); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Inbox.UsersFile, err)
	}
	return d, nil
}
