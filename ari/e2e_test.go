//go:build e2e

package ari_test

// The acceptance tests of the ari package against a real Asterisk 22 (the
// project's sandbox) and real SIP calls from sipp. `make e2e` runs them; they
// need root. With DEFLECTD_REQUIRE_DEPS=1 (as in CI) a missing dependency
// fails them instead of skipping.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/prometheus/client_golang/prometheus"
)

const app = "deflect" // the application name of configs/asterisk/extensions.conf

func TestMain(m *testing.M) {
	code := m.Run()
	asterisktest.StopShared()
	os.Exit(code)
}

func startSandbox(t *testing.T) *asterisktest.Sandbox { return asterisktest.Shared(t) }

// recorder keeps every event a client delivered, so a test can wait for one
// that may already have arrived.
type recorder struct {
	mu     sync.Mutex
	events []ari.Event
	err    error // Next's terminal error
	notify chan struct{}
}

func (r *recorder) add(ev ari.Event, err error) {
	r.mu.Lock()
	if ev != nil {
		r.events = append(r.events, ev)
	}
	if err != nil {
		r.err = err
	}
	old := r.notify
	r.notify = make(chan struct{})
	r.mu.Unlock()
	close(old)
}

// waitFor returns the first event matching pred, waiting up to timeout.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, pred func(ari.Event) bool) ari.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		r.mu.Lock()
		for ; seen < len(r.events); seen++ {
			if pred(r.events[seen]) {
				ev := r.events[seen]
				r.mu.Unlock()
				return ev
			}
		}
		notify, err := r.notify, r.err
		r.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: stream ended: %v", what, err)
		}
		select {
		case <-notify:
		case <-deadline.C:
			t.Fatalf("waiting for %s: none in %v; got %d events: %s", what, timeout, seen, r.summary())
		}
	}
}

// has reports whether an event matching pred has arrived.
func (r *recorder) has(pred func(ari.Event) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if pred(ev) {
			return true
		}
	}
	return false
}

func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		fmt.Fprintf(&b, "%s%v ", ev.Header().Type, ari.ChannelIDs(ev))
	}
	return b.String()
}

type client struct {
	*ari.Client
	rec  *recorder
	reg  *prometheus.Registry
	done chan error // Run's result
}

