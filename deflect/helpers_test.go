package deflect

// The harness of the engine's unit tests: the engine wired as in
// e2e_test.go (real ari client, real Redis, real outbox, real WhatsApp
// client against the fake Cloud API), with aritest standing in for
// Asterisk. A test plays Asterisk's part: it sends the call's events and
// reads the engine's REST calls back from aritest.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
)

const testApp = "deflect"

// testRules are the rules of most tests: e2e-rules.yaml with times short
// enough for a unit test.
type testRules struct {
	SLA, Reoffer, OfferTimeout string
	// EntryEWT, when set, makes sales offer at entry above that EWT.
	EntryEWT string
}

var defaultRules = testRules{SLA: "200ms", Reoffer: "400ms", OfferTimeout: "300ms"}

// immediate offers as soon as the call waits: the decision is then made
// before the engine reads the call's next event, so a test that ends the
// call knows the decision was made.
var immediate = testRules{SLA: "1ms", Reoffer: "400ms", OfferTimeout: "300ms"}

func (r testRules) yaml() string {
	sales := "      sla: " + r.SLA + "\n"
	if r.EntryEWT != "" {
		sales += "      offer_at_entry_ewt_above: " + r.EntryEWT + "\n"
	}
	return `route:
  name: root
  action: none
  short_abandon: 10s
  recover: true
  recover_template: queue_recover_v1
  routes:
    - name: self-service
      matchers: ['reason="order_status"']
      action: perform
      template: order_status_v1
    - name: sales
      matchers: ['queue="sales"']
      action: offer
      template: queue_deflect_v1
` + sales + `      reoffer_every: ` + r.Reoffer + `
      max_offers: 2
      offer_timeout: ` + r.OfferTimeout + `
    - name: support
      matchers: ['queue="support"']
      action: offer
      template: queue_deflect_v1
      sla: 300s
      max_offers: 1
`
}

// testClock is the wall clock plus an offset a test moves forward, for
// waits longer than a unit test should take.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// observer collects the transitions the engine reports.
type observer struct {
	mu      sync.Mutex
	trans   []Transition
	changed chan struct{}
	// hook, when set, sees each transition synchronously, on the call's
	// goroutine, before the engine goes on.
	hook func(Transition)
}

func newObserver() *observer { return &observer{changed: make(chan struct{})} }

func (o *observer) observe(tr Transition) {
	o.mu.Lock()
	hook := o.hook
	o.trans = append(o.trans, tr)
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
	if hook != nil {
		hook(tr)
	}
}

func (o *observer) setHook(h func(Transition)) {
	o.mu.Lock()
	o.hook = h
	o.mu.Unlock()
}

// of returns the transitions of one call so far, and a channel closed at
// the next transition of any call.
func (o *observer) of(callID string) ([]Transition, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Transition
	for _, tr := range o.trans {
		if tr.CallID == callID {
			out = append(out, tr)
		}
	}
	return out, o.changed
}

func (o *observer) states(callID string) []State {
	trs, _ := o.of(callID)
	out := make([]State, len(trs))
	for i, tr := range trs {
		out[i] = tr.To
	}
	return out
}

// harness is one test's fake Asterisk, Redis, fake Cloud API and outbox;
// engines come and go on top of them.
type harness struct {
	t     *testing.T
	ctx   context.Context
	ast   *aritest.Server
	redis *redistest.Server
	fake  *whatsapptest.Server
	cat   *whatsapp.Catalog
	ob    *outbox.Outbox
	rules *rules.Rules
	clock *testClock
	obs   *observer

	starts    int // engines started, each with its own snapshot at connect
	rdb       *redis.Client
	reapEvery time.Duration
}

