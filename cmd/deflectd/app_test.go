package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testApp runs the whole app in-process against the fake Asterisk, a real
// Redis and the fake Cloud API, with a copy of the sample rules and
// templates it may break.
func testApp(t *testing.T) (base string, dir string) {
	t.Helper()
	e := startTestApp(t, testAppOptions{})
	return e.bases[listenAll], e.dir
}

// testAppOptions vary testApp's app.
type testAppOptions struct {
	// extra is appended to the config file; prep runs on the config's
	// directory before the app loads it.
	extra string
	prep  func(dir string)
	// split serves the admin, inbox and webhook listeners apart; tls
	// names those that serve HTTPS (extra must name their files).
	split bool
	tls   map[string]bool
	// secrets replaces the WhatsApp token, app secret and verify token
	// ("tok", "secret", "verify"); logger the test's logger.
	secrets *testSecrets
	logger  *zap.Logger
}

// testSecrets are the app's WhatsApp secrets.
type testSecrets struct{ token, appSecret, verify string }

// startTestApp is testApp with options.
func startTestApp(t *testing.T, o testAppOptions) *testAppEnv {
	t.Helper()
	fake := aritest.NewServer()
	t.Cleanup(fake.Close)
	sec := o.secrets
	if sec == nil {
		sec = &testSecrets{token: "tok", appSecret: "secret", verify: "verify"}
	}
	wa := whatsapptest.NewServer(whatsapptest.Options{Token: sec.token, AppSecret: sec.appSecret})
	t.Cleanup(wa.Close)
	rs := redistest.Start(t)

	dir := t.TempDir()
	for _, f := range []string{"rules.yaml", "templates.yaml", "users.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../configs/deflectd", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
redis_url: %s
key_prefix: %q
ari:
  url: %s
  user: %s
calls:
  queues: [sales, support]
whatsapp:
  base_url: %s
  phone_number_id: %q
inbox:
  users_file: users.yaml
  teams: [{name: sales}, {name: billing, business_hours: business_hours}, {name: support}]
`, rs.URL(), rs.Prefix, fake.URL, fake.Username, wa.URL, wa.PhoneNumberID) + o.extra
	if o.prep != nil {
		o.prep(dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "deflectd.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEFLECTD_ARI_PASSWORD": fake.Password, "DEFLECTD_WA_TOKEN": sec.token,
		"DEFLECTD_WA_APP_SECRET": sec.appSecret, "DEFLECTD_WA_VERIFY_TOKEN": sec.verify}
	logger := o.logger
	if logger == nil {
		logger = zaptest.NewLogger(t)
	}
	names := []string{listenAll}
	if o.split {
		names = []string{listenAdmin, listenInbox, listenWebhook}
	}
	lns := map[string]net.Listener{}
	bases := map[string]string{}
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[name] = ln
		scheme := "http://"
		if o.tls[name] {
			scheme = "https://"
		}
		bases[name] = scheme + ln.Addr().String()
	}
	app, err := NewApp(AppOptions{ConfigFile: filepath.Join(dir, "deflectd.yaml"), Logger: logger,
		Getenv: func(k string) string { return env[k] }, Listener: lns[listenAll], Listeners: lns})
	hookBase := bases[listenAll]
	if o.split {
		hookBase = bases[listenWebhook]
	}
	wa.SetWebhookURL(hookBase + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	// The engine lists the application once the client is connected: after
	// that call, the app is ready.
	if _, err := fake.WaitCall(ctx, "GET", "/applications/deflect"); err != nil {
		t.Fatal(err)
	}
	return &testAppEnv{bases: bases, dir: dir, wa: wa}
}

// testAppEnv is a running test app: each listener's base URL by name
// (listenAll, or the split ones), its config directory and its fake
// Cloud API.
type testAppEnv struct {
	bases map[string]string
	dir   string
	wa    *whatsapptest.Server
}

func get(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAppServes(t *testing.T) {
	base, _ := testApp(t)
	for _, path := range []string{"/-/healthy", "/-/ready", "/metrics"} {
		if code, body := get(t, "GET", base+path, ""); code != 200 {
			t.Errorf("GET %s = %d %s, want 200", path, code, body)
		}
	}
	_, metrics := get(t, "GET", base+"/metrics", "")
	for _, name := range []string{"deflectd_ari_connected 1", "deflectd_config_last_reload_successful 1", "deflectd_whatsapp_outbox_depth"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	if code, _ := get(t, "GET", base+"/webhook?hub.mode=subscribe&hub.verify_token=verify&hub.challenge=42", ""); code != 200 {
		t.Errorf("webhook verification = %d, want 200", code)
	}
}

// Acceptance 8 (first half): a reload with a broken file keeps the old
// rules, and says why.
func TestReloadKeepsOldRulesOnError(t *testing.T) {
	base, dir := testApp(t)
	dry := `{"queue":"sales","option":"3","reason":"order_status","wait_seconds":1}`
	_, before := get(t, "POST", base+"/api/v1/dry-run", dry)

	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("route:\n  action: nonsense\n  bogus_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, "POST", base+"/-/reload", "")
	if code != http.StatusBadRequest || !strings.Contains(body, "bogus_key") {
		t.Errorf("reload of a broken file = %d %q, want 400 naming the problem", code, body)
	}
	_, metrics := get(t, "GET", base+"/metrics", "")
	if !strings.Contains(metrics, "deflectd_config_last_reload_successful 0") {
		t.Error("deflectd_config_last_reload_successful is not 0 after a failed reload")
	}
	if _, after := get(t, "POST", base+"/api/v1/dry-run", dry); after != before {
		t.Errorf("dry-run after a failed reload = %s, want the old rules' %s", after, before)
	}

	// A template the catalog lacks is refused as well.
	bad := "route:\n  action: none\n  routes:\n    - matchers: ['queue=\"sales\"']\n      action: offer\n      template: no_such_template\n      sla: 10s\n      max_offers: 1\n"
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "POST", base+"/-/reload", ""); code != http.StatusBadRequest || !strings.Contains(body, "no_such_template") {
		t.Errorf("reload naming an unknown template = %d %q, want 400", code, body)
	}

	// A file that drops a time interval the inbox counts business hours
	// by is refused too: the inbox would lose its clock.
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("route:\n  action: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "POST", base+"/-/reload", ""); code != http.StatusBadRequest || !strings.Contains(body, "business_hours") {
		t.Errorf("reload dropping the inbox's business hours = %d %q, want 400", code, body)
	}

	// A good file is taken.
	good := "time_intervals:\n  - name: business_hours\n    time_intervals:\n      - weekdays: ['monday:friday']\nroute:\n  action: none\n"
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "POST", base+"/-/reload", ""); code != 200 {
		t.Fatalf("reload = %d %q, want 200", code, body)
	}
	_, after := get(t, "POST", base+"/api/v1/dry-run", dry)
	var ex rules.Explanation
	if err := json.Unmarshal([]byte(after), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Decision.Action != rules.ActionNone {
		t.Errorf("dry-run after reloading a none-only tree = %s, want none", ex.Decision.Action)
	}
}

func TestDryRun(t *testing.T) {
	base, _ := testApp(t)
	tests := []struct {
		body       string
		wantCode   int
		wantAction rules.Action
	}{
		{`{"queue":"sales","option":"3","reason":"order_status"}`, 200, rules.ActionPerform},
		{`{"queue":"sales","option":"2","reason":"billing","wait_seconds":3600}`, 200, rules.ActionOffer},
		{`{"queue":"sales","reason":"billing","wait_seconds":1}`, 200, rules.ActionNone},
		{`{"reason":"billing"}`, 400, ""},
		{`{"queue":"sales","unknown":1}`, 400, ""},
		{`{"call_id":"no-such-call"}`, 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, "POST", base+"/api/v1/dry-run", tt.body)
		if code != tt.wantCode {
			t.Errorf("dry-run %s = %d %s, want %d", tt.body, code, body, tt.wantCode)
			continue
		}
		if code != 200 {
			continue
		}
		var ex rules.Explanation
		if err := json.Unmarshal([]byte(body), &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Decision.Action != tt.wantAction || len(ex.Steps) == 0 {
			t.Errorf("dry-run %s = %s via %d steps, want %s", tt.body, ex.Decision.Action, len(ex.Steps), tt.wantAction)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errb strings.Builder
	for _, f := range []string{"deflectd.yaml", "trial.yaml"} {
		if code := run([]string{"check-config", "-config", "../../configs/deflectd/" + f}, &out, &errb); code != 0 {
			t.Fatalf("check-config of the sample %s = %d: %s", f, code, errb.String())
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("listen: x\nredis_url: redis://x\nwhatsapp: {phone_number_id: '1'}\nunknown_key: 1\n"), 0o644)
	errb.Reset()
	if code := run([]string{"check-config", "-config", filepath.Join(dir, "d.yaml")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unknown_key") {
		t.Errorf("check-config of a file with an unknown key = %d %q, want 1 naming it", code, errb.String())
	}
	for key, ok := range map[string]bool{"D": true, "none": true, "9": true, "DD": false, "x": false} {
		os.WriteFile(filepath.Join(dir, "k.yaml"), []byte("listen: 127.0.0.1:0\nredis_url: redis://x\nwhatsapp: {phone_number_id: '1'}\ncalls: {queue_exit_key: '"+key+"'}\n"), 0o644)
		_, err := loadConfig(filepath.Join(dir, "k.yaml"))
		if bad := err != nil && strings.Contains(err.Error(), "queue_exit_key"); bad == ok {
			t.Errorf("queue_exit_key %q: err = %v, want accepted %v", key, err, ok)
		}
	}
}
