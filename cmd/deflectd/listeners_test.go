package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
)

var inboxConfigForTest = inbox.Config{Teams: []inbox.TeamConfig{{Name: "support"}}}

func joinErrs(errs []error) error { return errors.Join(errs...) }

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9102": true, "127.8.0.1:80": true, "[::1]:9102": true, "localhost:9102": true,
		":9102": false, "0.0.0.0:9102": false, "[::]:9102": false, "10.0.0.5:9102": false, "inbox.example.com:443": false, "garbage": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The listen settings are checked before anything starts: an admin
// surface off loopback needs a token, and each listener's settings must
// make sense.
func TestValidateListeners(t *testing.T) {
	l := func(addr string) ListenerConfig { return ListenerConfig{Address: addr} }
	split := func(admin, inbox, webhook ListenerConfig) *ListenersConfig {
		return &ListenersConfig{Admin: admin, Inbox: inbox, Webhook: webhook}
	}
	tests := []struct {
		name      string
		cfg       Config
		withInbox bool
		want      string // "" for valid
	}{
		{"listen on loopback", Config{Listen: "127.0.0.1:9102"}, false, ""},
		{"listen everywhere", Config{Listen: ":9102"}, false, "listen: :9102 is not on loopback"},
		{"listen everywhere with a token", Config{Listen: ":9102", AdminTokenFile: "admin.token"}, false, ""},
		{"split", Config{Listeners: split(l("127.0.0.1:9102"), l("0.0.0.0:8443"), l("0.0.0.0:8080"))}, true, ""},
		{"admin off loopback", Config{Listeners: split(l("0.0.0.0:9102"), l(":8443"), l(":8080"))}, true,
			"listeners.admin.address: 0.0.0.0:9102 is not on loopback: admin_token_file is required"},
		{"admin off loopback with a token", Config{AdminTokenFile: "t", Listeners: split(l("0.0.0.0:9102"), l(":8443"), l(":8080"))}, true, ""},
		{"no webhook", Config{Listeners: split(l("127.0.0.1:9102"), l(":8443"), l(""))}, true, "listeners.webhook.address is required"},
		{"no inbox listener", Config{Listeners: split(l("127.0.0.1:9102"), l(""), l(":8080"))}, true, "listeners.inbox.address is required"},
		{"inbox listener, no inbox", Config{Listeners: split(l("127.0.0.1:9102"), l(":8443"), l(":8080"))}, false,
			"listeners.inbox: there is no inbox section"},
		{"same address", Config{Listeners: split(l("127.0.0.1:9102"), l(":8443"), l(":8443"))}, true, "is also listeners.inbox's"},
		{"bad address", Config{Listeners: split(l("127.0.0.1"), l(":8443"), l(":8080"))}, true, `listeners.admin.address: "127.0.0.1": want host:port`},
		{"cert without key", Config{Listeners: split(l("127.0.0.1:9102"), ListenerConfig{Address: ":8443", TLSCertFile: "c.pem"}, l(":8080"))}, true,
			"listeners.inbox: tls_cert_file and tls_key_file go together"},
		{"client CA without TLS", Config{Listeners: split(l("127.0.0.1:9102"), l(":8443"), ListenerConfig{Address: ":8080", ClientCAFile: "ca.pem"})}, true,
			"listeners.webhook.client_ca_file needs tls_cert_file and tls_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			if tt.withInbox {
				c.Inbox = &inboxConfigForTest
			}
			err := joinErrs(c.validateListeners())
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("validateListeners() = %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("validateListeners() = %v, want %q", err, tt.want)
			}
		})
	}
}

