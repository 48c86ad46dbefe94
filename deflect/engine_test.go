package deflect

// Unit tests of the engine: each plays Asterisk's part over aritest (a fake
// ARI over real HTTP and websocket), with a real Redis, the real outbox and
// WhatsApp client, and the fake Cloud API. The helpers are in
// helpers_test.go.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	callID = "1795234870.2"
	mobile = "+5491155550001"
)

// restCall is a REST call as the tests compare them.
type restCall struct {
	Method, Path string
	Query        url.Values
}

// changes returns the calls that change something (not GETs), in order.
func changes(calls []aritest.Call) []restCall {
	var out []restCall
	for _, c := range calls {
		if c.Method != http.MethodGet {
			out = append(out, restCall{c.Method, c.Path, c.Query})
		}
	}
	return out
}

// sentTemplate is what the tests check of a template message the fake
// Cloud API accepted.
type sentTemplate struct {
	To, Name, Language, Callback string
	Body, Payloads               []string
}

func sentOf(m whatsapptest.Message) sentTemplate {
	s := sentTemplate{To: m.Body.To, Callback: m.Body.BizOpaqueCallbackData}
	if tb := m.Body.Template; tb != nil {
		s.Name, s.Language = tb.Name, tb.LanguageCode
		for _, c := range tb.Components {
			for _, p := range c.Parameters {
				switch c.Type {
				case "body":
					s.Body = append(s.Body, p.Text)
				case "button":
					s.Payloads = append(s.Payloads, p.Payload)
				}
			}
		}
	}
	return s
}

func TestEngineQueueSetup(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "300s", Reoffer: "1s", OfferTimeout: "1s"}})
	inst := h.startEngine()
	before := len(h.calls())
	c := h.newCall(callID, mobile)
	c.enterQueued()

	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	want := []restCall{
		{"POST", "/channels/" + callID + "/answer", nil},
		{"POST", "/bridges", q("type", "mixing", "bridgeId", "br-"+callID, "name", "deflect-"+callID)},
		{"POST", "/bridges/br-" + callID + "/addChannel", q("channel", callID)},
		{"POST", "/channels", q("endpoint", "Local/sales@queue-entry/n", "app", testApp, "appArgs", "qproxy,"+callID,
			"channelId", callID+"-q1", "otherChannelId", callID+"-q2", "callerId", `"Alice Caller" <`+mobile+`>`, "timeout", "3600")},
		{"POST", "/applications/" + testApp + "/subscription", q("eventSource", "channel:"+callID+"-q2")},
		{"POST", "/bridges/br-" + callID + "/addChannel", q("channel", callID+"-q1")},
	}
	if diff := cmp.Diff(want, changes(h.calls()[before:]), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("REST calls setting the call up (-want +got):\n%s", diff)
	}
	read := map[string]bool{}
	for _, c := range h.calls() {
		if c.Method == "GET" && c.Path == "/channels/"+callID+"/variable" {
			read[c.Query.Get("variable")] = true
		}
	}
	if diff := cmp.Diff(map[string]bool{"QUEUE_MEMBER(sales,logged)": true, "QUEUE_MEMBER(sales,ready)": true}, read); diff != "" {
		t.Errorf("variables read on entry (-want +got):\n%s", diff)
	}
	if got := metric(t, inst.reg, "deflectd_calls_waiting", "queue", "sales"); got != 1 {
		t.Errorf("deflectd_calls_waiting{queue=sales} = %v, want 1", got)
	}

	// A short abandon takes down what the bridge built.
	before = len(h.calls())
	c.hangup()
	h.waitState(callID, StateShortAbandoned, 1)
	h.waitCall("DELETE", "/bridges/br-"+callID, 1)
	want = []restCall{
		{"DELETE", "/channels/" + callID + "-q1", nil},
		{"DELETE", "/bridges/br-" + callID, nil},
	}
	if diff := cmp.Diff(want, changes(h.calls()[before:]), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("REST calls after the caller hung up (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]State{StateEntered, StateWaiting, StateShortAbandoned}, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	for name, want := range map[string]float64{
		"deflectd_calls_entered_total":         1,
		"deflectd_calls_short_abandoned_total": 1,
		"deflectd_calls_waiting":               0,
		"deflectd_offers_total":                0,
	} {
		if got := metric(t, inst.reg, name, "queue", "sales"); got != want {
			t.Errorf("%s{queue=sales} = %v, want %v", name, got, want)
		}
	}
}

