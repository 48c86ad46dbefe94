//go:build e2e

package main

// Acceptance tests of deflectd as a process, against a real Asterisk 22
// (the project's sandbox), real SIP calls, a real Redis and the fake Cloud
// API. The test binary runs itself as `deflectd run` (DEFLECTD_RUN_AS_MAIN),
// so the process the test kills with SIGKILL is the real program.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

func TestMain(m *testing.M) {
	if os.Getenv("DEFLECTD_RUN_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	asterisktest.StopShared()
	os.Exit(code)
}

// e2eRules: the member-less "hold" queue offers at 15 s; order_status is
// answered without asking.
const e2eRules = `route:
  name: root
  action: none
  short_abandon: 10s
  routes:
    - name: self-service
      matchers: ['reason="order_status"']
      action: perform
      template: order_status_v1
    - name: hold
      matchers: ['queue="hold"']
      action: offer
      template: queue_deflect_v1
      sla: 15s
      max_offers: 1
      offer_timeout: 30s
`

// proc is one deflectd process whose log the test follows.
type proc struct {
	cmd  *exec.Cmd
	addr string

	mu     sync.Mutex
	lines  []map[string]any
	notify chan struct{}
	exited chan struct{}
}

func startDeflectd(t testing.TB, dir string, env []string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := os.ReadFile(filepath.Join(dir, "deflectd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "deflectd-"+strings.ReplaceAll(addr, ":", "_")+".yaml")
	os.WriteFile(cfgFile, []byte(strings.Replace(string(cfg), "listen: LISTEN", "listen: "+addr, 1)), 0o644)

	p := &proc{addr: addr, notify: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "run", "-config", cfgFile, "-log-level", "debug")
	p.cmd.Env = append(append(os.Environ(), "DEFLECTD_RUN_AS_MAIN=1"), env...)
	stderr, err := p.cmd.StderrPipe() // zap writes to stderr
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.follow(stderr)
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
		}
		p.dump(t)
	})
	return p
}

// dump writes the process's log to $DEFLECTD_ARTIFACTS, one file per
// process, for a failure to be read afterwards.
func (p *proc) dump(t testing.TB) {
	dir := os.Getenv("DEFLECTD_ARTIFACTS")
	if dir == "" {
		return
	}
	os.MkdirAll(dir, 0o755)
	var b strings.Builder
	p.mu.Lock()
	for _, l := range p.lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	p.mu.Unlock()
	name := strings.NewReplacer("/", "_", ":", "_").Replace(t.Name() + "-" + p.addr)
	os.WriteFile(filepath.Join(dir, "deflectd-"+name+".log"), []byte(b.String()), 0o644)
}

// startConnected starts deflectd and waits until its ARI connection is up.
func startConnected(t testing.TB, dir string, env []string, timeout time.Duration) *proc {
	t.Helper()
	p := startDeflectd(t, dir, env)
	p.waitLines(t, "the ARI connection", 1, timeout, msg("ARI event connection established"))
	return p
}

func (p *proc) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		p.mu.Lock()
		p.lines = append(p.lines, m)
		old := p.notify
		p.notify = make(chan struct{})
		p.mu.Unlock()
		close(old)
	}
}

// count returns how many log lines match.
func (p *proc) count(match func(map[string]any) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if match(l) {
			n++
		}
	}
	return n
}

// waitLines waits until n log lines match.
func (p *proc) waitLines(t testing.TB, what string, n int, timeout time.Duration, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		notify := p.notify
		var got []map[string]any
		for _, l := range p.lines {
			if match(l) {
				got = append(got, l)
			}
		}
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-notify:
		case <-p.exited:
			t.Fatalf("deflectd exited while waiting for %s (%d of %d)", what, len(got), n)
		case <-deadline:
			t.Fatalf("waiting for %s: %d of %d in %v", what, len(got), n, timeout)
		}
	}
}

func msg(s string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == s }
}

// over matches the transitions that close a call: the caller left
// (abandoned), or the bridge let them go (ended).
func over(l map[string]any) bool {
	return l["msg"] == "deflect: transition" && (l["to"] == "ended" || l["to"] == "abandoned" || l["to"] == "short_abandoned")
}

