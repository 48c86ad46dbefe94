package main

// The HTTP surface, split by who may reach it. The admin listener (metrics,
// health, reload, dry-run) stays on loopback or behind a token; the inbox
// listener (the web UI and its API) faces the agents' browsers; the
// webhook listener faces Meta, through the company's reverse proxy. A path
// asked of the wrong listener is a 404, so opening one port for agents
// does not open the others' endpoints.

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ListenerConfig is one HTTP listener.
type ListenerConfig struct {
	// Address is host:port. Its host decides whether it is on loopback.
	Address string `yaml:"address"`
	// TLSCertFile and TLSKeyFile serve HTTPS; both or neither.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ClientCAFile, with TLS, requires client certificates signed by it
	// (for a reverse proxy that authenticates itself).
	ClientCAFile string `yaml:"client_ca_file"`
}

// ListenersConfig splits the HTTP surface into three listeners.
type ListenersConfig struct {
	Admin   ListenerConfig `yaml:"admin"`
	Inbox   ListenerConfig `yaml:"inbox"`
	Webhook ListenerConfig `yaml:"webhook"`
}

// The listeners' names, as config keys, AppOptions.Listeners keys and log
// fields use them.
const (
	listenAll     = "all" // Listen: everything on one listener
	listenAdmin   = "admin"
	listenInbox   = "inbox"
	listenWebhook = "webhook"
)

// loopback reports whether addr's host only accepts local connections.
// An empty host (":9102") is every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateListeners checks the listen settings: with listeners, each one
// of them; without, Listen alone. An admin surface off loopback needs
// admin_token_file.
func (c *Config) validateListeners() []error {
	var errs []error
	if c.Listeners == nil {
		if !loopback(c.Listen) && c.AdminTokenFile == "" {
			errs = append(errs, fmt.Errorf("listen: %s is not on loopback and serves the admin endpoints (reload, dry-run): "+
				"set admin_token_file, or split the listeners (listeners.admin on 127.0.0.1)", c.Listen))
		}
		return errs
	}
	seen := map[string]string{}
	check := func(name string, l ListenerConfig, required bool) {
		key := "listeners." + name
		if l.Address == "" {
			if required {
				errs = append(errs, fmt.Errorf("%s.address is required", key))
			}
			if l.TLSCertFile != "" || l.TLSKeyFile != "" || l.ClientCAFile != "" {
				errs = append(errs, fmt.Errorf("%s: TLS files without an address", key))
			}
			return
		}
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %q: want host:port", key, l.Address))
		}
		if other, dup := seen[l.Address]; dup {
			errs = append(errs, fmt.Errorf("%s.address: %s is also listeners.%s's", key, l.Address, other))
		}
		seen[l.Address] = name
		if (l.TLSCertFile == "") != (l.TLSKeyFile == "") {
			errs = append(errs, fmt.Errorf("%s: tls_cert_file and tls_key_file go together", key))
		}
		if l.ClientCAFile != "" && l.TLSCertFile == "" {
			errs = append(errs, fmt.Errorf("%s.client_ca_file needs tls_cert_file and tls_key_file", key))
		}
	}
	check(listenAdmin, c.Listeners.Admin, true)
	check(listenInbox, c.Listeners.Inbox, c.Inbox != nil)
	check(listenWebhook, c.Listeners.Webhook, true)
	if c.Inbox == nil && c.Listeners.Inbox.Address != "" {
		errs = append(errs, errors.New("listeners.inbox: there is no inbox section to serve"))
	}
	if a := c.Listeners.Admin.Address; a != "" && !loopback(a) && c.AdminTokenFile == "" {
		errs = append(errs, fmt.Errorf("listeners.admin.address: %s is not on loopback: admin_token_file is required", a))
	}
	return errs
}

// listenerConfigs returns what to serve, by listener name.
func (c *Config) listenerConfigs() map[string]ListenerConfig {
	if c.Listeners == nil {
		return map[string]ListenerConfig{listenAll: {Address: c.Listen}}
	}
	out := map[string]ListenerConfig{listenAdmin: c.Listeners.Admin, listenWebhook: c.Listeners.Webhook}
	if c.Inbox != nil {
		out[listenInbox] = c.Listeners.Inbox
	}
	return out
}

// tlsConfig loads a listener's certificate and client CA; nil without TLS.
func (c *Config) tlsConfig(l ListenerConfig) (*tls.Config, error) {
	if l.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.path(l.TLSCertFile), c.path(l.TLSKeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate: %w", err)
	}
	t := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if l.ClientCAFile != "" {
		pem, err := os.ReadFile(c.path(l.ClientCAFile))
		if err != nil {
			return nil, fmt.Errorf("reading the client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", l.ClientCAFile)
		}
		t.ClientCAs, t.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// adminToken reads admin_token_file; "" when there is none.
func (c *Config) adminToken() (string, error) {
	if c.AdminTokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.path(c.AdminTokenFile))
	if err != nil {
		return "", fmt.Errorf("reading admin_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", errors.New("admin_token_file: the token needs at least 16 characters")
	}
	return tok, nil
}

// requireAdmin guards an admin endpoint that changes state with the
// admin token, when one is configured.
func requireAdmin(token string, h http.HandlerFunc) http.HandlerFunc {
	if token == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deflectd admin"`)
			http.Error(w, "this admin endpoint needs the admin token (Authorization: Bearer ...)", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// Limits of every HTTP server deflectd runs. Bodies are bounded by each
// handler (the webhook at 1 MiB, the inbox API at 64 KiB), which answer
// 413 from Content-Length before reading.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 30 * time.Second
	// httpWriteTimeout bounds a response; the inbox's event stream,
	// which lasts, lifts it for itself.
	httpWriteTimeout  = 60 * time.Second
	httpIdleTimeout   = 2 * time.Minute
	httpMaxHeaderSize = 64 << 10
)

// newHTTPServer returns a server with deflectd's limits.
func newHTTPServer(h http.Handler, t *tls.Config) *http.Server {
	return &http.Server{Handler: h, TLSConfig: t, ReadHeaderTimeout: httpReadHeaderTimeout, ReadTimeout: httpReadTimeout,
		WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: httpMaxHeaderSize}
}