func TestEngineOfferAccepted(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// At the moment the call is accepted, the acceptance must already be
	// in Redis and nothing in the outbox yet.
	var mu sync.Mutex
	var atAccept struct {
		state  State
		jobErr error
	}
	h.obs.setHook(func(tr Transition) {
		if tr.To != StateAccepted {
			return
		}
		rec, err := h.store().load(h.ctx, tr.CallID)
		_, jobErr := h.ob.Get(h.ctx, tr.CallID+":"+outbox.KindOffer)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			atAccept.state = rec.State
		}
		atAccept.jobErr = jobErr
	})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()

	offered := h.waitState(callID, StateOffered, 1)
	if d := offered.At.Sub(time.UnixMilli(h.record(callID).Entered)); d < 200*time.Millisecond {
		t.Errorf("offer %v after the call entered, want the SLA (200ms)", d)
	}
	pb, media := c.play(1)
	if pb != "offer-"+callID+"-1" || media != "sound:deflect/offer" {
		t.Errorf("offer prompt = %s %s, want offer-%s-1 sound:deflect/offer", pb, media, callID)
	}
	c.dtmf("1") // while the prompt plays
	h.waitState(callID, StateDeflected, 1)
	h.waitCall("DELETE", "/playbacks/"+pb, 1)

	mu.Lock()
	if atAccept.state != StateAccepted || !errors.Is(atAccept.jobErr, outbox.ErrNotFound) {
		t.Errorf("at the accepted transition: record state %q, outbox job error %v; want accepted, and no job yet (outbox.ErrNotFound)",
			atAccept.state, atAccept.jobErr)
	}
	mu.Unlock()

	bye, media := c.play(2)
	if bye != "bye-"+callID || media != "sound:deflect/accepted" {
		t.Errorf("confirmation prompt = %s %s, want bye-%s sound:deflect/accepted", bye, media, callID)
	}
	calls := h.calls()
	var hungQ1, played, hungCaller int
	for i, c := range calls {
		switch {
		case c.Method == "POST" && c.Path == "/channels/"+callID+"-q1/dtmf" && c.Query.Get("dtmf") == "D":
			hungQ1 = i + 1 // the exit key: Queue() lets the caller go with EXITWITHKEY
		case c.Method == "POST" && c.Path == "/channels/"+callID+"/play/"+bye:
			played = i + 1
		case c.Method == "DELETE" && c.Path == "/channels/"+callID:
			hungCaller = i + 1
		}
	}
	if hungQ1 == 0 || hungQ1 > played {
		t.Errorf("the exit key sent at call #%d, the confirmation played at #%d: want the queue left first", hungQ1, played)
	}
	if hungCaller != 0 {
		t.Errorf("caller hung up (call #%d) before the confirmation finished", hungCaller)
	}
	c.playbackFinished(bye, media)
	if hangup := h.waitCall("DELETE", "/channels/"+callID, 1); hangup.Query.Get("reason") != "normal" {
		t.Errorf("caller hangup reason = %q, want normal", hangup.Query.Get("reason"))
	}
	c.hangup()
	h.waitState(callID, StateEnded, 1)

	if diff := cmp.Diff([]string{"entered", "waiting", "offered", "accepted", "deflected", "ended"}, h.log(callID)); diff != "" {
		t.Errorf("transition log in Redis (-want +got):\n%s", diff)
	}
	rec := h.record(callID)
	if rec.Outcome != "deflected" || rec.Offers != 1 || rec.Accepted == 0 || rec.Deflected < rec.Accepted || rec.Declined {
		t.Errorf("record = %+v, want outcome deflected, 1 offer, accepted then deflected", rec)
	}

	msgs, err := h.fake.WaitMessages(h.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := sentTemplate{To: "5491155550001", Name: "queue_deflect_v1", Language: "es_AR", Callback: callID + ":offer",
		Body: []string{"Facturación", "1 min", "2"}, Payloads: []string{"dfl:" + callID + ":offer"}}
	if diff := cmp.Diff(want, sentOf(msgs[0])); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if job, err := h.ob.Get(h.ctx, callID+":offer"); err != nil || job.Attempts != 1 || len(h.fake.Messages()) != 1 {
		t.Errorf("outbox job = %+v, %v and %d messages, want one attempt and one message", job, err, len(h.fake.Messages()))
	}

	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deflectd_calls_entered_total", []string{"queue", "sales"}, 1},
		{"deflectd_offers_total", []string{"queue", "sales", "trigger", "sla"}, 1},
		{"deflectd_offer_responses_total", []string{"queue", "sales", "response", "accepted"}, 1},
		{"deflectd_deflections_total", []string{"queue", "sales", "mode", "offer"}, 1},
		{"deflectd_wait_seconds", []string{"queue", "sales", "outcome", "deflected"}, 1},
		{"deflectd_calls_waiting", []string{"queue", "sales"}, 0},
		{"deflectd_calls_abandoned_total", nil, 0},
	} {
		if got := metric(t, inst.reg, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

func TestEngineOfferDeclinedReoffered(t *testing.T) {
	h := newHarness(t, harnessOptions{}) // reoffer_every 400ms, max_offers 2
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()

	h.waitState(callID, StateOffered, 1)
	pb, _ := c.play(1)
	c.dtmf("2")
	h.waitState(callID, StateWaiting, 2)
	lastOffer := time.UnixMilli(h.record(callID).LastOffer)
	h.waitCall("DELETE", "/playbacks/"+pb, 1)
	if kept, media := c.play(2); kept != "kept-"+callID+"-1" || media != "sound:deflect/declined" {
		t.Errorf("prompt after declining = %s %s, want kept-%s-1 sound:deflect/declined", kept, media, callID)
	}

	second := h.waitState(callID, StateOffered, 2)
	if d := second.At.Sub(lastOffer); d < 400*time.Millisecond {
		t.Errorf("re-offer %v after the first offer, want reoffer_every (400ms)", d)
	}
	if second.Offers != 2 {
		t.Errorf("second offer: Offers = %d, want 2", second.Offers)
	}
	if pb, _ := c.play(3); pb != "offer-"+callID+"-2" {
		t.Errorf("second offer prompt = %s, want offer-%s-2", pb, callID)
	}
	c.dtmf("2")
	h.waitState(callID, StateWaiting, 3)
	h.quiet(callID, 600*time.Millisecond) // max_offers reached: no third offer
	c.hangup()
	h.waitState(callID, StateShortAbandoned, 1)

	want := []State{StateEntered, StateWaiting, StateOffered, StateWaiting, StateOffered, StateWaiting, StateShortAbandoned}
	if diff := cmp.Diff(want, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deflectd_offers_total", []string{"trigger", "sla"}, 1},
		{"deflectd_offers_total", []string{"trigger", "reoffer"}, 1},
		{"deflectd_offer_responses_total", []string{"response", "declined"}, 2},
		{"deflectd_offer_responses_total", []string{"response", "accepted"}, 0},
		{"deflectd_deflections_total", nil, 0},
	} {
		if got := metric(t, inst.reg, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("WhatsApp requests = %d, want 0", n)
	}
	if rec := h.record(callID); !rec.Declined || rec.Offers != 2 {
		t.Errorf("record: declined %v, offers %d, want true, 2", rec.Declined, rec.Offers)
	}
}

func TestEngineOfferTimeout(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "200ms", Reoffer: "5s", OfferTimeout: "300ms"}})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()

	h.waitState(callID, StateOffered, 1)
	pb, media := c.play(1)
	finished := h.clock.Now()
	c.playbackFinished(pb, media) // the offer timeout runs from the end of the prompt
	back := h.waitState(callID, StateWaiting, 2)
	if d := back.At.Sub(finished); d < 300*time.Millisecond {
		t.Errorf("declined by timeout %v after the prompt ended, want offer_timeout (300ms)", d)
	}
	c.hangup()
	h.waitState(callID, StateShortAbandoned, 1)

	want := []State{StateEntered, StateWaiting, StateOffered, StateWaiting, StateShortAbandoned}
	if diff := cmp.Diff(want, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if n := count(h.calls(), "POST", "/channels/"+callID+"/play/*"); n != 1 {
		t.Errorf("prompts played = %d, want 1 (no 'declined' prompt after a timeout)", n)
	}
	if got := metric(t, inst.reg, "deflectd_offer_responses_total", "response", "timeout"); got != 1 {
		t.Errorf("deflectd_offer_responses_total{response=timeout} = %v, want 1", got)
	}
	if !h.record(callID).Declined {
		t.Error("record: declined = false after a timeout, want true")
	}
}

func TestEngineAgentAnswersDuringOffer(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()

	h.waitState(callID, StateOffered, 1)
	pb, _ := c.play(1)
	c.agentAnswers()
	h.waitState(callID, StateConnected, 1)
	h.waitCall("DELETE", "/playbacks/"+pb, 1)

	c.queueEnds() // the agent hangs up: the caller is alone in the bridge
	h.waitCall("DELETE", "/channels/"+callID, 1)
	c.hangup()
	h.waitState(callID, StateEnded, 1)

	want := []State{StateEntered, StateWaiting, StateOffered, StateConnected, StateEnded}
	if diff := cmp.Diff(want, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if rec := h.record(callID); rec.Outcome != "completed" || rec.Answered == 0 {
		t.Errorf("record: outcome %q, answered %d, want completed and an answer time", rec.Outcome, rec.Answered)
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deflectd_calls_answered_total", []string{"queue", "sales"}, 1},
		{"deflectd_calls_waiting", []string{"queue", "sales"}, 0},
		{"deflectd_offer_responses_total", nil, 0},
		{"deflectd_deflections_total", nil, 0},
		{"deflectd_wait_seconds", []string{"outcome", "answered"}, 1},
	} {
		if got := metric(t, inst.reg, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("WhatsApp requests = %d, want 0", n)
	}
}

func TestEngineAbandon(t *testing.T) {
	tests := []struct {
		name      string
		waited    time.Duration // on the engine's clock, beyond the real wait
		wantState State
		wantSent  bool
	}{
		{name: "after short_abandon", waited: 30 * time.Second, wantState: StateAbandoned, wantSent: true},
		{name: "short", waited: 0, wantState: StateShortAbandoned, wantSent: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			inst := h.startEngine()
			c := h.newCall(callID, mobile, "queue=support", "option=1", "reason=technical") // support: no offer before 300s
			c.enterQueued()
			h.clock.Advance(tt.waited)
			c.hangup()
			h.waitState(callID, tt.wantState, 1)
			h.waitCall("DELETE", "/bridges/br-"+callID, 1)

			_, err := h.ob.Get(h.ctx, callID+":recover")
			if !tt.wantSent {
				if !errors.Is(err, outbox.ErrNotFound) {
					t.Errorf("recovery job: error %v, want outbox.ErrNotFound", err)
				}
			} else {
				msgs, err := h.fake.WaitMessages(h.ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				got := sentOf(msgs[0])
				if got.Name != "queue_recover_v1" || got.Callback != callID+":recover" || got.To != "5491155550001" {
					t.Errorf("message = %+v, want queue_recover_v1 to 5491155550001 for %s:recover", got, callID)
				}
				if job, err := h.ob.Get(h.ctx, callID+":recover"); err != nil || job.Attempts != 1 || len(h.fake.Messages()) != 1 {
					t.Errorf("outbox job = %+v, %v and %d messages, want one", job, err, len(h.fake.Messages()))
				}
			}
			sent := 0.0
			if tt.wantSent {
				sent = 1
			}
			abandoned, short := 1.0, 0.0
			if tt.wantState == StateShortAbandoned {
				abandoned, short = 0, 1
			}
			for _, m := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"deflectd_deflections_total", []string{"queue", "support", "mode", "recover"}, sent},
				{"deflectd_calls_abandoned_total", []string{"queue", "support"}, abandoned},
				{"deflectd_calls_short_abandoned_total", []string{"queue", "support"}, short},
				{"deflectd_calls_waiting", []string{"queue", "support"}, 0},
				{"deflectd_offers_total", nil, 0},
			} {
				if got := metric(t, inst.reg, m.name, m.labels...); got != m.want {
					t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
				}
			}
		})
	}
}

func TestEnginePerform(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	inst := h.startEngine()
	before := len(h.calls())
	c := h.newCall(callID, mobile, "queue=sales", "option=3", "reason=order_status")
	c.enter()
	h.waitState(callID, StatePerformed, 1)
	bye, media := c.play(1)
	if bye != "bye-"+callID || media != "sound:deflect/performed" {
		t.Errorf("prompt = %s %s, want bye-%s sound:deflect/performed", bye, media, callID)
	}
	if n := count(h.calls(), "DELETE", "/channels/"+callID); n != 0 {
		t.Errorf("caller hung up before the prompt finished")
	}
	c.playbackFinished(bye, media)
	h.waitCall("DELETE", "/channels/"+callID, 1)
	c.hangup()
	h.waitState(callID, StateEnded, 1)

	calls := h.calls()[before:]
	for _, p := range []string{"/channels", "/bridges"} {
		if n := count(calls, "POST", p); n != 0 {
			t.Errorf("POST %s: %d calls, want none: a performed call never queues\n%s", p, n, callList(calls))
		}
	}
	msgs, err := h.fake.WaitMessages(h.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sentOf(msgs[0]); got.Name != "order_status_v1" || got.Callback != callID+":perform" {
		t.Errorf("message = %+v, want order_status_v1 for %s:perform", got, callID)
	}
	if diff := cmp.Diff([]State{StateEntered, StatePerformed, StateEnded}, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deflectd_deflections_total", []string{"queue", "sales", "mode", "perform"}, 1},
		{"deflectd_offers_total", nil, 0},
		{"deflectd_calls_waiting", []string{"queue", "sales"}, 0},
	} {
		if got := metric(t, inst.reg, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// notOffered runs a call that the rules would offer at once, ends it, and
// checks that it was never offered and why.
func notOffered(t *testing.T, h *harness, inst *instance, id, number, reason string) {
	t.Helper()
	c := h.newCall(id, number)
	c.enterQueued()
	c.hangup()
	h.waitState(id, StateShortAbandoned, 1)
	want := []State{StateEntered, StateWaiting, StateShortAbandoned}
	if diff := cmp.Diff(want, h.obs.states(id)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if n := count(h.calls(), "POST", "/channels/"+id+"/play/*"); n != 0 {
		t.Errorf("prompts played to %s: %d, want none", id, n)
	}
	if got := metric(t, inst.reg, "deflectd_offers_skipped_total", "queue", "sales", "reason", reason); got != 1 {
		t.Errorf("deflectd_offers_skipped_total{queue=sales,reason=%s} = %v, want 1", reason, got)
	}
}

func TestEngineIneligibleNotOffered(t *testing.T) {
	tests := []struct{ name, number, reason string }{
		{"anonymous", "anonymous", skipAnonymous},
		{"no number", "", skipAnonymous},
		{"landline", "+541143210000", skipNotMobile},
		{"invalid", "12", skipInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{rules: immediate})
			inst := h.startEngine()
			notOffered(t, h, inst, callID, tt.number, tt.reason)
			if got := h.record(callID); got.Eligible || got.Number != "" {
				t.Errorf("record: eligible %v, number %q, want false, empty", got.Eligible, got.Number)
			}
		})
	}
}

func TestEngineCooldown(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: immediate})
	inst := h.startEngine()
	c := h.newCall("1795234870.2", mobile)
	c.enterQueued()
	h.waitState(c.id, StateOffered, 1)
	c.dtmf("1")
	h.waitState(c.id, StateDeflected, 1)
	c.hangup()
	h.waitState(c.id, StateEnded, 1)

	notOffered(t, h, inst, "1795234870.7", mobile, "cooldown")
	if n := len(h.fake.Requests()); n > 1 {
		t.Errorf("WhatsApp requests = %d, want at most 1", n)
	}
}

func TestEngineOutboxSaysNo(t *testing.T) {
	tests := []struct {
		name      string
		tierLimit int
		setup     func(h *harness)
		reason    string
	}{
		{name: "opted out", reason: "opted_out", setup: func(h *harness) {
			if err := h.ob.OptOut(h.ctx, mobile, "STOP"); err != nil {
				h.t.Fatal(err)
			}
		}},
		{name: "budget spent", tierLimit: 1, reason: "budget", setup: func(h *harness) {
			const other = "+5491155559999"
			m := h.render("queue_recover_v1", other, whatsapp.CallContext{CallID: "other", Queue: "sales", Reason: "billing",
				Language: "es", Wait: time.Minute, CallerNumber: other, Key: "other:recover"})
			if _, err := h.ob.Enqueue(h.ctx, outbox.Job{Key: "other:recover", Kind: outbox.KindRecover, Message: m}); err != nil {
				h.t.Fatal(err)
			}
			if left, err := h.ob.BudgetLeft(h.ctx); err != nil || left != 0 {
				h.t.Fatalf("BudgetLeft = %d, %v, want 0", left, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{rules: immediate, tierLimit: tt.tierLimit})
			tt.setup(h)
			inst := h.startEngine()
			notOffered(t, h, inst, callID, mobile, tt.reason)
		})
	}
}

func TestEngineRedisDownFailsOpen(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: immediate, noOutboxRun: true, dialOnce: true})
	inst := h.startEngine()
	h.redis.Kill()

	c := h.newCall(callID, mobile)
	c.enter()
	h.waitState(callID, StateWaiting, 1)
	originate := h.waitCall("POST", "/channels", 1)
	if got := originate.Query.Get("endpoint"); got != "Local/sales@queue-entry/n" {
		t.Errorf("originate endpoint = %q, want Local/sales@queue-entry/n", got)
	}
	c.joinQueue()
	c.hangup()
	h.waitState(callID, StateShortAbandoned, 1)

	if diff := cmp.Diff([]State{StateEntered, StateWaiting, StateShortAbandoned}, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if n := count(h.calls(), "POST", "/channels/"+callID+"/play/*"); n != 0 {
		t.Errorf("prompts played: %d, want none", n)
	}
	if got := metric(t, inst.reg, "deflectd_deflect_redis_errors_total"); got < 1 {
		t.Errorf("deflectd_deflect_redis_errors_total = %v, want at least 1", got)
	}
	if got := metric(t, inst.reg, "deflectd_offers_skipped_total", "reason", "redis"); got != 1 {
		t.Errorf("deflectd_offers_skipped_total{reason=redis} = %v, want 1", got)
	}
}

// TestEngineRedisBackOffersResume: a call that entered while Redis was down
// is offered once Redis answers again, and a caller who accepted during an
// outage hears "unavailable", keeps their place and is offered again.
func TestEngineRedisBackOffersResume(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "200ms", Reoffer: "1s", OfferTimeout: "5s"}})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()
	h.waitState(callID, StateOffered, 1)

	h.redis.Kill()
	c.dtmf("1")
	h.waitCall("POST", "/channels/"+callID+"/play/*", 2) // the offer, then "unavailable"
	if got := metric(t, inst.reg, "deflectd_offers_skipped_total", "reason", "send_failed"); got != 1 {
		t.Errorf("skipped{send_failed} = %v, want 1", got)
	}
	h.redis.Restart()

	// The second offer comes once Redis answers; the caller accepts it.
	h.waitState(callID, StateOffered, 2)
	c.dtmf("1")
	h.waitState(callID, StateDeflected, 1)
	if got := metric(t, inst.reg, "deflectd_offers_total", "queue", "sales", "trigger", "reoffer"); got != 1 {
		t.Errorf("offers{trigger=reoffer} = %v, want 1", got)
	}
}