type harnessOptions struct {
	rules     testRules
	tierLimit int
	// noOutboxRun leaves the outbox's workers off (the Redis-down test).
	noOutboxRun bool
	// dialOnce gives engines a Redis client that tries a connection once,
	// so that a dead Redis fails each command at once.
	dialOnce bool
	// reapEvery is the engines' Options.ReapEvery (default: theirs).
	reapEvery time.Duration
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.rules == (testRules{}) {
		o.rules = defaultRules
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, redis: redistest.Start(t), clock: &testClock{}, obs: newObserver(), reapEvery: o.reapEvery}
	var err error
	if h.rules, err = rules.Load(strings.NewReader(o.rules.yaml())); err != nil {
		t.Fatal(err)
	}
	if h.cat, err = whatsapp.LoadCatalogFile("../configs/deflectd/templates.yaml"); err != nil {
		t.Fatal(err)
	}
	h.ast = aritest.NewServer()
	t.Cleanup(h.ast.Close)
	// Asterisk knows the application from the moment a socket asks for
	// it; aritest registers it a moment after the client sees its socket
	// up, so the engine's first snapshot could find no application. Let
	// the application exist before any engine connects: a channel that
	// entered it and is gone.
	if err := h.ast.AddChannel(testApp, map[string]any{"id": "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := h.ast.Send(ctx, testApp, map[string]any{"type": "ChannelDestroyed", "channel": map[string]any{"id": "gone"}}); !errors.Is(err, aritest.ErrNotConnected) {
		t.Fatalf("removing the placeholder channel: %v, want aritest.ErrNotConnected", err)
	}
	h.fake = whatsapptest.NewServer(whatsapptest.Options{Token: "t", Templates: whatsapptest.TemplatesFromCatalog(h.cat)})
	t.Cleanup(h.fake.Close)
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: h.fake.URL, PhoneNumberID: h.fake.PhoneNumberID, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h.ob, err = outbox.New(outbox.Options{Redis: h.redis.Client(), Prefix: h.redis.Prefix, Sender: client, Validator: h.cat,
		PhoneNumberID: h.fake.PhoneNumberID, TierLimit: o.tierLimit, PairInterval: time.Millisecond,
		ReadBlock: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	h.rdb = h.redis.Client()
	if o.dialOnce {
		h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { h.rdb.Close() })
	}
	if !o.noOutboxRun {
		h.goRun("outbox", h.ob.Run)
	}
	return h
}

// goRun runs f until the test ends.
func (h *harness) goRun(name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil && ctx.Err() == nil {
			h.t.Errorf("%s: Run: %v", name, err)
		}
	}()
	h.t.Cleanup(func() { cancel(); <-done })
}

// instance is one running engine, with its own ari client and registry.
type instance struct {
	eng  *Engine
	reg  *prometheus.Registry
	stop func()
}

// startEngine starts an engine and returns once it has taken its snapshot
// of the application (so events sent from then on are not in it).
func (h *harness) startEngine() *instance {
	h.t.Helper()
	reg := prometheus.NewRegistry()
	ac, err := ari.New(ari.Options{URL: h.ast.URL, Username: h.ast.Username, Password: h.ast.Password, Application: testApp,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Registerer: reg})
	if err != nil {
		h.t.Fatal(err)
	}
	eng, err := New(Options{
		ARI: ac, Outbox: h.ob, Renderer: h.cat, Redis: h.rdb, Prefix: h.redis.Prefix,
		Rules: func() *rules.Rules { return h.rules }, DefaultRegion: "AR", DefaultLanguage: "es",
		TemplateLanguages: map[string]string{"es": "es_AR", "en": "en_US"},
		Observe:           h.obs.observe, Now: h.clock.Now, Logger: zaptest.NewLogger(h.t), Registerer: reg,
		ReapEvery: h.reapEvery,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{"ari": ac.Run, "engine": eng.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				h.t.Errorf("%s: Run: %v", name, err)
			}
		})
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	h.t.Cleanup(stop)
	h.starts++
	if err := h.ast.WaitConnected(h.ctx, testApp); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.ast.WaitCalls(h.ctx, "GET", "/bridges", h.starts); err != nil {
		h.t.Fatalf("waiting for the engine's snapshot: %v", err)
	}
	return &instance{eng: eng, reg: reg, stop: stop}
}

// send sends one event to the engine.
func (h *harness) send(ev map[string]any) {
	h.t.Helper()
	if err := h.ast.Send(h.ctx, testApp, ev); err != nil {
		h.t.Fatalf("sending %v: %v", ev["type"], err)
	}
}

// waitState waits for the nth (from 1) transition of the call to state.
func (h *harness) waitState(callID string, state State, n int) Transition {
	h.t.Helper()
	for {
		trs, changed := h.obs.of(callID)
		seen := 0
		for _, tr := range trs {
			if tr.To == state {
				if seen++; seen == n {
					return tr
				}
			}
		}
		select {
		case <-changed:
		case <-h.ctx.Done():
			h.t.Fatalf("call %s: states %q, want %s (#%d)", callID, h.obs.states(callID), state, n)
		}
	}
}

// quiet fails the test if the call makes a transition within d.
func (h *harness) quiet(callID string, d time.Duration) {
	h.t.Helper()
	before, _ := h.obs.of(callID)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		trs, changed := h.obs.of(callID)
		if len(trs) > len(before) {
			h.t.Fatalf("call %s: transition to %s within %v, want none (states %q)", callID, trs[len(before)].To, d, h.obs.states(callID))
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		}
	}
}