// startClient runs a client of the application against url until the test
// ends, recording its events.
func startClient(t *testing.T, sb *asterisktest.Sandbox, url string, tune func(*ari.Options)) *client {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := ari.Options{
		URL: url, Username: sb.Username, Password: sb.Password, Application: app,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		PingInterval: time.Second, PongTimeout: time.Second,
		Registerer: reg,
	}
	if tune != nil {
		tune(&opts)
	}
	c, err := ari.New(opts)
	if err != nil {
		t.Fatalf("ari.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &client{Client: c, rec: &recorder{notify: make(chan struct{})}, reg: reg, done: make(chan error, 1)}
	go func() { cl.done <- c.Run(ctx) }()
	go func() {
		for {
			ev, err := c.Next(context.Background())
			cl.rec.add(ev, err)
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-cl.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after its context ended")
		}
	})
	cl.rec.waitFor(t, 10*time.Second, "Connected", isType(ari.TypeConnected))
	return cl
}

func isType(typ string) func(ari.Event) bool {
	return func(ev ari.Event) bool { return ev.Header().Type == typ }
}

func stasisStartFrom(number string) func(ari.Event) bool {
	return func(ev ari.Event) bool {
		e, ok := ev.(*ari.StasisStart)
		return ok && e.Channel.Caller.Number == number
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantSIPpOK waits for a sipp process and checks that its calls succeeded.
func wantSIPpOK(t *testing.T, p *asterisktest.SIPp, who string, calls int) {
	t.Helper()
	res, err := p.Wait()
	if err != nil {
		t.Fatalf("%s sipp: %v\n%s", who, err, res.Output)
	}
	if res.Successful != calls || res.Failed != 0 || res.ExitCode != 0 {
		t.Fatalf("%s sipp: successful=%d failed=%d exit=%d, want %d/0/0\n%s", who, res.Successful, res.Failed, res.ExitCode, calls, res.Output)
	}
}

// Acceptance 1: sipp calls the IVR; StasisStart carries the args and the
// caller number; answer, play, PlaybackFinished, hang up; sipp ends cleanly.
func TestE2EBasicCall(t *testing.T) {
	sb := startSandbox(t)
	cl := startClient(t, sb, sb.ARIURL, nil)
	ctx := ctxFor(t)

	const number = "+15551230001"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	start := cl.rec.waitFor(t, 15*time.Second, "StasisStart", stasisStartFrom(number)).(*ari.StasisStart)
	for key, want := range map[string]string{"queue": "sales", "option": "2", "reason": "billing"} {
		if got, _ := start.Arg(key); got != want {
			t.Errorf("StasisStart.Arg(%q) = %q, want %q (args %q)", key, got, want, start.Args)
		}
	}
	if start.Timestamp.IsZero() || start.Application != app {
		t.Errorf("StasisStart header = %+v, want a timestamp and application %q", start.EventHeader, app)
	}
	id := start.Channel.ID
	if err := cl.Answer(ctx, id); err != nil {
		t.Fatal(err)
	}
	pb, err := cl.Play(ctx, id, ari.PlayRequest{Media: []string{"sound:hello-world"}, PlaybackID: "pb-" + id})
	if err != nil {
		t.Fatal(err)
	}
	if pb.ID != "pb-"+id || pb.TargetURI != "channel:"+id {
		t.Errorf("Play() = %+v, want id pb-%s on channel:%s", pb, id, id)
	}
	fin := cl.rec.waitFor(t, 15*time.Second, "PlaybackFinished", func(ev ari.Event) bool {
		e, ok := ev.(*ari.PlaybackFinished)
		return ok && e.Playback.ID == pb.ID
	}).(*ari.PlaybackFinished)
	if fin.Playback.State != "done" {
		t.Errorf("PlaybackFinished state = %q, want done", fin.Playback.State)
	}
	if err := cl.Hangup(ctx, id, ari.HangupNormal); err != nil {
		t.Fatal(err)
	}
	cl.rec.waitFor(t, 10*time.Second, "StasisEnd", func(ev ari.Event) bool {
		e, ok := ev.(*ari.StasisEnd)
		return ok && e.Channel.ID == id
	})
	wantSIPpOK(t, uac, "caller", 1)

	// The channel is gone: the error keeps the status and Asterisk's words.
	err = cl.Answer(ctx, id)
	var aerr *ari.Error
	if !errors.Is(err, ari.ErrNotFound) || !errors.As(err, &aerr) || aerr.Message == "" {
		t.Errorf("Answer(gone channel) = %v, want ErrNotFound with Asterisk's message", err)
	}
}

// Acceptance 2: DTMF from sipp arrives as ChannelDtmfReceived with the digit.
func TestE2EDTMF(t *testing.T) {
	sb := startSandbox(t)
	cl := startClient(t, sb, sb.ARIURL, nil)
	ctx := ctxFor(t)

	const number = "+15551230002"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{
		Exten: "100", CallerNumber: number,
		DTMF: []asterisktest.DTMF{{After: time.Second, Digit: "1"}, {After: 300 * time.Millisecond, Digit: "7"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := cl.rec.waitFor(t, 15*time.Second, "StasisStart", stasisStartFrom(number)).(*ari.StasisStart).Channel.ID
	if err := cl.Answer(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, digit := range []string{"1", "7"} {
		cl.rec.waitFor(t, 15*time.Second, "ChannelDtmfReceived "+digit, func(ev ari.Event) bool {
			e, ok := ev.(*ari.ChannelDtmfReceived)
			return ok && e.Channel.ID == id && e.Digit == digit
		})
	}
	if err := cl.Hangup(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	wantSIPpOK(t, uac, "caller", 1)
}

// queuedCall is a caller held in the application, in a mixing bridge with
// the ;1 half of a Local channel whose ;2 half runs Queue().
type queuedCall struct {
	caller, q1, q2, bridge string
}

// enqueue applies the Local-channel queue pattern to a caller that just
// entered the application.
func enqueue(t *testing.T, ctx context.Context, cl *client, start *ari.StasisStart) queuedCall {
	t.Helper()
	id := start.Channel.ID
	qc := queuedCall{caller: id, q1: id + "-q1", q2: id + "-q2", bridge: "br-" + id}
	queue, _ := start.Arg("queue")
	if err := cl.Answer(ctx, id); err != nil {
		t.Fatal(err)
	}
	br, err := cl.CreateBridge(ctx, ari.BridgeRequest{ID: qc.bridge, Type: ari.BridgeMixing, Name: "deflect-" + id})
	if err != nil {
		t.Fatal(err)
	}
	if br.ID != qc.bridge {
		t.Fatalf("CreateBridge().ID = %q, want %q", br.ID, qc.bridge)
	}
	if err := cl.AddChannel(ctx, qc.bridge, ari.AddChannelRequest{Channels: []string{id}}); err != nil {
		t.Fatal(err)
	}
	ch, err := cl.Originate(ctx, ari.OriginateRequest{
		Endpoint: "Local/" + queue + "@queue-entry/n", AppArgs: "qproxy," + id,
		ChannelID: qc.q1, OtherChannelID: qc.q2,
		CallerID: fmt.Sprintf("%q <%s>", start.Channel.Caller.Name, start.Channel.Caller.Number),
		Timeout:  2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch.ID != qc.q1 {
		t.Fatalf("Originate().ID = %q, want %q", ch.ID, qc.q1)
	}
	if err := cl.SubscribeChannel(ctx, qc.q2); err != nil {
		t.Fatal(err)
	}
	q1 := cl.rec.waitFor(t, 10*time.Second, "StasisStart of ;1", func(ev ari.Event) bool {
		e, ok := ev.(*ari.StasisStart)
		return ok && e.Channel.ID == qc.q1
	}).(*ari.StasisStart)
	if len(q1.Args) != 2 || q1.Args[0] != "qproxy" || q1.Args[1] != id {
		t.Errorf("StasisStart(;1).Args = %q, want [qproxy %s]", q1.Args, id)
	}
	if err := cl.AddChannel(ctx, qc.bridge, ari.AddChannelRequest{Channels: []string{qc.q1}}); err != nil {
		t.Fatal(err)
	}
	return qc
}

func dialOn(q2, status string) func(ari.Event) bool {
	return func(ev ari.Event) bool {
		e, ok := ev.(*ari.Dial)
		return ok && e.Caller != nil && e.Caller.ID == q2 && e.DialStatus == status
	}
}

func stasisEndOf(id string) func(ari.Event) bool {
	return func(ev ari.Event) bool {
		e, ok := ev.(*ari.StasisEnd)
		return ok && e.Channel.ID == id
	}
}

// Acceptance 3: caller in a mixing bridge, Local channel into the queue with
// chosen ids, an agent answers: the client sees Dial ANSWER on ;2 while the
// caller stays in Stasis.
func TestE2ELocalChannelQueue(t *testing.T) {
	sb := startSandbox(t)
	cl := startClient(t, sb, sb.ARIURL, nil)
	ctx := ctxFor(t)

	agent, err := sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+15551230003"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	start := cl.rec.waitFor(t, 15*time.Second, "StasisStart", stasisStartFrom(number)).(*ari.StasisStart)
	qc := enqueue(t, ctx, cl, start)

	cl.rec.waitFor(t, 15*time.Second, "Dial RINGING on ;2", dialOn(qc.q2, ari.DialRinging))
	ans := cl.rec.waitFor(t, 15*time.Second, "Dial ANSWER on ;2", dialOn(qc.q2, ari.DialAnswer)).(*ari.Dial)
	if !strings.HasPrefix(ans.Peer.Name, "PJSIP/agent1-") {
		t.Errorf("Dial ANSWER peer = %q, want the agent's channel PJSIP/agent1-…", ans.Peer.Name)
	}
	if cl.rec.has(stasisEndOf(qc.caller)) {
		t.Fatalf("caller left Stasis when the agent answered")
	}
	ch, err := cl.GetChannel(ctx, qc.caller)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Dialplan.AppName != "Stasis" {
		t.Errorf("caller dialplan app = %q, want Stasis", ch.Dialplan.AppName)
	}
	br, err := cl.GetBridge(ctx, qc.bridge)
	if err != nil {
		t.Fatal(err)
	}
	if len(br.Channels) != 2 {
		t.Errorf("bridge channels = %q, want the caller and ;1", br.Channels)
	}
	// The queue's own variables on ;2 tell the wait and the position.
	cl.rec.waitFor(t, 5*time.Second, "QUEUEWAIT on ;2", func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelVarset)
		return ok && e.Channel != nil && e.Channel.ID == qc.q2 && e.Variable == "QUEUEWAIT" && e.Value != ""
	})

	// Tear down as the bridge will: caller, then the Local half and bridge.
	if err := cl.Hangup(ctx, qc.caller, ""); err != nil {
		t.Fatal(err)
	}
	if err := cl.Hangup(ctx, qc.q1, ""); err != nil && !errors.Is(err, ari.ErrNotFound) {
		t.Fatal(err)
	}
	if err := cl.DestroyBridge(ctx, qc.bridge); err != nil && !errors.Is(err, ari.ErrNotFound) {
		t.Fatal(err)
	}
	wantSIPpOK(t, uac, "caller", 1)
	wantSIPpOK(t, agent, "agent", 1)
	wantQueueLog(t, sb, qc.q2, "ENTERQUEUE", "CONNECT")
}

// Acceptance 4: the caller hangs up while queued; the client sees it and can
// tell "abandoned while waiting": StasisEnd of the caller with no ANSWER on
// ;2, then, once the Local half is hung up, ABANDONED=TRUE on ;2.
func TestE2EAbandonWhileQueued(t *testing.T) {
	sb := startSandbox(t)
	cl := startClient(t, sb, sb.ARIURL, nil)
	ctx := ctxFor(t)

	agent, err := sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const number = "+15551230004"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number, HangupAfter: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := cl.rec.waitFor(t, 15*time.Second, "StasisStart", stasisStartFrom(number)).(*ari.StasisStart)
	qc := enqueue(t, ctx, cl, start)
	cl.rec.waitFor(t, 15*time.Second, "Dial RINGING on ;2", dialOn(qc.q2, ari.DialRinging))

	cl.rec.waitFor(t, 15*time.Second, "caller hangup", func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelHangupRequest)
		return ok && e.Channel.ID == qc.caller
	})
	cl.rec.waitFor(t, 5*time.Second, "caller StasisEnd", stasisEndOf(qc.caller))
	if cl.rec.has(dialOn(qc.q2, ari.DialAnswer)) {
		t.Fatalf("an agent answered; the test wants an abandon")
	}
	// Asterisk leaves ;1 queued as a phantom caller unless the bridge
	// hangs it up.
	if err := cl.Hangup(ctx, qc.q1, ""); err != nil {
		t.Fatal(err)
	}
	if err := cl.DestroyBridge(ctx, qc.bridge); err != nil && !errors.Is(err, ari.ErrNotFound) {
		t.Fatal(err)
	}
	cl.rec.waitFor(t, 10*time.Second, "Dial CANCEL on ;2", dialOn(qc.q2, ari.DialCancel))
	cl.rec.waitFor(t, 10*time.Second, "ABANDONED=TRUE on ;2", func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelVarset)
		return ok && e.Channel != nil && e.Channel.ID == qc.q2 && e.Variable == "ABANDONED" && e.Value == "TRUE"
	})
	cl.rec.waitFor(t, 10*time.Second, "ChannelDestroyed of ;2", func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelDestroyed)
		return ok && e.Channel.ID == qc.q2
	})
	wantSIPpOK(t, uac, "caller", 1)
	wantSIPpOK(t, agent, "agent", 1) // it got a CANCEL and answered it 200/487
	wantQueueLog(t, sb, qc.q2, "ENTERQUEUE", "ABANDON")
}

// wantQueueLog checks that queue_log has the events, in order, for a call id.
func wantQueueLog(t *testing.T, sb *asterisktest.Sandbox, callID string, events ...string) {
	t.Helper()
	entries, err := sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.CallID == callID {
			got = append(got, e.Event)
		}
	}
	i := 0
	for _, ev := range got {
		if i < len(events) && ev == events[i] {
			i++
		}
	}
	if i != len(events) {
		t.Errorf("queue_log events of %s = %q, want %q in order", callID, got, events)
	}
}

// Acceptance 5: the websocket is cut; calls placed meanwhile reach the queue
// through the dialplan fallback; the client reconnects with backoff, reports
// the gap, and a resync lists the channel still in the application.
func TestE2EReconnectAndFallback(t *testing.T) {
	sb := startSandbox(t)
	px := newCutProxy(t, strings.TrimPrefix(strings.TrimSuffix(sb.ARIURL, "/ari"), "http://"))
	cl := startClient(t, sb, "http://"+px.addr()+"/ari", nil)
	ctx := ctxFor(t)

	// A caller already in the application before the cut.
	const held = "+15551230005"
	uacHeld, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: held})
	if err != nil {
		t.Fatal(err)
	}
	heldID := cl.rec.waitFor(t, 15*time.Second, "StasisStart", stasisStartFrom(held)).(*ari.StasisStart).Channel.ID
	if err := cl.Answer(ctx, heldID); err != nil {
		t.Fatal(err)
	}

	px.setRefuse(true)
	px.cut()
	disc := cl.rec.waitFor(t, 10*time.Second, "Disconnected", isType(ari.TypeDisconnected)).(*ari.Disconnected)
	if disc.Err == nil {
		t.Errorf("Disconnected.Err = nil, want the reason")
	}
	cutAt := time.Now()

	// While the bridge is away, a new call falls back to Queue(sales).
	agent, err := sb.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: 500 * time.Millisecond, TalkFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const fallback = "+15551230006"
	uacFallback, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: fallback, HangupAfter: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wantSIPpOK(t, agent, "agent (fallback)", 1)
	wantSIPpOK(t, uacFallback, "caller (fallback)", 1)
	entries, err := sb.QueueLog()
	if err != nil {
		t.Fatal(err)
	}
	var enter, connect bool
	for _, e := range entries {
		if e.Queue == "sales" && e.Event == "ENTERQUEUE" && len(e.Data) > 1 && e.Data[1] == fallback {
			enter = true
		}
		if enter && e.Queue == "sales" && e.Event == "CONNECT" {
			connect = true
		}
	}
	if !enter || !connect {
		t.Errorf("queue_log: fallback caller ENTERQUEUE=%v CONNECT=%v, want both", enter, connect)
	}
	if cl.rec.has(stasisStartFrom(fallback)) {
		t.Errorf("the fallback call reached the application, want the dialplan to queue it")
	}

	px.setRefuse(false)
	re := cl.rec.waitFor(t, 15*time.Second, "Connected (reconnect)", func(ev ari.Event) bool {
		e, ok := ev.(*ari.Connected)
		return ok && e.Reconnect
	}).(*ari.Connected)
	if min := time.Since(cutAt) / 2; re.Gap < min || re.Gap <= 0 {
		t.Errorf("Connected.Gap = %v, want the time disconnected (≥ %v)", re.Gap, min)
	}
	if got := metricValue(t, cl.reg, "deflectd_ari_connect_failures_total"); got < 1 {
		t.Errorf("connect failures = %v, want ≥ 1 (retries while refused)", got)
	}
	snap, err := cl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ch := range snap.Channels {
		found = found || ch.ID == heldID
	}
	if !found {
		t.Errorf("Snapshot().Channels = %v, want the held caller %s", snap.Channels, heldID)
	}
	// And the held caller is still ours to control.
	if err := cl.Hangup(ctx, heldID, ""); err != nil {
		t.Fatal(err)
	}
	wantSIPpOK(t, uacHeld, "caller (held)", 1)
}