// Split listeners: each serves its own paths and answers 404 for the
// others', so that opening the inbox's port to agents (or the webhook's
// to Meta) opens nothing else. The admin endpoints that change state take
// the admin token.
func TestSplitListeners(t *testing.T) {
	const token = "an-admin-token-of-some-length"
	bases := startTestApp(t, testAppOptions{split: true, extra: `listeners:
  admin: {address: "127.0.0.1:1"}
  inbox: {address: "127.0.0.1:2"}
  webhook: {address: "127.0.0.1:3"}
admin_token_file: admin.token
`, prep: func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}}).bases
	type call struct{ method, path string }
	served := map[string][]call{
		listenAdmin:   {{"GET", "/metrics"}, {"GET", "/-/ready"}, {"POST", "/-/reload"}, {"POST", "/api/v1/dry-run"}},
		listenInbox:   {{"GET", "/inbox/"}, {"GET", "/inbox/assets/app.js"}, {"GET", "/api/v1/inbox/me"}},
		listenWebhook: {{"GET", "/webhook?hub.mode=subscribe&hub.verify_token=verify&hub.challenge=42"}, {"POST", "/webhook"}},
	}
	for name, base := range bases {
		if code, _ := get(t, "GET", base+"/-/healthy", ""); code != http.StatusOK {
			t.Errorf("%s: GET /-/healthy = %d, want 200", name, code)
		}
		for other, calls := range served {
			for _, c := range calls {
				code, body := get(t, c.method, base+c.path, "")
				if other == name && code == http.StatusNotFound {
					t.Errorf("%s: %s %s = 404, want it served", name, c.method, c.path)
				}
				if other != name && code != http.StatusNotFound {
					t.Errorf("%s: %s %s (%s's) = %d %q, want 404", name, c.method, c.path, other, code, body)
				}
			}
		}
	}
	admin := bases[listenAdmin]
	if code, _ := get(t, "POST", admin+"/-/reload", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /-/reload without the token = %d, want 401", code)
	}
	for _, tok := range []string{"wrong", token} {
		req, _ := http.NewRequest("POST", admin+"/-/reload", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusUnauthorized
		if tok == token {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("POST /-/reload with token %q = %d, want %d", tok, resp.StatusCode, want)
		}
	}
	if code, _ := get(t, "POST", admin+"/api/v1/dry-run", `{"queue":"sales"}`); code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/dry-run without the token = %d, want 401", code)
	}
}

// A listener with TLS and a client CA: the server's certificate is
// served, and a client without a certificate of that CA is refused in
// the handshake.
func TestListenerTLS(t *testing.T) {
	ca, caKey := newCert(t, nil, nil, "test CA", true)
	srvCert, srvKey := newCert(t, ca, caKey, "127.0.0.1", false)
	cliCert, cliKey := newCert(t, ca, caKey, "reverse proxy", false)
	bases := startTestApp(t, testAppOptions{split: true, tls: map[string]bool{listenInbox: true}, extra: `listeners:
  admin: {address: "127.0.0.1:1"}
  inbox: {address: "127.0.0.1:2", tls_cert_file: inbox.crt, tls_key_file: inbox.key, client_ca_file: ca.crt}
  webhook: {address: "127.0.0.1:3"}
`, prep: func(dir string) {
		writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", ca.Raw)
		writePEM(t, filepath.Join(dir, "inbox.crt"), "CERTIFICATE", srvCert.Raw)
		writeKey(t, filepath.Join(dir, "inbox.key"), srvKey)
	}}).bases
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	if _, err := client().Get(bases[listenInbox] + "/-/healthy"); err == nil {
		t.Error("a client without a certificate got through")
	}
	resp, err := client(tls.Certificate{Certificate: [][]byte{cliCert.Raw}, PrivateKey: cliKey}).Get(bases[listenInbox] + "/inbox/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET /inbox/ over TLS = %d (tls %v), want 200", resp.StatusCode, resp.TLS != nil)
	}
}

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, IsCA: isCA}
	if ip := net.ParseIP(name); ip != nil {
		tpl.IPAddresses = []net.IP{ip}
	}
	signer, signKey := tpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}

// The admin endpoints refuse what they do not take: /-/reload a body (it
// reloads the files the config names), the dry-run API a body past its
// limit, with 413 from Content-Length before reading it.
func TestAdminBodies(t *testing.T) {
	base, _ := testApp(t)
	if code, body := get(t, "POST", base+"/-/reload", `{"rules":"mine"}`); code != http.StatusBadRequest || !strings.Contains(body, "takes no body") {
		t.Errorf("POST /-/reload with a body = %d %q, want 400", code, body)
	}
	if code, body := get(t, "POST", base+"/-/reload", ""); code != http.StatusOK {
		t.Errorf("POST /-/reload = %d %q, want 200", code, body)
	}
	big := strings.Repeat("a", 10<<20)
	if code, body := get(t, "POST", base+"/api/v1/dry-run", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /api/v1/dry-run with 10 MB = %d %q, want 413", code, body)
	}
}
