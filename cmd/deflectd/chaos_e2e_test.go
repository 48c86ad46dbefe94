//go:build e2e

package main

// The chaos suite (make chaos): faults of a real deployment on the real
// parts — Asterisk 22 in the sandbox, sipp, a real Redis, deflectd as a
// process — each one an assertion. Every scenario counts the callers who
// reached a message, the messages sent twice (must be 0), the accepted
// deflections lost (must be 0) and the recovery time, and adds a row to
// $DEFLECTD_ARTIFACTS/chaos.md; docs/reliability.md has the figures.
//
// The fake Cloud API runs in the test process on a listener of its own,
// which the API outage closes and opens again on the same address: to
// deflectd that is the same refused connection as a stopped process, and
// the test keeps the fake's record of every request across the outage.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/deflectd/deflectd/deflect"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

var chaos = flag.Bool("chaos", false, "run the chaos suite (make chaos)")

func requireChaos(t *testing.T) {
	t.Helper()
	if !*chaos {
		t.Skip("make chaos runs it (-chaos)")
	}
}

// chaosRules: the member-less hold queue offers at 2 s, up to three times
// 10 s apart; a caller who hangs up after 10 s gets a recovery message;
// order_status is answered without asking.
const chaosRules = `route:
  action: none
  short_abandon: 10s
  recover: true
  recover_template: queue_recover_v1
  routes:
    - name: self-service
      matchers: ['reason="order_status"']
      action: perform
      template: order_status_v1
    - name: hold
      matchers: ['queue="hold"']
      action: offer
      template: queue_deflect_v1
      sla: 2s
      max_offers: 3
      reoffer_every: 10s
      offer_timeout: 8s
`

// chaosRow is one scenario's outcome.
type chaosRow struct {
	scenario string
	callers  int           // callers placed
	reached  int           // callers who reached a message (or an agent)
	twice    int           // messages sent more than once
	lost     int           // accepted deflections without a message
	recovery time.Duration // from the fault's end to service again
	note     string
}

var chaosReport struct {
	sync.Mutex
	rows []chaosRow
}

// report logs the row and rewrites $DEFLECTD_ARTIFACTS/chaos.md with every
// row so far.
func (r chaosRow) report(t *testing.T) {
	t.Helper()
	chaosReport.Lock()
	defer chaosReport.Unlock()
	chaosReport.rows = append(chaosReport.rows, r)
	var b strings.Builder
	b.WriteString("| scenario | callers | reached a message | sent twice | accepted lost | recovery | notes |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range chaosReport.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %v | %s |\n", r.scenario, r.callers, r.reached, r.twice, r.lost, r.recovery.Round(10*time.Millisecond), r.note)
	}
	t.Logf("chaos: %s: %d callers, %d reached a message, %d sent twice, %d accepted lost, recovery %v; %s",
		r.scenario, r.callers, r.reached, r.twice, r.lost, r.recovery.Round(10*time.Millisecond), r.note)
	if dir := os.Getenv("DEFLECTD_ARTIFACTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "chaos.md"), []byte(b.String()), 0o644)
	}
}

// ledger reads the fake API's record: messages per idempotency key (call
// and kind) and per recipient.
type ledger struct {
	perKey map[string]int
	perTo  map[string]int
}

func readLedger(wa *whatsapptest.Server) ledger {
	l := ledger{perKey: map[string]int{}, perTo: map[string]int{}}
	for _, m := range wa.Messages() {
		l.perKey[m.Body.BizOpaqueCallbackData]++
		l.perTo[digitsOf(m.Body.To)]++
	}
	return l
}

// twice counts the keys sent more than once, and fails the test for each.
func (l ledger) twice(t *testing.T) int {
	t.Helper()
	n := 0
	for k, c := range l.perKey {
		if c > 1 {
			n++
			t.Errorf("%s sent %d times, want once", k, c)
		}
	}
	return n
}

