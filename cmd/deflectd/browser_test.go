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
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// inboxStack is deflectd with the inbox, as `deflectd run` wires it, on a
// real Redis, the fake Asterisk and the fake Cloud API.
type inboxStack struct {
	base string // http://127.0.0.1:port
	wa   *whatsapptest.Server
	app  *App
	cat  *whatsapp.Catalog
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
  - {id: ana, name: Ana Pérez, role: agent, teams: [support], password_hash: %[1]q}
  - {id: bob, name: Bob Gómez, role: agent, teams: [support], password_hash: %[1]q}
  - {id: carla, name: Carla Ruiz, role: agent, teams: [billing], password_hash: %[1]q}
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
  # Accelerated, so that a chat left unanswered escalates within the test.
  policy: {critical_after: 3s, escalate_after: 6s}
  routing:
    calls: [{queue: support, team: support}]
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
	s := &inboxStack{base: "http://" + ln.Addr().String(), wa: wa, app: app, cat: cat}
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

// deflect sends a call's deflection template to a number through the
// outbox, as the engine does, and returns the message the fake received.
func (s *inboxStack) deflect(t *testing.T, to string) whatsapptest.Message {
	t.Helper()
	const callID = "1733500000.77"
	key := callID + ":" + outbox.KindOffer
	meta := map[string]string{"call_id": callID, "queue": "support", "option": "4", "reason": "returns",
		"wait_s": "95", "ewt_s": "240", "position": "3"}
	m, err := s.cat.Render("queue_deflect_v1", "es_AR", to, whatsapp.CallContext{CallID: callID, Queue: "support",
		MenuOption: "4", Reason: "returns", Wait: 95 * time.Second, CallerNumber: to, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.outbox.Enqueue(t.Context(), outbox.Job{Key: key, Kind: outbox.KindOffer, Message: m, Meta: meta}); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.wa.WaitMessages(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return msgs[0]
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

// axe runs axe-core (testdata/axe) on the page as it is, for WCAG 2 A
// and AA: labels, names, contrast, landmarks. It fails the step on any
// violation, naming the rule and the elements.
func axe(t *testing.T) chromedp.Action[chromedp.Void] {
	src, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := chromedp.Evaluate[bool](string(src)+";true", chromedp.EvalIgnoreExceptions)(ctx, tg); err != nil {
			return fmt.Errorf("loading axe-core: %w", err)
		}
		report, err := chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})
			.then(r => r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
				v.nodes.map(n => n.target.join(' ')).join(', ')).join('\n'))`, chromedp.EvalAwaitPromise)(ctx, tg)
		if err != nil {
			return fmt.Errorf("running axe-core: %w", err)
		}
		if report != "" {
			return fmt.Errorf("accessibility violations:\n%s", report)
		}
		return nil
	})
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

func (b *browser) login(base, user string) { b.loginWith(base, user, browserPassword) }

func (b *browser) loginWith(base, user, password string) {
	b.t.Helper()
	b.run("login",
		chromedp.Navigate(base+"/inbox/"),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("tab-unassigned")),
	)
}

// TestInboxBrowser drives the inbox's web UI in headless Chromium against
// deflectd: a deflected customer's tap appears in two agents' Unassigned
// with no reload, with the call's context card; one takes it and it
// leaves the other's; the reply reaches the fake Cloud API once and its
// ticks turn read; a handoff without its tag says so, and with it the chat
// reaches billing, whose agent sees the handoff card first; a chat nobody
// answers turns critical, then escalated, on the supervisor's Pending
// view; a chat past its 24-hour window offers templates only; and an
// agent of another team who opens a chat by its URL gets the 403 page.
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
	ana.run("login-page-a11y", chromedp.Navigate(s.base+"/inbox/"), chromedp.WaitVisible(chromedp.ID("login-user")), axe(t))
	ana.login(s.base, "ana")
	bob.login(s.base, "bob")
	// Both streams are live before the customer writes.
	live := waitJS(`document.getElementById('live').textContent === 'live' || document.getElementById('live').textContent === 'en vivo'`)
	ana.run("live", live)
	bob.run("live", live)

	// A caller deflected from the support queue taps the template's button.
	const from = "5491155550142"
	id := inbox.ConversationID(from, "")
	offer := s.deflect(t, "+"+from)
	payload := ""
	for _, c := range offer.Body.Template.Components {
		if c.Type == "button" && len(c.Parameters) > 0 {
			payload = c.Parameters[0].Payload
		}
	}
	if _, err := s.wa.SendButtonTap(t.Context(), from, offer.WAMID, payload, "Hablar con un agente",
		whatsapptest.WithProfileName("María Gómez")); err != nil {
		t.Fatal(err)
	}
	row := `#list .row[data-id="` + id + `"]`
	ana.run("chat-arrives", chromedp.WaitVisible(chromedp.CSS(row)),
		waitJS(`document.getElementById('count-unassigned').textContent === '1'`))
	bob.run("chat-arrives", chromedp.WaitVisible(chromedp.CSS(row)))

	ana.run("open-and-take",
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID("context-h")),
		chromedp.Click(chromedp.ID("take")),
		waitJS(`document.getElementById('owner').textContent === 'ana'`),
		axe(t))
	bob.run("taken-elsewhere", waitJS(`document.querySelector('`+row+`') === null`))

	const answer = "Hola María, soy Ana: ¿qué producto querés devolver?"
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

	// The handoff needs its four fields: without a tag, the form says so.
	ana.run("handoff-missing-tag",
		chromedp.Click(chromedp.ID("handoff")),
		chromedp.WaitVisible(chromedp.ID("handoff-form")),
		chromedp.SendKeys(chromedp.ID("ho-reason"), "Pide la nota de crédito de la devolución"),
		chromedp.SendKeys(chromedp.ID("ho-next"), "Emitir la nota de crédito y avisarle"),
		chromedp.Click(chromedp.ID("ho-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.error[data-field="tag"]`)),
		axe(t))
	ana.run("handoff",
		chromedp.SendKeys(chromedp.ID("ho-tag"), "nota-de-credito"),
		chromedp.Click(chromedp.ID("ho-submit")),
		waitJS(`document.getElementById('handoff-form') === null && document.querySelector('`+row+`') === null`))

	carla := newBrowser(t, exe, "carla", shots)
	carla.login(s.base, "carla")
	carla.run("handoff-arrives",
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID("handoff-h")),
		chromedp.WaitVisible(chromedp.ID("context-h")),
		waitJS(`!!(document.getElementById('handoff-h').compareDocumentPosition(document.getElementById('context-h')) & Node.DOCUMENT_POSITION_FOLLOWING)`),
		waitJS(`document.querySelector('.card').textContent.includes('nota-de-credito')`),
		chromedp.Click(chromedp.ID("take")),
		waitJS(`document.getElementById('owner').textContent === 'carla'`))

	// Another chat nobody answers turns critical, then escalates, on the
	// supervisor's Pending view.
	sue := newBrowser(t, exe, "sue", shots)
	sue.login(s.base, "sue")
	const quiet = "5491155550199"
	if _, err := s.wa.SendText(t.Context(), quiet, "Hola? alguien?"); err != nil {
		t.Fatal(err)
	}
	timer := `#list .row[data-id="` + inbox.ConversationID(quiet, "") + `"] .timer`
	sue.run("pending-normal", chromedp.WaitVisible(chromedp.CSS(timer)))
	sue.run("pending-critical", waitJS(`document.querySelector('`+timer+`').dataset.level === 'critical'`))
	sue.run("pending-escalated", waitJS(`document.querySelector('`+timer+`').dataset.level === 'escalated'`),
		chromedp.WaitVisible(chromedp.CSS(`.alerts .alert.escalation`)), axe(t))

	// Keyboard: ? lists the shortcuts, Escape closes them, / searches; the
	// page speaks Spanish on request, and fits a phone.
	sue.run("shortcuts",
		chromedp.Click(chromedp.ID("tab-pending")),
		chromedp.WaitVisible(chromedp.CSS(timer)),
		// j moves to the first row, Enter opens it.
		chromedp.KeyEvent("j"),
		waitJS(`document.activeElement && document.activeElement.id === 'row-`+inbox.ConversationID(quiet, "")+`'`),
		chromedp.KeyEvent("\r"),
		waitJS(`location.hash === '#/c/`+inbox.ConversationID(quiet, "")+`'`),
		chromedp.WaitVisible(chromedp.ID("conv-h")),
		chromedp.KeyEvent("?"),
		chromedp.WaitVisible(chromedp.ID("help-h")),
		chromedp.KeyEvent("\x1b"),
		waitJS(`document.getElementById('help-h') === null`),
		chromedp.KeyEvent("/"),
		waitJS(`document.activeElement && document.activeElement.id === 'search'`),
		// The protocol's key events type the "/" that a browser's own
		// keydown default (prevented) would not; clear it.
		waitJS(`(() => { const s = document.getElementById('search'); s.value = '';
			s.dispatchEvent(new Event('input', {bubbles: true})); return true })()`))
	sue.run("spanish",
		// Choosing in the header's select (a change event, as a click
		// on an option fires).
		waitJS(`(() => { const s = document.getElementById('language'); s.value = 'es';
			s.dispatchEvent(new Event('change', {bubbles: true})); return true })()`),
		waitJS(`document.getElementById('tab-unassigned').textContent.startsWith('Sin asignar') && document.documentElement.lang === 'es'`))
	sue.run("phone-width",
		chromedp.EmulateViewport(390, 844),
		chromedp.WaitVisible(chromedp.ID("list")),
		waitJS(`document.documentElement.scrollWidth <= 400`),
		axe(t))

	// A chat whose 24-hour window closed offers templates only.
	const late = "5491155550177"
	if _, err := s.wa.SendText(t.Context(), late, "¿Siguen ahí?", whatsapptest.WithTime(time.Now().Add(-25*time.Hour))); err != nil {
		t.Fatal(err)
	}
	lateRow := `#list .row[data-id="` + inbox.ConversationID(late, "") + `"]`
	ana.run("window-closed",
		chromedp.WaitVisible(chromedp.CSS(lateRow)),
		chromedp.Click(chromedp.CSS(lateRow)),
		chromedp.WaitVisible(chromedp.ID("template-picker")),
		waitJS(`document.getElementById('reply-text') === null && document.getElementById('tpl-pick').options.length > 0`))

	// bob (support) may not open carla's billing chat by its URL.
	bob.run("foreign-chat-by-url",
		chromedp.Navigate(s.base+"/inbox/#/c/"+id),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`.error[data-status="403"]`)))
}