// calls returns the REST calls aritest received, but the event socket.
func (h *harness) calls() []aritest.Call {
	return slices.DeleteFunc(h.ast.Calls(), func(c aritest.Call) bool { return c.Path == "/events" })
}

// waitCall waits for the nth (from 1) request with that method and path.
func (h *harness) waitCall(method, path string, n int) aritest.Call {
	h.t.Helper()
	cs, err := h.ast.WaitCalls(h.ctx, method, path, n)
	if err != nil {
		h.t.Fatalf("waiting for %s %s #%d: %v; calls:\n%s", method, path, n, err, callList(h.calls()))
	}
	return cs[n-1]
}

// count counts the requests with that method and path (a prefix when it
// ends in '*').
func count(calls []aritest.Call, method, path string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method && (c.Path == path || strings.HasSuffix(path, "*") && strings.HasPrefix(c.Path, strings.TrimSuffix(path, "*"))) {
			n++
		}
	}
	return n
}

func callList(calls []aritest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s %s?%s\n", c.Method, c.Path, c.Query.Encode())
	}
	return b.String()
}

// metric returns the value of the series of name whose labels include
// the given name/value pairs, summed; 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
					return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}) {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// fakeCall is one caller, as the test plays Asterisk for it.
type fakeCall struct {
	h                  *harness
	id, number, queue  string
	args               []string
	caller, q1, q2, ag map[string]any
}

const ariTimeLayout = "2006-01-02T15:04:05.000-0700"

// newCall prepares a caller in queue=sales, option=2, reason=billing
// unless args say otherwise (args are Stasis() arguments after the
// application name).
func (h *harness) newCall(id, number string, args ...string) *fakeCall {
	if len(args) == 0 {
		args = []string{"queue=sales", "option=2", "reason=billing"}
	}
	queue := "sales"
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "queue="); ok {
			queue = v
		}
	}
	now := time.Now().Format(ariTimeLayout)
	c := &fakeCall{h: h, id: id, number: number, queue: queue, args: args}
	c.caller = map[string]any{
		"id": id, "name": "PJSIP/trunk-00000002", "state": "Ring", "protocol_id": "1-22628@127.0.0.1",
		"caller":      map[string]any{"name": "Alice Caller", "number": number},
		"connected":   map[string]any{"name": "", "number": ""},
		"accountcode": "",
		"dialplan": map[string]any{"context": "from-trunk", "exten": "100", "priority": 3, "app_name": "Stasis",
			"app_data": testApp + "," + strings.Join(args, ",")},
		"creationtime": now, "language": "es", "channelvars": map[string]any{"DEFLECT_ENTRY": "ivr-main"},
	}
	half := func(n int, app, data string) map[string]any {
		return map[string]any{
			"id": fmt.Sprintf("%s-q%d", id, n), "name": fmt.Sprintf("Local/%s@queue-entry-00000000;%d", queue, n),
			"state": "Up", "protocol_id": "",
			"caller":      map[string]any{"name": "Alice Caller", "number": number},
			"connected":   map[string]any{"name": "Alice Caller", "number": number},
			"accountcode": "",
			"dialplan": map[string]any{"context": "queue-entry", "exten": queue, "priority": 1, "app_name": app,
				"app_data": data},
			"creationtime": now, "language": "es", "channelvars": map[string]any{"DEFLECT_ENTRY": ""},
		}
	}
	c.q1 = half(1, "Stasis", testApp+","+proxyArg+","+id)
	c.q2 = half(2, "Queue", queue+",,,,300")
	c.ag = map[string]any{
		"id": id + "-agent", "name": "PJSIP/agent1-00000003", "state": "Up", "protocol_id": "134ae781",
		"caller":      map[string]any{"name": "Alice Caller", "number": number},
		"connected":   map[string]any{"name": "Alice Caller", "number": number},
		"accountcode": "",
		"dialplan": map[string]any{"context": "from-agent", "exten": queue, "priority": 1, "app_name": "AppQueue",
			"app_data": "(Outgoing Line)"},
		"creationtime": now, "language": "en",
	}
	return c
}