// kinds counts the distinct messages of one kind (the key's suffix).
func (l ledger) kinds(kind string) int {
	n := 0
	for k := range l.perKey {
		if strings.HasSuffix(k, ":"+kind) {
			n++
		}
	}
	return n
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// wait sleeps d of the scenario's schedule, or fails when ctx ends first.
func wait(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
}

// stop ends the process with SIGTERM, as an operator's restart does.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("deflectd did not stop within 20 s of SIGTERM")
	}
}

// firstAfter returns the time of the first log line that matches, logged at
// or after since, by the line's own timestamp.
func (p *proc) firstAfter(since time.Time, match func(map[string]any) bool) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if !match(l) {
			continue
		}
		if at, ok := lineTime(l); ok && !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

func lineTime(l map[string]any) (time.Time, bool) {
	ts, ok := l["ts"].(float64) // zap's production encoder: epoch seconds
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(ts * 1e6)), true
}

// stoppableAPI serves the fake Cloud API on a fixed loopback address that
// the test can close and open again.
type stoppableAPI struct {
	addr string
	h    http.Handler

	mu  sync.Mutex
	srv *http.Server
}

func startStoppableAPI(tb testing.TB, h http.Handler) *stoppableAPI {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := &stoppableAPI{addr: ln.Addr().String(), h: h}
	a.serve(ln)
	return a
}

func (a *stoppableAPI) serve(ln net.Listener) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.srv = &http.Server{Handler: a.h, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln)
}

// Stop closes the listener and every connection: new sends are refused.
func (a *stoppableAPI) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// Start listens again on the same address.
func (a *stoppableAPI) Start(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		tb.Fatalf("listening again on %s: %v", a.addr, err)
	}
	a.serve(ln)
}