// TestEngineReapsLeftovers: a Local channel and a bridge that an ended
// call left in Asterisk (its cleanup failed) are removed; those of a live
// call are not.
func TestEngineReapsLeftovers(t *testing.T) {
	h := newHarness(t, harnessOptions{reapEvery: 50 * time.Millisecond})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()
	h.waitState(callID, StateWaiting, 1)
	for _, id := range []string{"ended.1-q1", "ended.1-q2"} {
		if err := h.ast.AddChannel("", map[string]any{"id": id, "name": "Local/sales@queue-entry-00000001;" + id[len(id)-1:]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.ast.AddBridge(map[string]any{"id": "br-ended.1"}); err != nil {
		t.Fatal(err)
	}
	h.waitCall("DELETE", "/channels/ended.1-q1", 1)
	h.waitCall("DELETE", "/bridges/br-ended.1", 1)
	for _, p := range []string{"/channels/" + callID + "-q1", "/channels/" + callID + "-q2", "/bridges/br-" + callID} {
		if n := count(h.calls(), "DELETE", p); n != 0 {
			t.Errorf("DELETE %s: %d, want none (the call is live)", p, n)
		}
	}
	if n := count(h.calls(), "DELETE", "/channels/ended.1-q2"); n != 0 {
		t.Errorf("DELETE of the ;2 half: %d, want none (the ;1 half takes it)", n)
	}
	if got := metric(t, inst.reg, "deflectd_leftovers_removed_total", "kind", "local_channel"); got != 1 {
		t.Errorf("leftovers_removed{local_channel} = %v, want 1", got)
	}
}

func TestEngineAdoptsWaitingCall(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "200ms", Reoffer: "1s", OfferTimeout: "1s"}})
	a := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()
	h.waitState(callID, StateOffered, 1)
	c.dtmf("2")
	h.waitState(callID, StateWaiting, 2)
	a.stop()

	rec := h.record(callID)
	if rec.State != StateWaiting || rec.Offers != 1 || !rec.Declined || rec.LastOffer == 0 {
		t.Fatalf("record after A = %+v, want waiting, 1 offer declined", rec)
	}
	before := len(h.calls())
	b := h.startEngine()
	reoffer := h.waitState(callID, StateOffered, 2)
	if due := time.UnixMilli(rec.LastOffer).Add(time.Second); reoffer.At.Before(due) {
		t.Errorf("re-offer by B at %v, want at LastOffer+reoffer_every = %v (not at once)", reoffer.At, due)
	}
	if reoffer.Offers != 2 {
		t.Errorf("re-offer: Offers = %d, want 2", reoffer.Offers)
	}
	calls := h.calls()[before:]
	for _, p := range []string{"/channels", "/bridges"} {
		if n := count(calls, "POST", p); n != 0 {
			t.Errorf("B: POST %s: %d calls, want none (the call is already queued)\n%s", p, n, callList(calls))
		}
	}

	// B drives the call from here.
	c.dtmf("1")
	h.waitState(callID, StateDeflected, 1)
	msgs, err := h.fake.WaitMessages(h.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sentOf(msgs[0]); got.Name != "queue_deflect_v1" || got.Callback != callID+":offer" {
		t.Errorf("message = %+v, want queue_deflect_v1 for %s:offer", got, callID)
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"deflectd_calls_adopted_total", nil, 1},
		{"deflectd_offers_total", []string{"trigger", "reoffer"}, 1},
		{"deflectd_offers_total", []string{"trigger", "sla"}, 0},
		{"deflectd_deflections_total", []string{"mode", "offer"}, 1},
		{"deflectd_calls_waiting", []string{"queue", "sales"}, 0},
	} {
		if got := metric(t, b.reg, m.name, m.labels...); got != m.want {
			t.Errorf("B: %s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

// adoptable puts a call into the fake Asterisk (caller in the application,
// the Local channel up, both bridged) and its record into Redis, as an
// engine that stopped would have left them.
func adoptable(h *harness, c *fakeCall, rec record) {
	h.t.Helper()
	for _, ch := range []struct {
		app string
		obj map[string]any
	}{{testApp, c.caller}, {testApp, c.q1}, {"", c.q2}} {
		if err := h.ast.AddChannel(ch.app, ch.obj); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := h.ast.AddBridge(map[string]any{"id": "br-" + c.id, "channels": []string{c.id, c.id + "-q1"}}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store().save(h.ctx, &rec, string(rec.State), h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
}

// acceptedRecord is what the engine stores when a caller accepts: the
// offer's template included, so the acceptance survives a restart even when
// the rules would not offer again now.
func acceptedRecord(now time.Time, entered time.Duration) record {
	return record{ID: callID, Queue: "sales", Option: "2", Reason: "billing", Lang: "es", Number: mobile, Eligible: true,
		State: StateAccepted, Entered: now.Add(-entered).UnixMilli(), LastOffer: now.Add(-3 * time.Second).UnixMilli(),
		Accepted: now.Add(-2 * time.Second).UnixMilli(), Offers: 1, Template: "queue_deflect_v1"}
}

func TestEngineAdoptsAcceptedCall(t *testing.T) {
	for _, enqueued := range []bool{false, true} {
		name := "not enqueued"
		if enqueued {
			name = "already enqueued"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			c := h.newCall(callID, mobile)
			adoptable(h, c, acceptedRecord(h.clock.Now(), 30*time.Second))
			if enqueued { // the stopped engine got as far as the enqueue
				m := h.render("queue_deflect_v1", mobile, whatsapp.CallContext{CallID: callID, Queue: "sales", MenuOption: "2",
					Reason: "billing", Language: "es", Wait: 30 * time.Second, CallerNumber: mobile, Key: callID + ":offer"})
				if _, err := h.ob.Enqueue(h.ctx, outbox.Job{Key: callID + ":offer", Kind: outbox.KindOffer, Message: m}); err != nil {
					t.Fatal(err)
				}
			}
			before := len(h.calls())
			b := h.startEngine()
			if tr := h.first(callID); tr.To != StateDeflected {
				t.Fatalf("adopted accepted call: first transition to %s, want deflected (states %q)", tr.To, h.obs.states(callID))
			}
			h.waitCall("POST", "/channels/"+callID+"-q1/dtmf", 1) // leaves the queue with the exit key
			bye, media := c.play(1)
			if bye != "bye-"+callID || media != "sound:deflect/accepted" {
				t.Errorf("prompt = %s %s, want bye-%s sound:deflect/accepted", bye, media, callID)
			}
			c.playbackFinished(bye, media)
			h.waitCall("DELETE", "/channels/"+callID, 1)
			c.hangup()
			h.waitState(callID, StateEnded, 1)

			msgs, err := h.fake.WaitMessages(h.ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := sentOf(msgs[0]); got.Name != "queue_deflect_v1" || got.Callback != callID+":offer" {
				t.Errorf("message = %+v, want queue_deflect_v1 for %s:offer", got, callID)
			}
			if job, err := h.ob.Get(h.ctx, callID+":offer"); err != nil || job.Attempts != 1 || len(h.fake.Messages()) != 1 {
				t.Errorf("outbox job = %+v, %v and %d messages, want one attempt, one message", job, err, len(h.fake.Messages()))
			}
			calls := h.calls()[before:]
			if n := count(calls, "POST", "/channels"); n != 0 {
				t.Errorf("POST /channels: %d calls, want none\n%s", n, callList(calls))
			}
			if diff := cmp.Diff([]State{StateDeflected, StateEnded}, h.obs.states(callID)); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
			if got := metric(t, b.reg, "deflectd_calls_adopted_total"); got != 1 {
				t.Errorf("deflectd_calls_adopted_total = %v, want 1", got)
			}
			if got := metric(t, b.reg, "deflectd_calls_waiting", "queue", "sales"); got != 0 {
				t.Errorf("deflectd_calls_waiting{queue=sales} = %v, want 0", got)
			}
		})
	}
}

// An agent may answer in the moment the caller presses 1: the Dial event
// then reaches the engine after the call was deflected. The caller was
// promised WhatsApp and is being released; the call must stay deflected.
func TestEngineAgentAnswersAfterDeflection(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: immediate})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()
	h.waitState(callID, StateOffered, 1)
	c.dtmf("1")
	h.waitState(callID, StateDeflected, 1)
	bye, media := c.play(2)
	c.agentAnswers()
	c.playbackFinished(bye, media)
	c.hangup() // events are handled in order: the hangup after the prompt comes before this
	h.waitState(callID, StateEnded, 1)

	want := []State{StateEntered, StateWaiting, StateOffered, StateAccepted, StateDeflected, StateEnded}
	if diff := cmp.Diff(want, h.obs.states(callID)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if n := count(h.calls(), "DELETE", "/channels/"+callID); n != 1 {
		t.Errorf("caller hangups after the confirmation prompt = %d, want 1", n)
	}
	if got := metric(t, inst.reg, "deflectd_calls_waiting", "queue", "sales"); got != 0 {
		t.Errorf("deflectd_calls_waiting{queue=sales} = %v, want 0", got)
	}
	if got := metric(t, inst.reg, "deflectd_calls_answered_total", "queue", "sales"); got != 0 {
		t.Errorf("deflectd_calls_answered_total{queue=sales} = %v, want 0", got)
	}
}

// A call the bridge hands back to the dialplan no longer waits in the
// bridge's queue: the waiting gauge must come back down.
func TestEngineFallbackLeavesWaiting(t *testing.T) {
	tests := []struct {
		name string
		// refuse makes the originate fail; otherwise the queue lets the
		// caller go after they joined it.
		refuse bool
	}{
		{name: "originate refused", refuse: true},
		{name: "queue lets the caller go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{rules: testRules{SLA: "300s", Reoffer: "1s", OfferTimeout: "1s"}})
			if tt.refuse {
				h.ast.Handle("POST", "/channels", func(context.Context, aritest.Call) (int, any) {
					return http.StatusInternalServerError, aritest.ErrorBody("Allocation failed")
				})
			}
			inst := h.startEngine()
			c := h.newCall(callID, mobile)
			if tt.refuse {
				c.enter()
			} else {
				c.enterQueued()
				c.queueEnds()
			}
			h.waitState(callID, StateEnded, 1)
			if cont := h.waitCall("POST", "/channels/"+callID+"/continue", 1); cont.Query.Get("label") != "fallback" {
				t.Errorf("continue label = %q, want fallback", cont.Query.Get("label"))
			}
			if rec := h.record(callID); rec.Outcome != "fallback" {
				t.Errorf("record outcome = %q, want fallback", rec.Outcome)
			}
			if got := metric(t, inst.reg, "deflectd_calls_fallback_total"); got != 1 {
				t.Errorf("deflectd_calls_fallback_total = %v, want 1", got)
			}
			if got := metric(t, inst.reg, "deflectd_calls_waiting", "queue", "sales"); got != 0 {
				t.Errorf("deflectd_calls_waiting{queue=sales} = %v after the fallback, want 0", got)
			}
		})
	}
}

// A call adopted from its record keeps the eligibility the record says:
// an anonymous caller (stored without a number) is never offered.
func TestEngineAdoptedIneligibleNotOffered(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.newCall(callID, "anonymous")
	now := h.clock.Now()
	adoptable(h, c, record{ID: callID, Queue: "sales", Option: "2", Reason: "billing", Lang: "es",
		State: StateWaiting, Entered: now.Add(-30 * time.Second).UnixMilli()}) // as the stopped engine saved it
	h.startEngine()
	h.waitCall("GET", "/channels/"+callID+"-q1", 1) // adopted: the next decision comes before any event
	c.hangup()
	h.waitState(callID, StateAbandoned, 1)
	if diff := cmp.Diff([]State{StateAbandoned}, h.obs.states(callID)); diff != "" {
		t.Errorf("states of the adopted anonymous call (-want +got):\n%s", diff)
	}
	if n := count(h.calls(), "POST", "/channels/"+callID+"/play/*"); n != 0 {
		t.Errorf("prompts played: %d, want none", n)
	}
}

// A call accepted after an offer at entry (high EWT, before the SLA),
// adopted before its message was enqueued: the acceptance must not be
// lost, whatever the rules would decide at adoption.
func TestEngineAdoptsAcceptedCallOfferedAtEntry(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "300s", EntryEWT: "1m", Reoffer: "1s", OfferTimeout: "1s"}})
	c := h.newCall(callID, mobile)
	adoptable(h, c, acceptedRecord(h.clock.Now(), 20*time.Second))
	h.startEngine()
	if tr := h.first(callID); tr.To != StateDeflected {
		t.Fatalf("adopted accepted call: first transition to %s, want deflected (states %q)", tr.To, h.obs.states(callID))
	}
	if _, err := h.fake.WaitMessages(h.ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// Asterisk replays nothing after a reconnect: a caller who hung up while
// the socket was down is only missing from the snapshot. The engine must
// end that call (abandoned, with its metrics), not drive it forever.
func TestEngineReconnectEndsVanishedCall(t *testing.T) {
	h := newHarness(t, harnessOptions{rules: testRules{SLA: "300s", Reoffer: "1s", OfferTimeout: "1s"}})
	inst := h.startEngine()
	c := h.newCall(callID, mobile)
	c.enterQueued()

	h.ast.RefuseConnections(http.StatusServiceUnavailable)
	h.ast.Drop(testApp)
	for _, typ := range []string{"StasisEnd", "ChannelDestroyed"} { // the caller hangs up meanwhile
		if err := h.ast.Send(h.ctx, testApp, map[string]any{"type": typ, "channel": c.caller}); !errors.Is(err, aritest.ErrNotConnected) {
			t.Fatalf("sending %s while disconnected: %v, want aritest.ErrNotConnected", typ, err)
		}
	}
	h.ast.RefuseConnections(0)
	if _, err := h.ast.WaitCalls(h.ctx, "GET", "/bridges", 2); err != nil { // the snapshot after the reconnect
		t.Fatal(err)
	}
	tr, ok := h.next(callID, 2*time.Second)
	if !ok || !tr.To.final() {
		t.Errorf("call gone from Asterisk during a disconnect: next transition %q (seen: %v), want a final state; engine still drives %q",
			tr.To, ok, inst.eng.Calls())
	}
}