func transitionTo(state string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == "deflect: transition" && l["to"] == state }
}

func dryRun(t testing.TB, addr, body string) rules.Explanation {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/api/v1/dry-run", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ex rules.Explanation
	if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

// Acceptance 6: deflectd is killed (SIGKILL) with 20 callers waiting and
// started again: every call is adopted, the offers come when they were
// due (counted from each call's entry, not from the restart), and the
// API gets exactly one message per call. Acceptance 8 (second half): the
// dry-run answer matches what the bridge really does.
func TestE2ERestartAdoptsWaitingCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := newStack(t, ctx, e2eRules)
	sb, rs, wa, dir, env := st.sb, st.rs, st.wa, st.dir, st.env

	a := startDeflectd(t, dir, env)
	a.waitLines(t, "the ARI connection", 1, 30*time.Second, msg("ARI event connection established"))

	// What the dry-run says will happen...
	offer := dryRun(t, a.addr, `{"queue":"hold","option":"1","reason":"billing","wait_seconds":16}`)
	early := dryRun(t, a.addr, `{"queue":"hold","option":"1","reason":"billing","wait_seconds":5}`)
	perform := dryRun(t, a.addr, `{"queue":"sales","option":"3","reason":"order_status"}`)
	if offer.Decision.Action != rules.ActionOffer || early.Decision.Action != rules.ActionNone || perform.Decision.Action != rules.ActionPerform {
		t.Fatalf("dry-run = %s, %s, %s; want offer, none, perform", offer.Decision.Action, early.Decision.Action, perform.Decision.Action)
	}

	// 20 callers in the member-less queue; each presses 1 at 19 s, during
	// the offer due at 15 s.
	const n = 20
	var callers []*asterisktest.SIPp
	for i := range n {
		p, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: fmt.Sprintf("+54911555510%02d", i),
			DTMF: []asterisktest.DTMF{{After: 19 * time.Second, Digit: "1"}}, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, p)
	}
	a.waitLines(t, "20 calls waiting", n, 30*time.Second, transitionTo("waiting"))
	if got := a.count(msg("deflect: offering WhatsApp")); got != 0 {
		t.Fatalf("%d offers before the kill, want 0 (due at 15 s)", got)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	killed := time.Now()

	// ...and one self-service call while nobody listens would fall back to
	// the dialplan; place it after the restart instead.
	b := startDeflectd(t, dir, env)
	b.waitLines(t, "20 adoptions", n, 30*time.Second, msg("deflect: adopting a call"))
	adopted := b.waitLines(t, "the adoption summary", 1, 10*time.Second, msg("deflect: calls in the application adopted"))
	if got := adopted[0]["adopted"]; got != float64(n) {
		t.Errorf("adopted = %v, want %d", got, n)
	}
	t.Logf("restarted %v after the kill", time.Since(killed).Round(time.Millisecond))

	performer, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "101", CallerNumber: "+5491155551099"})
	if err != nil {
		t.Fatal(err)
	}

	offers := b.waitLines(t, "20 offers", n, 40*time.Second, msg("deflect: offering WhatsApp"))
	for _, o := range offers {
		if o["route"] != offer.Decision.Route || o["trigger"] != offer.Decision.Trigger {
			t.Errorf("offer by route %v trigger %v, want the dry-run's %s %s", o["route"], o["trigger"], offer.Decision.Route, offer.Decision.Trigger)
		}
	}
	perf := b.waitLines(t, "the performed call", 1, 20*time.Second, msg("deflect: sending WhatsApp without asking"))
	if perf[0]["route"] != perform.Decision.Route {
		t.Errorf("performed by route %v, want the dry-run's %s", perf[0]["route"], perform.Decision.Route)
	}

	msgs, err := wa.WaitMessages(ctx, n+1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range callers {
		res, err := p.Wait()
		if err != nil || res.Successful != 1 {
			t.Errorf("caller %d: successful=%d err=%v, want hung up by the bridge after accepting\n%s", i, res.Successful, err, res.Output)
		}
	}
	if res, err := performer.Wait(); err != nil || res.Successful != 1 {
		t.Errorf("self-service caller: %v %+v", err, res)
	}
	b.waitLines(t, "21 calls ended", n+1, 20*time.Second, transitionTo("ended"))

	// Exactly one message per call, none missing.
	perKey := map[string]int{}
	for _, m := range wa.Messages() {
		perKey[m.Body.BizOpaqueCallbackData]++
	}
	if len(msgs) < n+1 || len(perKey) != n+1 {
		t.Errorf("distinct messages = %d, want %d", len(perKey), n+1)
	}
	for k, c := range perKey {
		if c != 1 {
			t.Errorf("%s sent %d times, want once", k, c)
		}
	}
	if got := len(wa.Requests()); got != n+1 {
		t.Errorf("requests at the API = %d, want %d", got, n+1)
	}

	// Offers on time: due 15 s after each call's entry, whatever the
	// restart did.
	c := rs.Client()
	keys, err := c.Keys(ctx, rs.Prefix+"call:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	late := 0
	for _, k := range keys {
		if strings.HasSuffix(k, ":log") || strings.Contains(k, "cooldown") {
			continue
		}
		f, _ := c.HGetAll(ctx, k).Result()
		if f["queue"] != "hold" {
			continue
		}
		entered, _ := strconv.ParseInt(f["entered_ms"], 10, 64)
		offered, _ := strconv.ParseInt(f["last_offer_ms"], 10, 64)
		d := time.Duration(offered-entered) * time.Millisecond
		if d < 15*time.Second || d > 17*time.Second {
			late++
			t.Errorf("%s: offered %v after entry, want 15 s (+2 s)", k, d)
		}
	}
	t.Logf("%d calls adopted, %d messages, %d offers off schedule", n, len(perKey), late)

	// SIGHUP with a broken rules file: the old rules stay, and it says why.
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("route:\n  action: sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	b.waitLines(t, "the failed reload", 1, 10*time.Second, msg("reload failed; the old rules and templates stay in force"))
	if again := dryRun(t, b.addr, `{"queue":"hold","option":"1","reason":"billing","wait_seconds":16}`); again.Decision.Route != offer.Decision.Route {
		t.Errorf("dry-run after a failed SIGHUP reload = %+v, want the old rules' %s", again.Decision, offer.Decision.Route)
	}
}

// stack is what a deflectd process under test talks to.
type stack struct {
	sb  *asterisktest.Sandbox
	rs  *redistest.Server
	wa  *whatsapptest.Server
	api *stoppableAPI // with stackOptions.ownAPI
	dir string
	env []string
}

// autoStatusFor: customers who answer read their messages first.
func autoStatusFor(c *whatsapptest.Customers) *whatsapptest.AutoStatus {
	if c == nil {
		return nil
	}
	return &whatsapptest.AutoStatus{Interval: 200 * time.Millisecond}
}

// newStack starts the sandbox, a Redis and the fake Cloud API, and writes a
// config directory for deflectd with the given rules.
func newStack(tb testing.TB, ctx context.Context, rulesYAML string) *stack {
	tb.Helper()
	return newStackWith(tb, ctx, rulesYAML, stackOptions{})
}

// stackOptions vary a stack: the fake Cloud API's customers, and more
// config (appended to deflectd.yaml) with files for it.
type stackOptions struct {
	customers *whatsapptest.Customers
	extra     string
	files     map[string]string
	// durableRedis keeps Redis's data over a kill (redistest.StartDurable),
	// for the chaos suite.
	durableRedis bool
	// ownAPI serves the fake Cloud API on a listener the test stops and
	// starts (stack.api), for the chaos suite's API outage.
	ownAPI bool
}

func newStackWith(tb testing.TB, ctx context.Context, rulesYAML string, so stackOptions) *stack {
	tb.Helper()
	// One sandbox for the package's tests: the first starts it, TestMain
	// stops it.
	sb := asterisktest.Shared(tb)
	var rs *redistest.Server
	if so.durableRedis {
		rs = redistest.StartDurable(tb)
	} else {
		rs = redistest.Start(tb)
	}
	cat, err := whatsapp.LoadCatalogFile("../../configs/deflectd/templates.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	waOpts := whatsapptest.Options{Token: "tok", AppSecret: "s", Templates: whatsapptest.TemplatesFromCatalog(cat), MPS: 1000,
		Customers: so.customers, AutoStatus: autoStatusFor(so.customers)}
	var (
		wa  *whatsapptest.Server
		api *stoppableAPI
	)
	if so.ownAPI {
		wa = whatsapptest.New(waOpts)
		api = startStoppableAPI(tb, wa.Handler())
		wa.URL = "http://" + api.addr
		tb.Cleanup(api.Stop)
	} else {
		wa = whatsapptest.NewServer(waOpts)
	}
	tb.Cleanup(wa.Close)
	dir := tb.TempDir()
	tmpl, _ := os.ReadFile("../../configs/deflectd/templates.yaml")
	os.WriteFile(filepath.Join(dir, "templates.yaml"), tmpl, 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rulesYAML), 0o644)
	os.WriteFile(filepath.Join(dir, "deflectd.yaml"), []byte(fmt.Sprintf(`listen: LISTEN
redis_url: %s
key_prefix: %q
ari:
  url: %s
  user: %s
calls:
  default_region: AR
  default_language: es
  template_languages: {es: es_AR}
whatsapp:
  base_url: %s
  phone_number_id: %q
  tier_limit: 0
  mps: 1000
`, rs.URL(), rs.Prefix, sb.ARIURL, sb.Username, wa.URL, wa.PhoneNumberID)+so.extra), 0o644)
	for name, body := range so.files {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	env := []string{"DEFLECTD_ARI_PASSWORD=" + sb.Password, "DEFLECTD_WA_TOKEN=tok", "DEFLECTD_WA_APP_SECRET=s", "DEFLECTD_WA_VERIFY_TOKEN=v"}
	return &stack{sb: sb, rs: rs, wa: wa, api: api, dir: dir, env: env}
}

// queue_log tells a deflected caller from an abandoned one (issue 11, 1):
// the caller who pressed 1 leaves the queue with EXITWITHKEY|D (the exit
// key deflectd sends into the queue half), never ABANDON; the caller who
// hung up is an ABANDON.
func TestE2EQueueLogTellsDeflectedFromAbandoned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := newStack(t, ctx, strings.Replace(e2eRules, "sla: 15s", "sla: 2s", 1))
	p := startConnected(t, st.dir, st.env, 30*time.Second)

	deflected, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: "+5491155553001",
		DTMF: []asterisktest.DTMF{{After: 4 * time.Second, Digit: "1"}}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	abandoned, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: "+5491155553002", HangupAfter: 12 * time.Second, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	acc := p.waitLines(t, "the acceptance", 1, 30*time.Second, msg("deflect: the caller accepted WhatsApp"))
	gone := p.waitLines(t, "the abandon", 1, 40*time.Second, func(l map[string]any) bool { return over(l) && l["to"] != "ended" })
	deflected.Wait()
	abandoned.Wait()
	p.waitLines(t, "both calls over", 2, 20*time.Second, over)

	events := func(callID string) []string {
		entries, err := st.sb.QueueLog()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if e.CallID == callID+"-q2" { // queue_log names the queue half
				out = append(out, e.Event+"|"+strings.Join(e.Data, "|"))
			}
		}
		return out
	}
	d, a := events(fmt.Sprint(acc[0]["call"])), events(fmt.Sprint(gone[0]["call"]))
	t.Logf("deflected: %q; abandoned: %q", d, a)
	if !slices.ContainsFunc(d, func(e string) bool { return strings.HasPrefix(e, "EXITWITHKEY|D|") }) ||
		slices.ContainsFunc(d, func(e string) bool { return strings.HasPrefix(e, "ABANDON") }) {
		t.Errorf("deflected call's queue_log = %q, want EXITWITHKEY|D and no ABANDON", d)
	}
	if !slices.ContainsFunc(a, func(e string) bool { return strings.HasPrefix(e, "ABANDON|") }) ||
		slices.ContainsFunc(a, func(e string) bool { return strings.HasPrefix(e, "EXITWITHKEY") }) {
		t.Errorf("abandoned call's queue_log = %q, want ABANDON and no EXITWITHKEY", a)
	}
}
