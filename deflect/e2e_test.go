//go:build e2e

package deflect_test

// The acceptance tests of the bridge: a real Asterisk 22 (the project's
// sandbox), real SIP calls from sipp, a real Redis, and the fake Cloud API.
// `make e2e` runs them, as root.

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/deflectd/deflectd/deflect"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	asterisktest.StopShared()
	os.Exit(code)
}

func startSandbox(t *testing.T) *asterisktest.Sandbox { return asterisktest.Shared(t) }

// bridge is deflectd's call path wired for a test.
type bridge struct {
	t      *testing.T
	sb     *asterisktest.Sandbox
	redis  *redistest.Server
	fake   *whatsapptest.Server
	ob     *outbox.Outbox
	engine *deflect.Engine
	reg    *prometheus.Registry
	stop   func()

	mu     sync.Mutex
	trans  []deflect.Transition
	notify chan struct{}
}

func newBridge(t *testing.T) *bridge {
	t.Helper()
	b := &bridge{t: t, sb: startSandbox(t), redis: redistest.Start(t), reg: prometheus.NewRegistry(), notify: make(chan struct{})}
	cat, err := whatsapp.LoadCatalogFile("../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.LoadFile("testdata/e2e-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b.fake = whatsapptest.NewServer(whatsapptest.Options{Token: "t", Templates: whatsapptest.TemplatesFromCatalog(cat)})
	t.Cleanup(b.fake.Close)
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: b.fake.URL, PhoneNumberID: b.fake.PhoneNumberID, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	b.ob, err = outbox.New(outbox.Options{Redis: b.redis.Client(), Prefix: b.redis.Prefix, Sender: client, Validator: cat,
		PhoneNumberID: b.fake.PhoneNumberID, ReadBlock: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond, Registerer: b.reg})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := ari.New(ari.Options{URL: b.sb.ARIURL, Username: b.sb.Username, Password: b.sb.Password, Application: "deflect",
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, Registerer: b.reg})
	if err != nil {
		t.Fatal(err)
	}
	b.engine, err = deflect.New(deflect.Options{
		ARI: ac, Outbox: b.ob, Renderer: cat, Redis: b.redis.Client(), Prefix: b.redis.Prefix,
		Rules: func() *rules.Rules { return rs }, DefaultRegion: "AR", DefaultLanguage: "es",
		TemplateLanguages: map[string]string{"es": "es_AR", "en": "en_US"},
		Observe:           b.observe, Logger: zaptest.NewLogger(t), Registerer: b.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{ac.Run, b.ob.Run, b.engine.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	var once sync.Once
	b.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(b.stop)
	return b
}

func (b *bridge) observe(tr deflect.Transition) {
	b.mu.Lock()
	b.trans = append(b.trans, tr)
	old := b.notify
	b.notify = make(chan struct{})
	b.mu.Unlock()
	close(old)
}

// waitState waits until the call of a caller number reached state, and
// returns its call id.
func (b *bridge) waitState(number string, state deflect.State, timeout time.Duration) string {
	b.t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		notify := b.notify
		for _, tr := range b.trans {
			if tr.Number == number && tr.To == state {
				b.mu.Unlock()
				return tr.CallID
			}
		}
		b.mu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			b.t.Fatalf("call from %s: states %q, want %s within %v", number, b.states(number), state, timeout)
		}
	}
}

func (b *bridge) states(number string) []deflect.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []deflect.State
	for _, tr := range b.trans {
		if tr.Number == number {
			out = append(out, tr.To)
		}
	}
	return out
}

func (b *bridge) counter(name string, labels ...string) float64 {
	b.t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		b.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

func wantSIPpOK(t *testing.T, p *asterisktest.SIPp, who string) {
	t.Helper()
	res, err := p.Wait()
	if err != nil {
		t.Fatalf("%s sipp: %v\n%s", who, err, res.Output)
	}
	if res.Successful != 1 || res.Failed != 0 {
		t.Fatalf("%s sipp: successful=%d failed=%d, want 1/0\n%s", who, res.Successful, res.Failed, res.Output)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Acceptance 1: an agent answers before the SLA: connected, no offer, no
// message.
func TestE2EShortWaitConnected(t *testing.T) {
	b := newBridge(t)
	ctx := ctxFor(t)
	agent, err := b.sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: time.Second, TalkFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+5491155550001"
	uac, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(number, deflect.StateConnected, 20*time.Second)
	wantSIPpOK(t, agent, "agent")
	wantSIPpOK(t, uac, "caller") // the bridge hangs the caller up when the agent leaves
	b.waitState(number, deflect.StateEnded, 10*time.Second)
	if n := b.counter("deflectd_offers_total"); n != 0 {
		t.Errorf("offers = %v, want 0", n)
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Errorf("WhatsApp requests = %d, want 0", n)
	}
	if n := b.counter("deflectd_calls_answered_total", "queue", "sales"); n != 1 {
		t.Errorf("answered = %v, want 1", n)
	}
}

// Acceptance 2: the wait passes the SLA, the offer plays, the caller
// presses 1: one template with the call's context, the caller hung up by
// the bridge, the counters right.
func TestE2EOfferAccepted(t *testing.T) {
	b := newBridge(t)
	ctx := ctxFor(t)
	agent, err := b.sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+5491155550002"
	uac, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number,
		DTMF: []asterisktest.DTMF{{After: 6 * time.Second, Digit: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(number, deflect.StateOffered, 20*time.Second)
	id := b.waitState(number, deflect.StateDeflected, 20*time.Second)
	msgs, err := b.fake.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0].Body
	if m.To != "5491155550002" || m.Template == nil || m.Template.Name != "queue_deflect_v1" {
		t.Fatalf("message = %s, want queue_deflect_v1 to 5491155550002", msgs[0].Raw)
	}
	raw := string(msgs[0].Raw)
	for _, want := range []string{`"text":"Facturación"`, `"text":"2"`, `"payload":"dfl:` + id + `:offer"`, `"biz_opaque_callback_data":"` + id + `:offer"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %s: %s", want, raw)
		}
	}
	if !strings.Contains(raw, ` min"`) {
		t.Errorf("message lacks the wait: %s", raw)
	}
	// The queue travels with the job, for the inbox and for conversions.
	job, err := b.ob.Get(ctx, id+":offer")
	if err != nil {
		t.Fatal(err)
	}
	if job.Meta["queue"] != "sales" || job.Meta["reason"] != "billing" || job.Meta["option"] != "2" || job.Meta["wait_s"] == "" {
		t.Errorf("job context = %v, want queue sales, reason billing, option 2 and the wait", job.Meta)
	}
	wantSIPpOK(t, uac, "caller") // hung up by the bridge after the confirmation
	wantSIPpOK(t, agent, "agent")
	b.waitState(number, deflect.StateEnded, 10*time.Second)
	for name, want := range map[string]float64{
		"deflectd_calls_entered_total":   1,
		"deflectd_offers_total":          1,
		"deflectd_offer_responses_total": 1,
		"deflectd_deflections_total":     1,
		"deflectd_calls_abandoned_total": 0,
	} {
		if got := b.counter(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := b.counter("deflectd_offer_responses_total", "response", "accepted"); got != 1 {
		t.Errorf("accepted = %v, want 1", got)
	}
	if got := len(b.fake.Requests()); got != 1 {
		t.Errorf("WhatsApp requests = %d, want 1", got)
	}
	_ = testutil.ToFloat64
}

// Acceptance 3: the caller declines (2); they stay queued, keep their
// position, and are connected when an agent answers.
func TestE2EOfferDeclined(t *testing.T) {
	b := newBridge(t)
	ctx := ctxFor(t)
	agent, err := b.sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: 12 * time.Second, TalkFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+5491155550003"
	uac, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number,
		DTMF: []asterisktest.DTMF{{After: 6 * time.Second, Digit: "2"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := b.waitState(number, deflect.StateOffered, 20*time.Second)
	b.waitState(number, deflect.StateConnected, 30*time.Second)
	wantSIPpOK(t, agent, "agent")
	wantSIPpOK(t, uac, "caller")
	if got := b.counter("deflectd_offer_responses_total", "response", "declined"); got != 1 {
		t.Errorf("declined = %v, want 1", got)
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Errorf("WhatsApp requests = %d, want 0", n)
	}
	// The caller never left the queue: one ENTERQUEUE, then CONNECT.
	entries, err := b.sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range entries {
		if e.CallID == id+"-q2" {
			events = append(events, e.Event)
		}
	}
	if len(events) < 2 || events[0] != "ENTERQUEUE" || events[1] != "CONNECT" {
		t.Errorf("queue_log of the call = %q, want ENTERQUEUE then CONNECT", events)
	}
}

// Acceptance 4: a caller who hangs up after 30 s gets one recovery
// template; one who hangs up after 3 s is a short abandon with no message.
func TestE2EAbandon(t *testing.T) {
	b := newBridge(t)
	ctx := ctxFor(t)
	agent, err := b.sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent2", AnswerAfter: 2 * time.Minute, Calls: 2})
	if err != nil {
		t.Fatal(err)
	}
	const long, short = "+5491155550004", "+5491155550005"
	uacLong, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "102", CallerNumber: long, HangupAfter: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	uacShort, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "102", CallerNumber: short, HangupAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(short, deflect.StateShortAbandoned, 20*time.Second)
	wantSIPpOK(t, uacShort, "short caller")
	id := b.waitState(long, deflect.StateAbandoned, 45*time.Second)
	wantSIPpOK(t, uacLong, "long caller")
	msgs, err := b.fake.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0].Body; m.Template == nil || m.Template.Name != "queue_recover_v1" || m.BizOpaqueCallbackData != id+":recover" {
		t.Errorf("message = %s, want queue_recover_v1 for %s", msgs[0].Raw, id)
	}
	agent.Stop()
	if got := len(b.fake.Requests()); got != 1 {
		t.Errorf("WhatsApp requests = %d, want 1 (no message for the short abandon)", got)
	}
	if got := b.counter("deflectd_calls_short_abandoned_total", "queue", "support"); got != 1 {
		t.Errorf("short abandons = %v, want 1", got)
	}
	if got := b.counter("deflectd_deflections_total", "mode", "recover"); got != 1 {
		t.Errorf("recoveries = %v, want 1", got)
	}
}

// Acceptance 5: reason=order_status with a perform rule: the message goes
// without an offer and the caller is released.
func TestE2EPerform(t *testing.T) {
	b := newBridge(t)
	ctx := ctxFor(t)
	const number = "+5491155550006"
	uac, err := b.sb.Call(ctx, asterisktest.CallOptions{Exten: "101", CallerNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(number, deflect.StatePerformed, 20*time.Second)
	msgs, err := b.fake.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0].Body; m.Template == nil || m.Template.Name != "order_status_v1" {
		t.Errorf("message = %s, want order_status_v1", msgs[0].Raw)
	}
	id := b.waitState(number, deflect.StateEnded, 20*time.Second)
	wantSIPpOK(t, uac, "caller") // released by the bridge after the prompt
	entries, err := b.sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.CallID == id+"-q2" {
			t.Errorf("queue_log has %s for a performed call, want nothing: it never queues", e.Event)
		}
	}
	if got := b.counter("deflectd_offers_total"); got != 0 {
		t.Errorf("offers = %v, want 0", got)
	}
	if got := b.counter("deflectd_deflections_total", "mode", "perform"); got != 1 {
		t.Errorf("performed = %v, want 1", got)
	}
}

// Acceptance 7: with deflectd down, new calls reach the queue through the
// dialplan fallback.
func TestE2EBridgeDownFallback(t *testing.T) {
	sb := startSandbox(t)
	ctx := ctxFor(t)
	agent, err := sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: 500 * time.Millisecond, TalkFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+5491155550007"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number, HangupAfter: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wantSIPpOK(t, agent, "agent")
	wantSIPpOK(t, uac, "caller")
	entries, err := sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	for _, e := range entries {
		if e.Event == "ENTERQUEUE" && len(e.Data) > 1 && e.Data[1] == number {
			ok = true
		}
	}
	if !ok {
		t.Errorf("queue_log has no ENTERQUEUE for %s: the dialplan fallback did not queue the call", number)
	}
}