// metricValue returns the sum of a metric's counter or gauge values in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// Acceptance 6: a second client with the same application name takes it; the
// first reports ApplicationReplaced and stops for good.
func TestE2EApplicationReplaced(t *testing.T) {
	sb := startSandbox(t)
	first := startClient(t, sb, sb.ARIURL, nil)
	second := startClient(t, sb, sb.ARIURL, nil)

	select {
	case err := <-first.done:
		if !errors.Is(err, ari.ErrApplicationReplaced) {
			t.Fatalf("first Run() = %v, want ErrApplicationReplaced", err)
		}
		first.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("first client still running 10 s after being replaced")
	}
	first.rec.waitFor(t, 5*time.Second, "ApplicationReplaced", isType(ari.TypeApplicationReplaced))
	disc := first.rec.waitFor(t, 5*time.Second, "Disconnected", isType(ari.TypeDisconnected)).(*ari.Disconnected)
	if !errors.Is(disc.Err, ari.ErrApplicationReplaced) {
		t.Errorf("Disconnected.Err = %v, want ErrApplicationReplaced", disc.Err)
	}
	if st := first.State(); st != ari.StateStopped {
		t.Errorf("first State() = %v, want stopped", st)
	}

	// Calls now go to the second client, and the first does not come back.
	ctx := ctxFor(t)
	const number = "+15551230007"
	uac, err := sb.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	id := second.rec.waitFor(t, 15*time.Second, "StasisStart on the second client", stasisStartFrom(number)).(*ari.StasisStart).Channel.ID
	if err := second.Answer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := second.Hangup(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	wantSIPpOK(t, uac, "caller", 1)
	if first.rec.has(stasisStartFrom(number)) {
		t.Errorf("the replaced client received a call")
	}
	if st := second.State(); st != ari.StateConnected {
		t.Errorf("second State() = %v, want connected", st)
	}
}

// cutProxy is a TCP proxy on loopback in front of Asterisk's HTTP port, so
// a test can cut the websocket without restarting Asterisk (which would end
// the calls a resync must find).
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu     sync.Mutex
	refuse bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) setRefuse(v bool) {
	p.mu.Lock()
	p.refuse = v
	p.mu.Unlock()
}

// cut closes every proxied connection at once.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) serve() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			down.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns[down], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { io.Copy(up, down); up.Close(); down.Close() }()
		go func() { io.Copy(down, up); up.Close(); down.Close() }()
	}
}
