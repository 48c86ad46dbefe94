//go:build e2e

package asterisktest_test

// End-to-end proof that the sandbox, the sample configs and the sipp
// harness work together: real Asterisk, real SIP, raw ARI (no dependency on
// the ari package). Run as root:
//
//	go test -tags e2e -count=1 -v ./ari/asterisktest/

import (
	"context"
	b64 "encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deflectd/deflectd/ari/asterisktest"
)

var (
	sb       *asterisktest.Sandbox
	startErr error
)

func TestMain(m *testing.M) {
	if err := asterisktest.Check("sandbox", "sipp", "timeout"); err != nil {
		startErr = err
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		t0 := time.Now()
		sb, startErr = asterisktest.Start(ctx, asterisktest.Options{Logf: log.Printf, ReplaceRunning: true})
		cancel()
		log.Printf("sandbox start (build if needed, until ARI answers): %v", time.Since(t0).Round(time.Millisecond))
	}
	code := m.Run()
	if sb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		if err := sb.Stop(ctx); err != nil {
			log.Printf("sandbox stop: %v", err)
			code = max(code, 1)
		}
		cancel()
		log.Printf("sandbox stop: %v", time.Since(t0).Round(time.Millisecond))
	}
	os.Exit(code)
}

// sandbox returns the shared sandbox or skips/fails the test (dependency policy).
func sandbox(t *testing.T) *asterisktest.Sandbox {
	t.Helper()
	if startErr != nil {
		asterisktest.SkipOrFail(t, "Asterisk sandbox unavailable: %v", startErr)
	}
	return sb
}

// event holds the fields of ARI events these tests look at.
type event struct {
	Type        string   `json:"type"`
	Application string   `json:"application"`
	Args        []string `json:"args"`
	Digit       string   `json:"digit"`
	Channel     struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		State  string `json:"state"`
		Caller struct {
			Name   string `json:"name"`
			Number string `json:"number"`
		} `json:"caller"`
		ChannelVars map[string]string `json:"channelvars"`
	} `json:"channel"`
	raw string
}

// events connects an ARI WebSocket for app and returns a channel of events.
// The connection closes at the end of the test.
func events(t *testing.T, s *asterisktest.Sandbox, app string) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+basic(s.Username, s.Password))
	wsURL := strings.Replace(s.ARIURL, "http", "ws", 1) + "/events?app=" + app
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	c, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr})
	dcancel()
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v (response %v)", wsURL, err, resp)
	}
	c.SetReadLimit(4 << 20)
	ch := make(chan event, 256)
	go func() {
		defer close(ch)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var e event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Errorf("bad event %s: %v", b, err)
				return
			}
			e.raw = string(b)
			ch <- e
		}
	}()
	t.Cleanup(func() {
		c.Close(websocket.StatusNormalClosure, "test done")
		cancel()
		waitAppGone(t, s, app)
	})
	return ch
}

// waitAppGone waits until Asterisk no longer treats app as connected, so
// the next test's Stasis() sees the state it expects.
func waitAppGone(t *testing.T, s *asterisktest.Sandbox, app string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		code, _ := ari(t, s, "GET", "/applications/"+app)
		if code == http.StatusNotFound {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("application %s still registered 5 s after the WebSocket closed", app)
}

func basic(u, p string) string {
	return base64(u + ":" + p)
}

// waitEvent returns the first event of type typ (and matching ok, if given).
func waitEvent(t *testing.T, ch <-chan event, typ string, timeout time.Duration, ok func(event) bool) event {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("WebSocket closed while waiting for %s; seen %v", typ, seen)
			}
			seen = append(seen, e.Type)
			if e.Type == typ && (ok == nil || ok(e)) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s within %v; seen %v\n%s", typ, timeout, seen, sb.Logs(30))
		}
	}
}

// ari makes a plain REST call and returns the status code and body.
func ari(t *testing.T, s *asterisktest.Sandbox, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.ARIURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.Username, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustARI(t *testing.T, s *asterisktest.Sandbox, method, path string, want int) string {
	t.Helper()
	code, body := ari(t, s, method, path)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, body, want)
	}
	return body
}