// TestDemoInboxInBrowser: the demo's inbox moves in a browser. The
// supervisor signs in with the login the demo prints and sees chats come,
// be taken and be answered by the simulated agents, with no reload.
func TestDemoInboxInBrowser(t *testing.T) {
	exe := chromium(t)
	if testing.Short() {
		t.Skip("the demo and a browser")
	}
	var out syncBuffer
	o := demoOptions{
		duration: 3 * time.Minute, speed: 60, rate: 12, agents: 1, seed: 9,
		listen: "127.0.0.1:0", statusAddr: "127.0.0.1:0", accept: 0.8, decline: 0.1, replyRate: 1,
		progress: time.Second, configDir: "../../configs/deflectd", logFile: t.TempDir() + "/demo.log",
		stdout: &out, drainTimeoutSimTime: 15 * time.Minute,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := make(chan string, 1)
	o.onReady = func(app, _ string) { ready <- app }
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o) }()
	var app string
	select {
	case app = <-ready:
	case err := <-done:
		t.Fatalf("runDemo() = %v before it was ready; output:\n%s", err, out.String())
	}
	if want := app + "/inbox/ (sign in as sofia"; !strings.Contains(out.String(), want) {
		t.Errorf("the demo does not print %q:\n%s", want, out.String())
	}
	sofia := newBrowser(t, exe, "demo-sofia", t.TempDir())
	sofia.loginWith(app, "sofia", demoPassword)
	sofia.run("chats-move",
		// Resolved chats leave the lists: wait until the dashboard
		// counts some, which the agents do only after answering.
		waitJS(`(document.getElementById('kpi-resolved') || {}).textContent > '' && document.getElementById('kpi-resolved').textContent !== '0'`),
		waitJS(`document.getElementById('kpi-first-response').textContent !== '–'`))
	cancel()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("runDemo() = %v", err)
	}
}
