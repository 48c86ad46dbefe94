package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zaptest"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// inboxStack is deflectd with the inbox, as `deflectd run` wires it, on a
// real Redis, the fake Asterisk and the fake Cloud API.
type inboxStack struct {
	base string // http://127.0.0.1:port
	wa   *whatsapptest.Server
}

const browserPassword = "correct-horse-1"

func startInboxStack(t *testing.T) *inboxStack {
	t.Helper()
	cat, err := whatsapp.LoadCatalogFile("../../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const token, appSecret, verify = "tok", "app-secret", "verify"
	wa := whatsapptest.NewServer(whatsapptest.Options{Token: token, AppSecret: appSecret, Templates: whatsapptest.TemplatesFromCatalog(cat),
		AutoStatus: &whatsapptest.AutoStatus{Interval: 100 * time.Millisecond}, Seed: 5})
	t.Cleanup(wa.Close)
	fake := aritest.NewServer()
	t.Cleanup(fake.Close)
	rs := redistest.Start(t)
	hash, err := inbox.HashPassword(browserPassword)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	users := fmt.Sprintf(`users:
  - {id: ana, name: Ana Pérez, role: agent, teams: [billing], password_hash: %[1]q}
  - {id: bob, name: Bob Gómez, role: agent, teams: [billing], password_hash: %[1]q}
  - {id: carla, name: Carla Ruiz, role: agent, teams: [support], password_hash: %[1]q}
  - {id: sue, name: Sue Díaz, role: supervisor, teams: [billing, support], password_hash: %[1]q}
`, hash)
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	configs := mustAbs(t, "../../configs/deflectd")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
redis_url: %s
key_prefix: %q
ari:
  url: %s
  user: %s
calls:
  default_region: AR
  queues: [sales, support]
rules_file: %s
templates_file: %s
whatsapp:
  base_url: %s
  phone_number_id: %q
  pair_interval: 100ms
inbox:
  users_file: users.yaml
  teams: [{name: billing}, {name: support}]
  default_team: support
  routing:
    keywords: [{team: billing, words: [factura]}]
`, rs.URL(), rs.Prefix, fake.URL, fake.Username, filepath.Join(configs, "rules.yaml"), filepath.Join(configs, "templates.yaml"),
		wa.URL, wa.PhoneNumberID)
	if err := os.WriteFile(filepath.Join(dir, "deflectd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEFLECTD_ARI_PASSWORD": fake.Password, "DEFLECTD_WA_TOKEN": token,
		"DEFLECTD_WA_APP_SECRET": appSecret, "DEFLECTD_WA_VERIFY_TOKEN": verify}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app, err := NewApp(AppOptions{ConfigFile: filepath.Join(dir, "deflectd.yaml"), Logger: zaptest.NewLogger(t),
		Getenv: func(k string) string { return env[k] }, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	s := &inboxStack{base: "http://" + ln.Addr().String(), wa: wa}
	wa.SetWebhookURL(s.base + "/webhook")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return s
}

// chromium returns the browser's path, or skips (fails in CI) without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	asterisktest.SkipOrFail(t, "no chromium in PATH (Debian package chromium): the browser tests need it")
	return ""
}

// browser is one agent's browser: its own profile, so its own cookies.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
	dir  string // screenshots
	step int
}

func newBrowser(t *testing.T, exe, name, shots string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s's browser: %v", name, err)
	}
	return &browser{t: t, name: name, ctx: ctx, dir: shots}
}

// run runs actions with a deadline, then takes the step's screenshot.
func (b *browser) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.step++
	if img, serr := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); serr == nil {
		os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%02d-%s-%s.png", b.step, b.name, step)), img, 0o644)
	}
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		b.t.Fatalf("%s: %s: %v\npage: %s", b.name, step, err, body)
	}
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](cond)(ctx, t)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", cond, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func (b *browser) login(base, user string) {
	b.t.Helper()
	b.run("login",
		chromedp.Navigate(base+"/inbox/"),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), browserPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("tab-unassigned")),
	)
}

// TestInboxBrowser drives the inbox's web UI in headless Chromium against
// deflectd: a customer's message appears in two agents' Unassigned with
// no reload; one takes it and it leaves the other's; the reply reaches the
// fake Cloud API once and its ticks turn read; an agent of another team
// who opens the chat by its URL gets the 403 page.
func TestInboxBrowser(t *testing.T) {
	exe := chromium(t)
	if testing.Short() {
		t.Skip("the browser test starts Chromium")
	}
	shots := os.Getenv("DEFLECTD_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else {
		shots = filepath.Join(shots, "browser")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	s := startInboxStack(t)
	ana := newBrowser(t, exe, "ana", shots)
	bob := newBrowser(t, exe, "bob", shots)
	ana.login(s.base, "ana")
	bob.login(s.base, "bob")
	// Both streams are live before the customer writes.
	live := waitJS(`document.getElementById('live').textContent === 'live' || document.getElementById('live').textContent === 'en vivo'`)
	ana.run("live", live)
	bob.run("live", live)

	const from = "5491155550142"
	id := inbox.ConversationID(from, "")
	if _, err := s.wa.SendText(t.Context(), from, "Hola, la factura de este mes vino mal"); err != nil {
		t.Fatal(err)
	}
	row := `#list .row[data-id="` + id + `"]`
	ana.run("chat-arrives", chromedp.WaitVisible(chromedp.CSS(row)),
		waitJS(`document.getElementById('count-unassigned').textContent === '1'`))
	bob.run("chat-arrives", chromedp.WaitVisible(chromedp.CSS(row)))

	ana.run("open-and-take",
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID("take")),
		chromedp.Click(chromedp.ID("take")),
		waitJS(`document.getElementById('owner').textContent === 'ana'`))
	bob.run("taken-elsewhere", waitJS(`document.querySelector('`+row+`') === null`))

	const answer = "Hola Ana acá, ya reviso tu factura"
	ana.run("reply",
		chromedp.WaitVisible(chromedp.ID("reply-text")),
		chromedp.SendKeys(chromedp.ID("reply-text"), answer),
		chromedp.SendKeys(chromedp.ID("reply-text"), "\r"),
		waitJS(`[...document.querySelectorAll('.msg.out .ticks')].some(e => e.dataset.state === 'read')`))
	texts := 0
	for _, m := range s.wa.Messages() {
		if m.Body.Type == "text" && strings.TrimPrefix(m.Body.To, "+") == from {
			texts++
			if m.Body.Text == nil || m.Body.Text.Body != answer {
				t.Errorf("the fake got %s, want the reply %q", m.Raw, answer)
			}
		}
	}
	if texts != 1 {
		t.Errorf("the fake Cloud API got %d replies, want exactly 1", texts)
	}

	carla := newBrowser(t, exe, "carla", shots)
	carla.login(s.base, "carla")
	carla.run("foreign-chat-by-url",
		chromedp.Navigate(s.base+"/inbox/#/c/"+id),
		chromedp.WaitVisible(chromedp.CSS(`.error[data-status="403"]`)))
}