// waitSIPp waits for p and requires n successful calls and no failure.
func waitSIPp(t *testing.T, p *asterisktest.SIPp, n int) asterisktest.Result {
	t.Helper()
	r, err := p.Wait()
	if err != nil {
		t.Fatalf("%v\n--- messages.log\n%s", err, sb.Logs(30))
	}
	if r.Successful != n || r.Failed != 0 {
		t.Fatalf("sipp: %d successful, %d failed (exit %d), want %d/0\n%s\n--- messages.log\n%s",
			r.Successful, r.Failed, r.ExitCode, n, p.Describe(), sb.Logs(30))
	}
	return r
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// (a) exten 100 -> StasisStart with the contract's args; ARI answer and
// DELETE end the call, and the caller's sipp counts one successful call.
func TestStasisStartAndHangup(t *testing.T) {
	s := sandbox(t)
	ev := events(t, s, "deflect")
	call, err := s.Call(ctxFor(t, time.Minute), asterisktest.CallOptions{Exten: "100", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := waitEvent(t, ev, "StasisStart", 10*time.Second, nil)
	if want := []string{"queue=sales", "option=2", "reason=billing"}; !slices.Equal(start.Args, want) {
		t.Errorf("StasisStart args = %q, want %q", start.Args, want)
	}
	if start.Channel.Caller.Number != "+15551230001" || start.Channel.Caller.Name != "Alice Caller" {
		t.Errorf("caller = %+v, want Alice Caller <+15551230001>", start.Channel.Caller)
	}
	if got := start.Channel.ChannelVars["DEFLECT_ENTRY"]; got != "direct-100" {
		t.Errorf("channelvars DEFLECT_ENTRY = %q, want direct-100", got)
	}
	id := start.Channel.ID
	mustARI(t, s, "POST", "/channels/"+id+"/answer", http.StatusNoContent)
	waitEvent(t, ev, "ChannelStateChange", 5*time.Second, func(e event) bool { return e.Channel.State == "Up" })
	mustARI(t, s, "DELETE", "/channels/"+id, http.StatusNoContent)
	waitEvent(t, ev, "StasisEnd", 5*time.Second, nil)
	waitSIPp(t, call, 1)
}

// (b) a DTMF digit from CallOptions arrives as ChannelDtmfReceived; the
// caller then hangs up by itself (HangupAfter).
func TestDTMF(t *testing.T) {
	s := sandbox(t)
	ev := events(t, s, "deflect")
	call, err := s.Call(ctxFor(t, time.Minute), asterisktest.CallOptions{
		Exten: "100", CallerNumber: "+15551230002",
		DTMF:        []asterisktest.DTMF{{After: 500 * time.Millisecond, Digit: "1"}, {After: 300 * time.Millisecond, Digit: "#"}},
		HangupAfter: 3 * time.Second, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := waitEvent(t, ev, "StasisStart", 10*time.Second, nil)
	mustARI(t, s, "POST", "/channels/"+start.Channel.ID+"/answer", http.StatusNoContent)
	for _, d := range []string{"1", "#"} {
		e := waitEvent(t, ev, "ChannelDtmfReceived", 5*time.Second, nil)
		if e.Digit != d || e.Channel.ID != start.Channel.ID {
			t.Errorf("ChannelDtmfReceived digit %q on %s, want %q on %s", e.Digit, e.Channel.ID, d, start.Channel.ID)
		}
	}
	waitEvent(t, ev, "StasisEnd", 10*time.Second, nil) // the caller's BYE
	waitSIPp(t, call, 1)
}

// The IVR menu: exten 700, digit 2 -> Stasis with option=2, reason=order_status.
func TestIVRMenu(t *testing.T) {
	s := sandbox(t)
	ev := events(t, s, "deflect")
	call, err := s.Call(ctxFor(t, time.Minute), asterisktest.CallOptions{
		Exten: "700", CallerNumber: "+15551230005",
		DTMF:    []asterisktest.DTMF{{After: time.Second, Digit: "2"}},
		Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := waitEvent(t, ev, "StasisStart", 10*time.Second, nil)
	if want := []string{"queue=sales", "option=2", "reason=order_status"}; !slices.Equal(start.Args, want) {
		t.Errorf("StasisStart args = %q, want %q", start.Args, want)
	}
	if got := start.Channel.ChannelVars["DEFLECT_ENTRY"]; got != "ivr-main" {
		t.Errorf("DEFLECT_ENTRY = %q, want ivr-main", got)
	}
	if start.Channel.State != "Up" {
		t.Errorf("IVR caller state %q, want Up (the menu answered)", start.Channel.State)
	}
	mustARI(t, s, "DELETE", "/channels/"+start.Channel.ID, http.StatusNoContent)
	waitSIPp(t, call, 1)
}

// waitQueueLog polls queue_log until want returns true.
func waitQueueLog(t *testing.T, s *asterisktest.Sandbox, want func([]asterisktest.QueueLogEntry) bool) []asterisktest.QueueLogEntry {
	t.Helper()
	var got []asterisktest.QueueLogEntry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var err error
		if got, err = s.QueueLog(); err != nil {
			t.Fatal(err)
		}
		if want(got) {
			return got
		}
	}
	var b strings.Builder
	for _, e := range got {
		fmt.Fprintln(&b, e)
	}
	t.Fatalf("queue_log never matched; it has:\n%s", b.String())
	return nil
}

// callEntries returns the queue_log entries of the call whose ENTERQUEUE
// carries caller number num.
func callEntries(all []asterisktest.QueueLogEntry, num string) []asterisktest.QueueLogEntry {
	id := ""
	for _, e := range all {
		if e.Event == "ENTERQUEUE" && len(e.Data) > 1 && e.Data[1] == num {
			id = e.CallID
		}
	}
	if id == "" {
		return nil
	}
	return asterisktest.FilterQueueLog(all, func(e asterisktest.QueueLogEntry) bool { return e.CallID == id })
}

func events2string(es []asterisktest.QueueLogEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// (c) No WebSocket: Stasis() fails, the dialplan falls back to
// Queue(sales), agent1 answers, and queue_log shows ENTERQUEUE + CONNECT.
func TestFallbackToQueue(t *testing.T) {
	s := sandbox(t)
	if code, _ := ari(t, s, "GET", "/applications/deflect"); code != http.StatusNotFound {
		t.Fatalf("application deflect is registered (%d); the fallback needs it absent", code)
	}
	ctx := ctxFor(t, time.Minute)
	agent, err := s.Agent(ctx, asterisktest.AgentOptions{Name: "agent1", AnswerAfter: time.Second, TalkFor: 2 * time.Second, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const num = "+15551230003"
	call, err := s.Call(ctx, asterisktest.CallOptions{Exten: "100", CallerNumber: num, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitSIPp(t, agent, 1) // the agent answered, talked 2 s and hung up
	waitSIPp(t, call, 1)  // then the dialplan hung up on the caller
	got := waitQueueLog(t, s, func(all []asterisktest.QueueLogEntry) bool {
		return slices.Contains(events2string(callEntries(all, num)), "COMPLETEAGENT")
	})
	mine := callEntries(got, num)
	if ev := events2string(mine); !slices.Equal(ev, []string{"ENTERQUEUE", "CONNECT", "COMPLETEAGENT"}) {
		t.Errorf("queue_log events for %s = %v, want ENTERQUEUE CONNECT COMPLETEAGENT", num, ev)
	}
	if c := mine[1]; c.Queue != "sales" || c.Agent != "Agent One" {
		t.Errorf("CONNECT = %+v, want queue sales, agent Agent One", c)
	}
}

// (d) QueueLog parsing of a real abandon: the caller leaves while agent2
// rings (fallback into queue support via exten 102); the agent gets a
// CANCEL and answers it with 200 + 487.
func TestQueueLogAbandon(t *testing.T) {
	s := sandbox(t)
	ctx := ctxFor(t, time.Minute)
	agent, err := s.Agent(ctx, asterisktest.AgentOptions{Name: "agent2", AnswerAfter: 20 * time.Second, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const num = "+15551230004"
	began := time.Now().Add(-time.Second)
	call, err := s.Call(ctx, asterisktest.CallOptions{Exten: "102", CallerNumber: num, HangupAfter: 3 * time.Second, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitSIPp(t, call, 1)
	waitSIPp(t, agent, 1) // CANCEL handled
	got := waitQueueLog(t, s, func(all []asterisktest.QueueLogEntry) bool {
		return slices.Contains(events2string(callEntries(all, num)), "ABANDON")
	})
	mine := callEntries(got, num)
	if ev := events2string(mine); !slices.Equal(ev, []string{"ENTERQUEUE", "RINGCANCELED", "ABANDON"}) {
		t.Fatalf("queue_log events for %s = %v, want ENTERQUEUE RINGCANCELED ABANDON", num, ev)
	}
	enter, ring, ab := mine[0], mine[1], mine[2]
	for _, e := range mine {
		if e.Queue != "support" || e.Time.Before(began) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("entry %v: want queue support, time within the test", e)
		}
	}
	if enter.Agent != "NONE" || len(enter.Data) != 3 || enter.Data[0] != "" || enter.Data[2] != "1" {
		t.Errorf("ENTERQUEUE = %q, want NONE agent, data [\"\" %s 1]", enter.String(), num)
	}
	if ring.Agent != "Agent Two" || len(ring.Data) < 1 {
		t.Errorf("RINGCANCELED = %q, want agent Agent Two and the ring time", ring.String())
	}
	// ABANDON|position|original position|wait time (s): about 3 s.
	if len(ab.Data) != 3 || ab.Data[0] != "1" || ab.Data[1] != "1" || (ab.Data[2] != "2" && ab.Data[2] != "3" && ab.Data[2] != "4") {
		t.Errorf("ABANDON = %q, want 1|1|~3", ab.String())
	}
}

// The ARI Swagger files the ari package can be checked against.
func TestAPIDocs(t *testing.T) {
	s := sandbox(t)
	for _, f := range []string{"resources.json", "channels.json", "events.json", "bridges.json"} {
		if _, err := os.Stat(s.APIDocsDir() + "/" + f); err != nil {
			t.Error(err)
		}
	}
}

// Restart gives a fresh Asterisk (new PID, empty queue_log) that answers ARI.
func TestRestart(t *testing.T) {
	s := sandbox(t)
	old := s.PID
	t0 := time.Now()
	if err := s.Restart(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(t0).Round(time.Millisecond))
	if s.PID == old || s.PID == 0 {
		t.Errorf("PID %d after restart (was %d)", s.PID, old)
	}
	if ql, err := s.QueueLog(); err != nil || len(ql) > 1 { // at most QUEUESTART
		t.Errorf("queue_log after restart: %v %v", ql, err)
	}
	out, err := s.CLI(ctxFor(t, 10*time.Second), "queue show sales")
	if err != nil || !strings.Contains(out, "Agent One") {
		t.Errorf("CLI queue show sales = %q, %v", out, err)
	}
	mustARI(t, s, "GET", "/asterisk/ping", http.StatusOK)
}

func base64(s string) string {
	return b64.StdEncoding.EncodeToString([]byte(s))
}

// Stop ends an agent that never got a call; Wait reports no error and no calls.
func TestSIPpStop(t *testing.T) {
	s := sandbox(t)
	agent, err := s.Agent(ctxFor(t, time.Minute), asterisktest.AgentOptions{Name: "agent3", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := s.Agent(ctxFor(t, time.Minute), asterisktest.AgentOptions{Name: "agent3"}); err == nil {
		t.Error("second agent3 started while the first holds its port")
	}
	t0 := time.Now()
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
	r, err := agent.Wait()
	t.Logf("stopped in %v, exit %d", time.Since(t0).Round(time.Millisecond), r.ExitCode)
	if err != nil || r.Successful != 0 || r.Failed != 0 {
		t.Errorf("after Stop: %+v, %v", r, err)
	}
}

// IVR: an invalid digit plays pbx-invalid and replays the menu; the next
// valid digit (3) then reaches Stasis with queue=support, reason=tech.
func TestIVRInvalidThenValid(t *testing.T) {
	s := sandbox(t)
	ev := events(t, s, "deflect")
	call, err := s.Call(ctxFor(t, time.Minute), asterisktest.CallOptions{
		Exten: "700", CallerNumber: "+15551230006",
		// pbx-invalid lasts about 4 s and cannot be interrupted.
		DTMF:    []asterisktest.DTMF{{After: time.Second, Digit: "9"}, {After: 6 * time.Second, Digit: "3"}},
		Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := waitEvent(t, ev, "StasisStart", 15*time.Second, nil)
	if want := []string{"queue=support", "option=3", "reason=tech"}; !slices.Equal(start.Args, want) {
		t.Errorf("StasisStart args = %q, want %q", start.Args, want)
	}
	mustARI(t, s, "DELETE", "/channels/"+start.Channel.ID, http.StatusNoContent)
	waitSIPp(t, call, 1)
	if log := s.Logs(200); !strings.Contains(log, "Playback(\"PJSIP/trunk") || !strings.Contains(log, "pbx-invalid") {
		t.Errorf("messages.log shows no pbx-invalid playback:\n%s", s.Logs(40))
	}
}