// enter sends the caller's StasisStart.
func (c *fakeCall) enter() {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "StasisStart", "args": c.args, "channel": c.caller})
}

// joinQueue sends the StasisStart of the Local channel's ;1 half, as
// Asterisk does once Queue() runs on the ;2 half, and waits for the engine
// to bridge it with the caller. The engine must have originated it: the
// call is waiting.
func (c *fakeCall) joinQueue() {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "StasisStart", "args": []string{proxyArg, c.id}, "channel": c.q1})
	c.h.waitCall("POST", "/bridges/br-"+c.id+"/addChannel", 2)
}

// enterQueued is enter, the wait for the waiting state, and joinQueue.
func (c *fakeCall) enterQueued() {
	c.h.t.Helper()
	c.enter()
	c.h.waitState(c.id, StateWaiting, 1)
	c.joinQueue()
}

func (c *fakeCall) dtmf(digit string) {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "ChannelDtmfReceived", "digit": digit, "duration_ms": 160, "channel": c.caller})
}

// play waits for the nth prompt the engine plays to the caller and
// returns its playback id and media.
func (c *fakeCall) play(n int) (id, media string) {
	c.h.t.Helper()
	call := c.h.waitCall("POST", "/channels/"+c.id+"/play/*", n)
	return call.Params["playbackId"], call.Query.Get("media")
}

func (c *fakeCall) playbackFinished(id, media string) {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{
		"id": id, "media_uri": media, "target_uri": "channel:" + c.id, "language": "es", "state": "done"}})
}

// agentAnswers sends the Dial event of an agent answering the queue.
func (c *fakeCall) agentAnswers() {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "Dial", "dialstatus": "ANSWER", "forward": "", "dialstring": "PJSIP/agent1",
		"caller": c.q2, "peer": c.ag})
}

// hangup sends the caller's StasisEnd and ChannelDestroyed.
func (c *fakeCall) hangup() {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "StasisEnd", "channel": c.caller})
	c.h.send(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": c.caller})
}

// queueEnds sends the StasisEnd of the ;1 half: the agent hung up, or the
// queue gave up.
func (c *fakeCall) queueEnds() {
	c.h.t.Helper()
	c.h.send(map[string]any{"type": "StasisEnd", "channel": c.q1})
}

// render renders a template of the catalog for a direct Enqueue.
func (h *harness) render(name, to string, cc whatsapp.CallContext) *whatsapp.Message {
	h.t.Helper()
	m, err := h.cat.Render(name, "es_AR", to, cc)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// first waits for the call's first transition.
func (h *harness) first(callID string) Transition {
	h.t.Helper()
	for {
		trs, changed := h.obs.of(callID)
		if len(trs) > 0 {
			return trs[0]
		}
		select {
		case <-changed:
		case <-h.ctx.Done():
			h.t.Fatalf("call %s: no transition", callID)
		}
	}
}

// store returns a store over the harness's Redis, as the engine's.
func (h *harness) store() *store {
	return &store{rdb: h.redis.Client(), p: h.redis.Prefix + "call:", ttl: time.Hour}
}

// record returns the call's record in Redis.
func (h *harness) record(callID string) *record {
	h.t.Helper()
	rec, err := h.store().load(h.ctx, callID)
	if err != nil {
		h.t.Fatalf("loading the record of %s: %v", callID, err)
	}
	return rec
}

// log returns the states of the call's transition log in Redis, without
// their times.
func (h *harness) log(callID string) []string {
	h.t.Helper()
	entries, err := h.store().transitions(h.ctx, callID)
	if err != nil {
		h.t.Fatal(err)
	}
	for i, e := range entries {
		entries[i], _, _ = strings.Cut(e, "@")
	}
	return entries
}

// next waits, at most d, for the call's next transition after the ones
// seen so far.
func (h *harness) next(callID string, d time.Duration) (Transition, bool) {
	h.t.Helper()
	seen, _ := h.obs.of(callID)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		trs, changed := h.obs.of(callID)
		if len(trs) > len(seen) {
			return trs[len(seen)], true
		}
		select {
		case <-changed:
		case <-timer.C:
			return Transition{}, false
		}
	}
}