// Redis is killed for 30 s while 20 callers wait and 5 of them press 1.
// The offers come at 2 s, just before the kill; the 5 press during the
// outage and hear "unavailable", keep their place, and are offered again
// once Redis returns, when they press again. The 15 others hang up at 75 s
// and get a recovery message. Every message goes once.
func TestChaosRedisOutage(t *testing.T) {
	requireChaos(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := newStackWith(t, ctx, chaosRules, stackOptions{durableRedis: true})
	p := startConnected(t, st.dir, st.env, 30*time.Second)

	const n, pressers = 20, 5
	var callers []*asterisktest.SIPp
	var numbers []string
	for i := range n {
		o := asterisktest.CallOptions{Exten: "103", CallerNumber: fmt.Sprintf("+549115557%04d", i), Timeout: 2 * time.Minute}
		if i < pressers {
			// 1 at 5 s, during the outage, then every 3 s from 33 s to 60 s
			// for the offer after it.
			o.DTMF = []asterisktest.DTMF{{After: 5 * time.Second, Digit: "1"}, {After: 28 * time.Second, Digit: "1"}}
			for range 9 {
				o.DTMF = append(o.DTMF, asterisktest.DTMF{After: 3 * time.Second, Digit: "1"})
			}
		} else {
			o.HangupAfter = 75 * time.Second
		}
		c, err := st.sb.Call(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, c)
		numbers = append(numbers, digitsOf(o.CallerNumber))
	}
	p.waitLines(t, "20 first offers", n, 30*time.Second, msg("deflect: offering WhatsApp"))
	st.rs.Kill()
	killed := time.Now()
	unavailable := func(l map[string]any) bool {
		return l["msg"] == "deflect: not offering WhatsApp" && l["why"] == "send_failed"
	}
	p.waitLines(t, "5 callers told the bridge is unavailable", pressers, 20*time.Second, unavailable)
	wait(t, ctx, 30*time.Second-time.Since(killed))
	if got := p.count(msg("deflect: offering WhatsApp")); got != n {
		t.Errorf("%d offers by the end of the outage, want the %d made before it", got, n)
	}
	st.rs.Restart()
	restarted := time.Now()

	want := pressers + (n - pressers) // the pressers' offers, the others' recoveries
	if _, err := st.wa.WaitMessages(ctx, want); err != nil {
		t.Fatalf("waiting for %d messages: %v (%d arrived)", want, err, len(st.wa.Messages()))
	}
	for i, c := range callers {
		if res, err := c.Wait(); err != nil && i < pressers {
			t.Logf("presser %d: %v (successful %d)", i, err, res.Successful)
		}
	}
	p.waitLines(t, "20 calls over", n, 30*time.Second, over)

	l := readLedger(st.wa)
	lost := 0
	for _, num := range numbers[:pressers] {
		if !slices.ContainsFunc(st.wa.Messages(), func(m whatsapptest.Message) bool {
			return digitsOf(m.Body.To) == num && strings.HasSuffix(m.Body.BizOpaqueCallbackData, ":offer")
		}) {
			lost++
			t.Errorf("presser %s got no WhatsApp message", num)
		}
	}
	if got := l.kinds("recover"); got != n-pressers {
		t.Errorf("%d recovery messages, want %d", got, n-pressers)
	}
	back, ok := p.firstAfter(restarted, msg("deflect: Redis answers again; offers resume for the call"))
	if !ok {
		t.Fatal("no call saw Redis answer again")
	}
	reoffer, _ := p.firstAfter(restarted, msg("deflect: offering WhatsApp"))
	chaosRow{scenario: "Redis killed for 30 s, 20 waiting, 5 press 1 during the outage", callers: n,
		reached: len(l.perTo), twice: l.twice(t), lost: lost, recovery: back.Sub(restarted),
		note: fmt.Sprintf("%d heard \"unavailable\"; first offer %v after Redis returned; %d offers, %d recovery messages",
			p.count(unavailable), reoffer.Sub(restarted).Round(10*time.Millisecond), l.kinds("offer"), l.kinds("recover"))}.report(t)
}

// deflectd is SIGKILLed at each point of a call: entered, offered,
// accepted before the enqueue, and after it. A new process adopts the
// call, and the caller who pressed 1 gets exactly one message.
func TestChaosKillInEachState(t *testing.T) {
	requireChaos(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	st := newStackWith(t, ctx, chaosRules, stackOptions{})
	points := []string{deflect.CheckpointEntered, deflect.CheckpointOffered, deflect.CheckpointAccepted, deflect.CheckpointEnqueued}
	var worst, msgAfter time.Duration
	lost, reached := 0, 0
	for i, point := range points {
		a := startConnected(t, st.dir, append(slices.Clone(st.env), "DEFLECTD_CRASH_AT="+point), 30*time.Second)
		number := fmt.Sprintf("+549115558%04d", i)
		// 1 at 4 s (the offer at 2 s), and again for the offers after
		// the restart.
		dtmf := []asterisktest.DTMF{{After: 4 * time.Second, Digit: "1"}}
		for range 12 {
			dtmf = append(dtmf, asterisktest.DTMF{After: 3 * time.Second, Digit: "1"})
		}
		c, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: number, DTMF: dtmf, Timeout: 90 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: deflectd did not crash", point)
		}
		crashed := time.Now()
		b := startDeflectd(t, st.dir, st.env)
		b.waitLines(t, "the adoption", 1, 30*time.Second, msg("deflect: adopting a call"))
		adopted, _ := b.firstAfter(crashed, msg("deflect: adopting a call"))
		worst = max(worst, adopted.Sub(crashed))
		b.waitLines(t, "the call's end", 1, 60*time.Second, over)
		c.Wait()
		// The message may come later than the call's end: a job the dead
		// process had read waits until another claims it.
		var sentAt time.Time
		if _, err := st.wa.WaitMessages(ctx, i+1); err == nil {
			sentAt = st.wa.Messages()[i].Time
		}
		got := readLedger(st.wa).perTo[digitsOf(number)]
		switch {
		case got == 0:
			lost++
			t.Errorf("killed at %s: the caller got no message", point)
		case got > 1:
			t.Errorf("killed at %s: the caller got %d messages", point, got)
		}
		if got > 0 {
			reached++
		}
		if !sentAt.IsZero() {
			msgAfter = max(msgAfter, sentAt.Sub(crashed))
		}
		t.Logf("killed at %s: adopted %v after the crash, %d message(s), sent %v after the crash", point,
			adopted.Sub(crashed).Round(time.Millisecond), got, sentAt.Sub(crashed).Round(time.Millisecond))
		b.stop(t)
	}
	l := readLedger(st.wa)
	chaosRow{scenario: "SIGKILL at entered, offered, accepted, enqueued (one caller each, presses 1)", callers: len(points),
		reached: reached, twice: l.twice(t), lost: lost, recovery: worst,
		note: fmt.Sprintf("recovery: crash to the new process adopting the call, the slowest of the four; crash to the message, the slowest: %v", msgAfter.Round(10*time.Millisecond))}.report(t)
}

// The fake Cloud API is stopped for 60 s while a burst of 20 self-service
// calls is answered on WhatsApp; every message arrives once after it
// starts again.
func TestChaosCloudAPIOutage(t *testing.T) {
	requireChaos(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := newStackWith(t, ctx, chaosRules, stackOptions{ownAPI: true})
	p := startConnected(t, st.dir, st.env, 30*time.Second)

	const n = 20
	st.api.Stop()
	stopped := time.Now()
	var numbers []string
	for i := range n {
		numbers = append(numbers, fmt.Sprintf("+549115559%04d", i))
	}
	burst, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "101", CallerNumbers: numbers, Rate: 10, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p.waitLines(t, "20 self-service calls", n, 30*time.Second, msg("deflect: sending WhatsApp without asking"))
	if res, err := burst.Wait(); err != nil || res.Successful != n {
		t.Errorf("burst: %d of %d calls completed (%v)", res.Successful, n, err)
	}
	wait(t, ctx, 60*time.Second-time.Since(stopped))
	if got := len(st.wa.Messages()); got != 0 {
		t.Fatalf("%d messages during the outage", got)
	}
	st.api.Start(t)
	started := time.Now()
	msgs, err := st.wa.WaitMessages(ctx, n)
	if err != nil {
		t.Fatalf("waiting for %d messages: %v (%d arrived)", n, err, len(st.wa.Messages()))
	}
	last := msgs[n-1].Time
	l := readLedger(st.wa)
	lost := 0
	for _, num := range numbers {
		if l.perTo[digitsOf(num)] == 0 {
			lost++
		}
	}
	first := msgs[0].Time
	chaosRow{scenario: "Cloud API stopped for 60 s during a burst of 20 self-service calls", callers: n,
		reached: len(l.perTo), twice: l.twice(t), lost: lost, recovery: last.Sub(started),
		note: fmt.Sprintf("recovery: API back to the last message; the first came %v after", first.Sub(started).Round(10*time.Millisecond))}.report(t)
}

// Asterisk is restarted with 10 callers waiting. deflectd reconnects with
// backoff and reconciles the records of the calls the restart ended; calls
// placed as soon as Asterisk is back reach the queue, through deflectd or,
// before it is back, through the dialplan's fallback.
func TestChaosAsteriskRestart(t *testing.T) {
	requireChaos(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// No offers (sla 5 min): the test watches the calls, not the offers.
	st := newStackWith(t, ctx, strings.Replace(chaosRules, "sla: 2s", "sla: 5m", 1), stackOptions{})
	p := startConnected(t, st.dir, st.env, 30*time.Second)

	const n, after = 10, 5
	var waiting []*asterisktest.SIPp
	for i := range n {
		c, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: fmt.Sprintf("+549115556%04d", i), Timeout: 40 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		waiting = append(waiting, c)
	}
	p.waitLines(t, "10 calls waiting", n, 30*time.Second, transitionTo("waiting"))
	wait(t, ctx, 2*time.Second) // callers in the queue a moment
	restartAt := time.Now()
	if err := st.sb.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// New callers at once: deflectd may not have reconnected yet.
	var numbers []string
	for i := range after {
		numbers = append(numbers, fmt.Sprintf("+549115556%04d", 100+i))
	}
	fresh, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumbers: numbers, Rate: 5, HangupAfter: 12 * time.Second, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	restored := msg("ARI event connection restored; events of the gap are lost, resync")
	p.waitLines(t, "the reconnection", 1, 60*time.Second, restored)
	reconnected, _ := p.firstAfter(restartAt, restored)
	if res, err := fresh.Wait(); err != nil || res.Successful != after {
		t.Errorf("calls after the restart: %d of %d completed (%v)\n%s", res.Successful, after, err, res.Output)
	}
	for _, c := range waiting {
		c.Stop()
		c.Wait()
	}

	// Every new call reached the hold queue.
	entries, err := st.sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	entered := 0
	for _, e := range entries {
		if e.Queue == "hold" && e.Event == "ENTERQUEUE" && !e.Time.Before(back.Truncate(time.Second)) {
			entered++
		}
	}
	if entered < after {
		t.Errorf("%d calls entered the hold queue after the restart, want %d", entered, after)
	}
	viaBridge := p.count(transitionTo("waiting")) - n

	// The records of the calls the restart ended are closed.
	p.waitLines(t, "the cut-off calls closed", n, 60*time.Second, over)
	rdb := st.rs.Client()
	open := 0
	keys, _ := rdb.Keys(ctx, st.rs.Prefix+"call:*").Result()
	for _, k := range keys {
		if strings.Contains(k, ":log") || strings.Contains(k, "cooldown") {
			continue
		}
		if s, _ := rdb.HGet(ctx, k, "state").Result(); s != "" && s != "ended" && s != "abandoned" && s != "short_abandoned" {
			if f, _ := rdb.HGet(ctx, k, "number").Result(); !slices.ContainsFunc(numbers, func(n string) bool { return strings.Contains(n, f) || strings.Contains(f, digitsOf(n)) }) {
				open++
				t.Errorf("%s is still %s after the restart", k, s)
			}
		}
	}
	l := readLedger(st.wa)
	chaosRow{scenario: "Asterisk restarted with 10 waiting; 5 new calls at once", callers: n + after,
		reached: entered, twice: l.twice(t), lost: 0, recovery: reconnected.Sub(back),
		note: fmt.Sprintf("restart took %v; %d new calls in the queue (%d through deflectd, the rest through the dialplan fallback); records left open: %d; %d recovery messages to the cut-off callers; \"reached\" counts the queue here",
			back.Sub(restartAt).Round(10*time.Millisecond), entered, viaBridge, open, l.kinds("recover"))}.report(t)
}

// Loss and delay between deflectd and Redis, and between deflectd and
// Asterisk (ARI's HTTP and websocket): each path goes through a proxy in
// the test that holds every chunk 100 ms each way (200 ms of round trip),
// and nftables drops 5 % of the packets to and from the proxies' ports on
// loopback, so TCP really retransmits. 20 callers wait and press 1 at
// 5 s; each gets one message, and the test records key press to POST.
//
// Why not network namespaces and tc netem, as one would on a workstation:
// this kernel has no netem (CONFIG_NET_SCH_NETEM is not set), and the
// project's fault tests stay on loopback. nftables' numgen gives real
// packet loss there, and the proxy the delay.
func TestChaosNetworkLossAndDelay(t *testing.T) {
	requireChaos(t)
	asterisktest.Require(t, "root", "nft")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := newStackWith(t, ctx, chaosRules, stackOptions{})
	redisProxy := startDelayProxy(t, st.rs.Addr, 100*time.Millisecond)
	ariAddr := strings.TrimSuffix(strings.TrimPrefix(st.sb.ARIURL, "http://"), "/ari")
	ariProxy := startDelayProxy(t, ariAddr, 100*time.Millisecond)
	dropOnLoopback(t, 5, redisProxy.port(), ariProxy.port())
	cfgPath := filepath.Join(st.dir, "deflectd.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = []byte(strings.NewReplacer(st.rs.URL(), "redis://"+redisProxy.addr, st.sb.ARIURL, "http://"+ariProxy.addr+"/ari").Replace(string(cfg)))
	os.WriteFile(cfgPath, cfg, 0o644)

	p := startConnected(t, st.dir, st.env, 60*time.Second)
	const n = 20
	var callers []*asterisktest.SIPp
	for i := range n {
		c, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumber: fmt.Sprintf("+549115555%04d", i),
			DTMF: []asterisktest.DTMF{{After: 5 * time.Second, Digit: "1"}, {After: 10 * time.Second, Digit: "1"}, {After: 10 * time.Second, Digit: "1"}}, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, c)
	}
	if _, err := st.wa.WaitMessages(ctx, n); err != nil {
		t.Fatalf("waiting for %d messages: %v (%d arrived)", n, err, len(st.wa.Messages()))
	}
	reachedBridge := 0
	for _, c := range callers {
		if res, err := c.Wait(); err == nil && res.Successful == 1 {
			reachedBridge++
		}
	}
	p.waitLines(t, "20 calls over", n, 60*time.Second, over)

	// Key press (Asterisk's timestamp) to the POST at the fake API, per
	// call, by the message's key.
	pressed := map[string]time.Time{}
	p.mu.Lock()
	for _, l := range p.lines {
		if l["msg"] == "deflect: the caller accepted WhatsApp" {
			if sec, ok := l["pressed"].(float64); ok { // zap.Time in JSON: epoch seconds
				pressed[fmt.Sprint(l["call"])] = time.UnixMicro(int64(sec * 1e6))
			}
		}
	}
	p.mu.Unlock()
	var lat []time.Duration
	for _, m := range st.wa.Messages() {
		call, _, _ := strings.Cut(m.Body.BizOpaqueCallbackData, ":")
		if at, ok := pressed[call]; ok {
			lat = append(lat, m.Time.Sub(at))
		}
	}
	slices.Sort(lat)
	if len(lat) < n {
		t.Fatalf("key press to POST known for %d of %d calls", len(lat), n)
	}
	l := readLedger(st.wa)
	chaosRow{scenario: "200 ms round trip and 5 % loss to Redis and to ARI, 20 callers press 1", callers: n,
		reached: len(l.perTo), twice: l.twice(t), lost: n - l.kinds("offer"),
		note: fmt.Sprintf("key press to POST p50 %v, p99 %v, max %v; %d of %d sipp calls ended by the bridge as expected; proxied bytes: Redis %d, ARI %d",
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
			reachedBridge, n, redisProxy.bytes(), ariProxy.bytes())}.report(t)
}

// delayProxy forwards TCP connections to a target, holding every chunk
// for a fixed delay in each direction, in order: a line with latency and
// no bandwidth limit.
type delayProxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	total int64
}

func startDelayProxy(t *testing.T, target string, delay time.Duration) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{addr: ln.Addr().String(), ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); p.pump(up, c, delay) }()
			go func() { defer wg.Done(); p.pump(c, up, delay) }()
		}
	}()
	return p
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// pump copies src to dst, each chunk delay after it was read.
func (p *delayProxy) pump(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		for range q {
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.total += int64(n)
			p.mu.Unlock()
			q <- chunk{b: slices.Clone(buf[:n]), due: time.Now().Add(delay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// dropOnLoopback has nftables drop percent % of the TCP packets to and from
// the ports, on loopback only, until the test ends.
func dropOnLoopback(t *testing.T, percent int, ports ...int) {
	t.Helper()
	table := fmt.Sprintf("deflectd_chaos_%d", os.Getpid())
	var set []string
	for _, p := range ports {
		set = append(set, fmt.Sprint(p))
	}
	ps := "{ " + strings.Join(set, ", ") + " }"
	script := fmt.Sprintf(`table inet %[1]s {
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "lo" tcp dport %[2]s numgen random mod 100 < %[3]d drop
		oifname "lo" tcp sport %[2]s numgen random mod 100 < %[3]d drop
	}
}
`, table, ps, percent)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, script)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("removing the nft table %s: %v\n%s", table, err, out)
		}
	})
}
