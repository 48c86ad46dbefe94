package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// lockedBuffer is a log sink safe for the app's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretsStayOut runs deflectd at debug level with a secret in every
// place it takes one (the ARI password, the WhatsApp token, app secret and
// verify token, the admin token, an inbox user's password), drives the
// paths that handle them, right and wrong (signed and forged webhooks,
// the verification handshake, sign-ins, reloads, a send Meta refuses for
// a bad token), and then looks for each secret in everything the process
// wrote: its logs, /metrics, and every answer it gave.
func TestSecretsStayOut(t *testing.T) {
	sec := &testSecrets{token: "EAAG-wa-token-7c1d9e2f", appSecret: "app-secret-4b8a0c6d", verify: "verify-token-93e1f7a2"}
	const adminToken = "admin-token-5f2b8d1e9c3a"
	const password = "change-me-now" // the sample users file's
	var logs lockedBuffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	e := startTestApp(t, testAppOptions{secrets: sec, logger: logger, extra: "admin_token_file: admin.token\n", prep: func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(adminToken), 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	base := e.bases[listenAll]
	var answers strings.Builder
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	do := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers.WriteString(resp.Status + " ")
		for k, v := range resp.Header {
			if k != "Set-Cookie" { // the session cookie is the user's own
				answers.WriteString(k + ": " + strings.Join(v, ",") + " ")
			}
		}
		answers.Write(b)
		answers.WriteString("\n")
		return resp.StatusCode, string(b)
	}

	// Webhooks: a signed message, a forged one, the handshake right and
	// wrong.
	if _, err := e.wa.SendText(t.Context(), "5491155550123", "Hola, mi factura"); err != nil {
		t.Fatal(err)
	}
	do("POST", "/webhook", `{"object":"whatsapp_business_account","entry":[]}`, "X-Hub-Signature-256", "sha256=00", "Content-Type", "application/json")
	do("GET", "/webhook?hub.mode=subscribe&hub.verify_token="+sec.verify+"&hub.challenge=1", "")
	do("GET", "/webhook?hub.mode=subscribe&hub.verify_token=not-"+sec.verify+"&hub.challenge=1", "")
	// Admin: reload with no token, a wrong one, the right one.
	do("POST", "/-/reload", "")
	do("POST", "/-/reload", "", "Authorization", "Bearer not-"+adminToken)
	do("POST", "/-/reload", "", "Authorization", "Bearer "+adminToken)
	// Sign-ins: wrong, then right, then a reply Meta refuses for the
	// token (190), which the outbox logs.
	do("POST", "/api/v1/inbox/login", `{"user":"diego","password":"not-`+password+`"}`)
	code, body := do("POST", "/api/v1/inbox/login", `{"user":"diego","password":"`+password+`"}`)
	if code != http.StatusOK {
		t.Fatalf("login = %d %s", code, body)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &login)
	id := "wa5491155550123"
	// The customer's message is in once the conversation shows.
	for tick, timeout := time.NewTicker(20*time.Millisecond), time.After(10*time.Second); ; {
		if code, _ := do("GET", "/api/v1/inbox/conversations/"+id, ""); code == http.StatusOK {
			tick.Stop()
			break
		}
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatal("the customer's message never reached the inbox")
		}
	}
	e.wa.FailNext(1, whatsapptest.Fault{Code: 190})
	do("POST", "/api/v1/inbox/conversations/"+id+"/reply", `{"text":"Hola"}`, "X-CSRF-Token", login.CSRF, "Content-Type", "application/json")
	do("GET", "/api/v1/inbox/conversations/"+id, "")
	do("GET", "/metrics", "")
	// Let the outbox try the send and log what Meta said.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
wait:
	for !strings.Contains(logs.String(), "190") {
		select {
		case <-tick.C:
		case <-timeout:
			break wait
		}
	}
	if !strings.Contains(logs.String(), "190") {
		t.Errorf("the refused send (190) was never logged: the test did not cover that path")
	}

	secrets := map[string]string{"the ARI password": "aritest-secret", "the WhatsApp token": sec.token,
		"the app secret": sec.appSecret, "the verify token": sec.verify, "the admin token": adminToken,
		"the user's password": password}
	look := func(where, written string, secrets map[string]string) {
		for what, s := range secrets {
			if s == "" {
				t.Fatalf("%s is empty", what)
			}
			if i := strings.Index(written, s); i >= 0 {
				lo, hi := max(0, i-200), min(len(written), i+len(s)+100)
				t.Errorf("%s appears in %s: …%s…", what, where, written[lo:hi])
			}
		}
	}
	look("the answers", answers.String(), secrets)
	// The CSRF token is the signed-in browser's to have; never the logs'.
	secrets["the CSRF token"] = login.CSRF
	look("the logs", logs.String(), secrets)
	t.Logf("checked %d bytes of logs and %d bytes of answers", len(logs.String()), answers.Len())
	if t.Failed() {
		t.Logf("logs:\n%s", logs.String())
	}
}
