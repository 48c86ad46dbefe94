package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fastReconnect makes reconnects quick enough for tests.
func fastReconnect(o *Options) {
	o.MinBackoff = time.Millisecond
	o.MaxBackoff = 20 * time.Millisecond
}

// runner is a Client.Run in the background.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

// startRun runs c.Run until the test ends or stop is called.
func startRun(t *testing.T, c *Client) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait returns Run's error once Run returns by itself.
func (r *runner) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// stop cancels Run and returns its error.
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// next returns the next event, failing the test if none comes.
func next(t *testing.T, c *Client) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("Next() = %v, want an event", err)
	}
	return ev
}

// nextAs returns the next event, which must be a T.
func nextAs[T Event](t *testing.T, c *Client) T {
	t.Helper()
	ev := next(t, c)
	got, ok := ev.(T)
	if !ok {
		var want T
		t.Fatalf("Next() = %T %+v, want a %T", ev, ev, want)
	}
	return got
}

func waitConnected(t *testing.T, srv *aritest.Server) {
	t.Helper()
	if err := srv.WaitConnected(testContext(t), testApp); err != nil {
		t.Fatal(err)
	}
}

func send(t *testing.T, srv *aritest.Server, event any) {
	t.Helper()
	if err := srv.Send(testContext(t), testApp, event); err != nil {
		t.Fatalf("Send(%s) = %v", event, err)
	}
}

// eventType returns the "type" of raw JSON.
func eventType(t *testing.T, raw []byte) string {
	t.Helper()
	var h struct{ Type string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("recorded event %s: %v", raw, err)
	}
	return h.Type
}

func countCalls(srv *aritest.Server, method, path string) int {
	n := 0
	for _, c := range srv.Calls() {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

func recording(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	events, err := aritest.Recording(name)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestStreamLifecycle(t *testing.T) {
	srv := newTestServer(t)
	c, reg := newTestClient(t, srv, func(o *Options) {
		fastReconnect(o)
		o.PingInterval = time.Hour // noticing a drop must not wait for the pinger
	})
	if got := c.State(); got != StateIdle {
		t.Errorf("State() before Run = %v, want %v", got, StateIdle)
	}
	r := startRun(t, c)

	first := nextAs[*Connected](t, c)
	if first.Reconnect || first.Gap != 0 || first.Type != TypeConnected || first.Application != testApp || first.Timestamp.IsZero() {
		t.Errorf("first event = %+v, want Connected{Reconnect: false, Gap: 0} for %s with a timestamp", first, testApp)
	}
	if got := c.State(); got != StateConnected {
		t.Errorf("State() after Connected = %v, want %v", got, StateConnected)
	}
	waitConnected(t, srv)

	events := recording(t, "step4")
	for _, e := range events {
		send(t, srv, e)
	}
	for i, raw := range events {
		ev := next(t, c)
		if got, want := ev.Header().Type, eventType(t, raw); got != want {
			t.Fatalf("event %d: Next() = %s, want %s", i, got, want)
		}
		if raw, ok := ev.(*RawEvent); ok {
			t.Errorf("event %d: Next() = RawEvent %s (err %v), want a typed event", i, raw.Raw, raw.Err)
		}
	}

	srv.Drop(testApp)
	dis := nextAs[*Disconnected](t, c)
	if dis.Err == nil || dis.Type != TypeDisconnected {
		t.Errorf("after Drop: Next() = %+v, want a Disconnected with an error", dis)
	}
	re := nextAs[*Connected](t, c)
	if !re.Reconnect || re.Gap <= 0 {
		t.Errorf("after Drop: Next() = %+v, want Connected{Reconnect: true, Gap > 0}", re)
	}
	waitConnected(t, srv)
	send(t, srv, `{"type":"ChannelDtmfReceived","digit":"5","duration_ms":160,"channel":{"id":"x"}}`)
	if ev := nextAs[*ChannelDtmfReceived](t, c); ev.Digit != "5" || ev.Application != testApp || ev.Timestamp.IsZero() {
		t.Errorf("after reconnect: Next() = %+v, want digit 5 with the application and a timestamp", ev)
	}

	const want = `
# HELP deflectd_ari_connects_total ARI event websocket connections established, by kind (first, reconnect).
# TYPE deflectd_ari_connects_total counter
deflectd_ari_connects_total{kind="first"} 1
deflectd_ari_connects_total{kind="reconnect"} 1
# HELP deflectd_ari_connected 1 while the ARI event websocket is connected, 0 otherwise.
# TYPE deflectd_ari_connected gauge
deflectd_ari_connected 1
# HELP deflectd_ari_disconnects_total ARI event websocket losses, by reason.
# TYPE deflectd_ari_disconnects_total counter
deflectd_ari_disconnects_total{reason="closed"} 1
deflectd_ari_disconnects_total{reason="ping_timeout"} 0
deflectd_ari_disconnects_total{reason="replaced"} 0
deflectd_ari_disconnects_total{reason="shutdown"} 0
deflectd_ari_disconnects_total{reason="slow_consumer"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "deflectd_ari_connects_total",
		"deflectd_ari_connected", "deflectd_ari_disconnects_total"); err != nil {
		t.Error(err)
	}
	for typ, want := range map[string]float64{TypeStasisStart: 1, TypeChannelVarset: 5, TypeChannelDtmfReceived: 1, "other": 0} {
		if got := testutil.ToFloat64(c.metrics.events.WithLabelValues(typ)); got != want {
			t.Errorf("deflectd_ari_events_total{type=%q} = %v, want %v", typ, got, want)
		}
	}

	if err := r.stop(t); err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
}

// logSignal returns a logger that signals on the channel each time it logs
// msg, so a test can wait for what the client does inside.
func logSignal(msg string) (*zap.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 1000)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel)
	return zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == msg {
			ch <- struct{}{}
		}
		return nil
	})), ch
}

// TestStreamShutdown checks that cancelling Run's context ends the stream
// cleanly: Run returns nil, and Next delivers what was queued, a
// Disconnected, and then ErrClosed for good.
func TestStreamShutdown(t *testing.T) {
	srv := newTestServer(t)
	logger, slow := logSignal("ARI consumer is slow; events are queuing")
	c, _ := newTestClient(t, srv, func(o *Options) {
		o.Logger = logger
		o.SlowConsumerBacklog = 4 // the Connected event and the 3 sent: all queued
	})
	r := startRun(t, c)
	waitConnected(t, srv)
	for _, d := range []string{"1", "2", "3"} {
		send(t, srv, fmt.Sprintf(`{"type":"ChannelDtmfReceived","digit":%q,"channel":{"id":"c"}}`, d))
	}
	ctx := testContext(t)
	select {
	case <-slow:
	case <-ctx.Done():
		t.Fatal("the 3 events were not queued")
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
	if got := c.State(); got != StateStopped {
		t.Errorf("State() after Run = %v, want %v", got, StateStopped)
	}
	nextAs[*Connected](t, c)
	for _, d := range []string{"1", "2", "3"} {
		if ev := nextAs[*ChannelDtmfReceived](t, c); ev.Digit != d {
			t.Errorf("Next() after stop = digit %q, want %q", ev.Digit, d)
		}
	}
	if dis := nextAs[*Disconnected](t, c); !errors.Is(dis.Err, context.Canceled) {
		t.Errorf("Next() after stop = Disconnected{%v}, want context.Canceled", dis.Err)
	}
	for range 2 {
		if ev, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Next() after the backlog = %v, %v, want ErrClosed", ev, err)
		}
	}
	if got := testutil.ToFloat64(c.metrics.disconnects.WithLabelValues(reasonShutdown)); got != 1 {
		t.Errorf("deflectd_ari_disconnects_total{reason=shutdown} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(c.metrics.connected); got != 0 {
		t.Errorf("deflectd_ari_connected after stop = %v, want 0", got)
	}
	if err := c.Run(ctx); err == nil {
		t.Errorf("second Run() = nil, want an error")
	}
}

// TestNextContext checks that Next gives up when its context ends.
func TestNextContext(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ev, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next() without Run = %v, %v, want context.DeadlineExceeded", ev, err)
	}
}

func TestStreamReconnectBackoff(t *testing.T) {
	srv := newTestServer(t)
	srv.RefuseConnections(http.StatusServiceUnavailable)
	c, _ := newTestClient(t, srv, fastReconnect)
	startRun(t, c)
	ctx := testContext(t)
	if _, err := srv.WaitCalls(ctx, "GET", "/events", 4); err != nil {
		t.Fatal(err)
	}
	if got := c.State(); got != StateConnecting {
		t.Errorf("State() while refused = %v, want %v", got, StateConnecting)
	}
	srv.RefuseConnections(0)

	if ev := nextAs[*Connected](t, c); ev.Reconnect {
		t.Errorf("first connection after refusals = %+v, want Reconnect false", ev)
	}
	attempts, err := srv.WaitCalls(ctx, "GET", "/events", 1)
	if err != nil {
		t.Fatal(err)
	}
	// The 4th attempt may have raced RefuseConnections(0) and succeeded.
	if got, want := testutil.ToFloat64(c.metrics.connectFailures), float64(len(attempts)-1); got != want || got < 3 {
		t.Errorf("deflectd_ari_connect_failures_total = %v, want %v (every attempt but the last, at least 3)", got, want)
	}
	for _, a := range attempts {
		if a.Query.Get("app") != testApp || a.Query.Get("subscribeAll") != "false" {
			t.Errorf("events request query = %v, want app=%s&subscribeAll=false", a.Query, testApp)
		}
	}
}

// TestStreamRefusedForGood checks the answers retrying cannot fix: Run
// returns an *Error at once, after one attempt, and Next reports it.
func TestStreamRefusedForGood(t *testing.T) {
	tests := []struct {
		name   string
		status int
		setup  func(*aritest.Server, *Options)
	}{
		{"bad password", http.StatusUnauthorized, func(_ *aritest.Server, o *Options) { o.Password = "wrong" }},
		{"401", http.StatusUnauthorized, func(s *aritest.Server, _ *Options) { s.RefuseConnections(http.StatusUnauthorized) }},
		{"403", http.StatusForbidden, func(s *aritest.Server, _ *Options) { s.RefuseConnections(http.StatusForbidden) }},
		{"400", http.StatusBadRequest, func(s *aritest.Server, _ *Options) { s.RefuseConnections(http.StatusBadRequest) }},
		{"404", http.StatusNotFound, func(s *aritest.Server, _ *Options) { s.RefuseConnections(http.StatusNotFound) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			c, _ := newTestClient(t, srv, func(o *Options) {
				o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // a retry would hang the test
				tt.setup(srv, o)
			})
			err := startRun(t, c).wait(t)
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tt.status {
				t.Fatalf("Run() = %v, want an *Error with status %d", err, tt.status)
			}
			if n := len(srv.Calls()); n != 1 {
				t.Errorf("Run() made %d requests, want 1", n)
			}
			if _, err := c.Next(testContext(t)); !errors.As(err, &e) || e.StatusCode != tt.status {
				t.Errorf("Next() = %v, want Run's error", err)
			}
			if got := testutil.ToFloat64(c.metrics.connectFailures); got != 0 {
				t.Errorf("deflectd_ari_connect_failures_total = %v, want 0 (not a transient failure)", got)
			}
		})
	}
}

// TestStreamRestartAnswers404 checks an Asterisk restart as the chaos
// suite saw it: once connected, a 404 from /events (the HTTP server is up,
// res_ari not yet) is retried, and the client reconnects.
func TestStreamRestartAnswers404(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, fastReconnect)
	r := startRun(t, c)
	nextAs[*Connected](t, c)
	waitConnected(t, srv)

	srv.RefuseConnections(http.StatusNotFound)
	srv.Drop(testApp)
	nextAs[*Disconnected](t, c)
	ctx := testContext(t)
	before := len(srv.Calls())
	if _, err := srv.WaitCalls(ctx, "GET", "/events", 3); err != nil {
		t.Fatal(err)
	}
	srv.RefuseConnections(0)
	if ev := nextAs[*Connected](t, c); !ev.Reconnect {
		t.Errorf("connection after the 404s = %+v, want Reconnect", ev)
	}
	if n := len(srv.Calls()) - before; n < 2 {
		t.Errorf("%d attempts during the 404s, want retries", n)
	}
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		t.Fatalf("Run returned %v during an Asterisk restart", err)
	default:
	}
}

func TestStreamApplicationReplaced(t *testing.T) {
	srv := newTestServer(t)
	first, _ := newTestClient(t, srv, fastReconnect)
	r1 := startRun(t, first)
	nextAs[*Connected](t, first)
	waitConnected(t, srv)

	second, _ := newTestClient(t, srv, fastReconnect)
	startRun(t, second)
	nextAs[*Connected](t, second)

	if err := r1.wait(t); !errors.Is(err, ErrApplicationReplaced) {
		t.Fatalf("first Run() = %v, want ErrApplicationReplaced", err)
	}
	if ev := nextAs[*ApplicationReplaced](t, first); ev.Application != testApp {
		t.Errorf("first Next() = %+v, want ApplicationReplaced for %s", ev, testApp)
	}
	if dis := nextAs[*Disconnected](t, first); !errors.Is(dis.Err, ErrApplicationReplaced) {
		t.Errorf("first Next() = Disconnected{%v}, want ErrApplicationReplaced", dis.Err)
	}
	for range 2 {
		if ev, err := first.Next(testContext(t)); !errors.Is(err, ErrApplicationReplaced) {
			t.Errorf("first Next() after the backlog = %v, %v, want ErrApplicationReplaced", ev, err)
		}
	}
	if n := countCalls(srv, "GET", "/events"); n != 2 {
		t.Errorf("events connections = %d, want 2: the replaced client must not reconnect", n)
	}
	if got := testutil.ToFloat64(first.metrics.disconnects.WithLabelValues(reasonReplaced)); got != 1 {
		t.Errorf("first deflectd_ari_disconnects_total{reason=replaced} = %v, want 1", got)
	}
	if got := first.State(); got != StateStopped {
		t.Errorf("first State() = %v, want %v", got, StateStopped)
	}

	// The second client owns the application now.
	waitConnected(t, srv)
	send(t, srv, `{"type":"StasisStart","args":[],"channel":{"id":"c1"}}`)
	if ev := nextAs[*StasisStart](t, second); ev.Channel.ID != "c1" {
		t.Errorf("second Next() = %+v, want StasisStart of c1", ev)
	}
}

func TestStreamPingTimeout(t *testing.T) {
	srv := newTestServer(t)
	srv.StopPongs(testApp)
	c, _ := newTestClient(t, srv, func(o *Options) {
		fastReconnect(o)
		o.PingInterval, o.PongTimeout = 20*time.Millisecond, 20*time.Millisecond
	})
	startRun(t, c)
	nextAs[*Connected](t, c)
	dis := nextAs[*Disconnected](t, c)
	if !errors.Is(dis.Err, errPingTimeout) {
		t.Fatalf("Next() with no pongs = Disconnected{%v}, want errPingTimeout", dis.Err)
	}
	srv.ResumePongs(testApp)
	for {
		// Before ResumePongs took effect, a new connection may time out too.
		switch ev := next(t, c).(type) {
		case *Disconnected:
			if !errors.Is(ev.Err, errPingTimeout) {
				t.Fatalf("Next() = Disconnected{%v}, want errPingTimeout", ev.Err)
			}
			continue
		case *Connected:
			if !ev.Reconnect {
				t.Errorf("Next() = %+v, want a reconnect", ev)
			}
		default:
			t.Fatalf("Next() = %T, want Connected or Disconnected", ev)
		}
		break
	}
	if got := testutil.ToFloat64(c.metrics.disconnects.WithLabelValues(reasonPingTimeout)); got < 1 {
		t.Errorf("deflectd_ari_disconnects_total{reason=ping_timeout} = %v, want ≥ 1", got)
	}
}

func TestStreamSlowConsumer(t *testing.T) {
	const (
		slowAt = 10
		maxAt  = 50
		sent   = 60
	)
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, func(o *Options) {
		fastReconnect(o)
		o.SlowConsumerBacklog, o.MaxBacklog = slowAt, maxAt
	})
	startRun(t, c)
	waitConnected(t, srv)
	// Keep the client out after it closes, so that every event sent goes
	// to the first connection or nowhere.
	srv.RefuseConnections(http.StatusServiceUnavailable)

	ctx := testContext(t)
	accepted := 0 // events written to the socket before the server saw it close
	for i := 1; i <= sent; i++ {
		ev := fmt.Sprintf(`{"type":"ChannelVarset","variable":"SEQ","value":"%d","channel":{"id":"c1"}}`, i)
		if err := srv.Send(ctx, testApp, ev); err != nil {
			break
		}
		accepted++
	}
	// The events are sent; wait for the client to give up on the socket.
	if _, err := srv.WaitCalls(ctx, "GET", "/events", 2); err != nil {
		t.Fatal(err)
	}

	nextAs[*Connected](t, c)
	got := 0
	for {
		ev := next(t, c)
		if dis, ok := ev.(*Disconnected); ok {
			if !errors.Is(dis.Err, ErrSlowConsumer) {
				t.Errorf("Next() = Disconnected{%v}, want ErrSlowConsumer", dis.Err)
			}
			break
		}
		v, ok := ev.(*ChannelVarset)
		if !ok {
			t.Fatalf("Next() = %T, want ChannelVarset or Disconnected", ev)
		}
		got++
		if v.Value != fmt.Sprint(got) {
			t.Fatalf("event %d: Next() = SEQ %s, want %d: none dropped, none reordered", got, v.Value, got)
		}
	}
	// The client closes when the backlog (the Connected event included)
	// reaches MaxBacklog; everything it had read by then is delivered.
	if got < maxAt-1 || got > accepted {
		t.Errorf("events delivered before the Disconnected = %d, want %d to %d (every event read before the close)", got, maxAt-1, accepted)
	}
	if n := testutil.ToFloat64(c.metrics.slowConsumer); n < 1 {
		t.Errorf("deflectd_ari_slow_consumer_total = %v, want ≥ 1", n)
	}
	if n := testutil.ToFloat64(c.metrics.disconnects.WithLabelValues(reasonSlowConsumer)); n != 1 {
		t.Errorf("deflectd_ari_disconnects_total{reason=slow_consumer} = %v, want 1", n)
	}

	srv.RefuseConnections(0)
	if ev := nextAs[*Connected](t, c); !ev.Reconnect {
		t.Errorf("Next() after the slow-consumer close = %+v, want a reconnect", ev)
	}
}

// TestStreamOddFrames checks that no frame ends the stream: unknown types
// arrive as RawEvent, broken ones as RawEvent with Err.
func TestStreamOddFrames(t *testing.T) {
	const ts = `"timestamp":"2026-11-21T04:47:53.430+0000","application":"deflect"`
	tests := []struct {
		name      string
		frame     string
		wantType  string // "*": any
		wantErr   bool
		wantTyped bool // decodes to its own struct
	}{
		{"unknown type", `{"type":"ChannelTalkingStarted",` + ts + `,"channel":{"id":"c1"}}`, "ChannelTalkingStarted", false, false},
		{"newer type", `{"type":"ApplicationRegistered",` + ts + `}`, "ApplicationRegistered", false, false},
		{"type not first", `{"variable":"X","value":"1","type":"ChannelVarset",` + ts + `}`, TypeChannelVarset, false, true},
		{"field of the wrong type", `{"type":"StasisStart",` + ts + `,"channel":42}`, TypeStasisStart, true, false},
		{"bad timestamp", `{"type":"Dial","timestamp":"yesterday","application":"deflect"}`, TypeDial, true, false},
		{"no type", `{` + ts + `}`, "", true, false},
		{"not JSON", `not json at all`, "", true, false},
		{"truncated", `{"type":"StasisStart","channel":{`, "*", true, false},
		{"array", `[1,2,3]`, "", true, false},
	}
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	startRun(t, c)
	nextAs[*Connected](t, c)
	waitConnected(t, srv)
	for _, tt := range tests {
		send(t, srv, tt.frame)
	}
	send(t, srv, `{"type":"StasisEnd",`+ts+`,"channel":{"id":"after"}}`)

	decodeErrors := 0
	for _, tt := range tests {
		ev := next(t, c)
		if tt.wantType != "*" && ev.Header().Type != tt.wantType {
			t.Errorf("%s: Next() type = %q, want %q", tt.name, ev.Header().Type, tt.wantType)
		}
		raw, isRaw := ev.(*RawEvent)
		if tt.wantTyped {
			if isRaw {
				t.Errorf("%s: Next() = RawEvent (%v), want a typed event", tt.name, raw.Err)
			}
			continue
		}
		if !isRaw {
			t.Errorf("%s: Next() = %T, want *RawEvent", tt.name, ev)
			continue
		}
		if (raw.Err != nil) != tt.wantErr {
			t.Errorf("%s: Next() = RawEvent{Err: %v}, want an error: %v", tt.name, raw.Err, tt.wantErr)
		}
		if raw.Err != nil {
			decodeErrors++
		}
		if string(raw.Raw) != tt.frame {
			t.Errorf("%s: RawEvent.Raw = %s, want the frame as sent %s", tt.name, raw.Raw, tt.frame)
		}
	}
	if ev := nextAs[*StasisEnd](t, c); ev.Channel.ID != "after" {
		t.Errorf("Next() after the odd frames = %+v, want StasisEnd of after", ev)
	}
	if got := testutil.ToFloat64(c.metrics.decodeErrors); got != float64(decodeErrors) {
		t.Errorf("deflectd_ari_event_decode_errors_total = %v, want %d", got, decodeErrors)
	}
	if got := testutil.ToFloat64(c.metrics.events.WithLabelValues("other")); got < 2 {
		t.Errorf(`deflectd_ari_events_total{type="other"} = %v, want ≥ 2`, got)
	}
}

// TestStreamRecordings replays every call Asterisk 22 was recorded making
// and checks each event decodes: typed where the package has a struct, raw
// without error otherwise.
func TestStreamRecordings(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	startRun(t, c)
	nextAs[*Connected](t, c)
	waitConnected(t, srv)
	for _, name := range aritest.Recordings() {
		t.Run(name, func(t *testing.T) {
			events := recording(t, name)
			for _, e := range events {
				send(t, srv, e)
			}
			for i, e := range events {
				ev := next(t, c)
				want := eventType(t, e)
				if ev.Header().Type != want || ev.Header().Timestamp.IsZero() || ev.Header().AsteriskID != aritest.AsteriskID {
					t.Errorf("%s event %d: Next() header = %+v, want type %s, a timestamp, asterisk id %s", name, i, ev.Header(), want, aritest.AsteriskID)
				}
				raw, isRaw := ev.(*RawEvent)
				switch {
				case isRaw && raw.Err != nil:
					t.Errorf("%s event %d: Next() = RawEvent{Err: %v}", name, i, raw.Err)
				case isRaw != (newEvent(want) == nil):
					t.Errorf("%s event %d: Next() = %T for type %s", name, i, ev, want)
				}
				if !isRaw && ChannelIDs(ev) == nil && want != TypeBridgeDestroyed {
					t.Errorf("%s event %d: ChannelIDs(%s) = nil, want the channels it is about", name, i, want)
				}
			}
		})
	}
	if got := testutil.ToFloat64(c.metrics.decodeErrors); got != 0 {
		t.Errorf("deflectd_ari_event_decode_errors_total = %v, want 0", got)
	}
}

// TestStreamAgentConnected checks the decisive event of the Local-channel
// queue pattern (asterisk-lab.md §6a) as the client decodes it.
func TestStreamAgentConnected(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	startRun(t, c)
	nextAs[*Connected](t, c)
	waitConnected(t, srv)
	for _, e := range recording(t, "step6a") {
		send(t, srv, e)
	}
	var answered *Dial
	for answered == nil {
		if d, ok := next(t, c).(*Dial); ok && d.DialStatus == DialAnswer && d.Caller != nil && strings.HasSuffix(d.Caller.ID, "-q2") {
			answered = d
		}
	}
	want := []string{answered.Caller.ID, answered.Peer.ID}
	if answered.Peer.Name != "PJSIP/agent1-00000003" || !cmp.Equal(ChannelIDs(answered), want) {
		t.Errorf("agent Dial ANSWER = peer %q, ChannelIDs %v; want PJSIP/agent1-00000003, %v", answered.Peer.Name, ChannelIDs(answered), want)
	}
}

// TestSnapshotAfterReconnect checks the resync path: what changed while the
// socket was down is lost as events but visible in Snapshot.
func TestSnapshotAfterReconnect(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, fastReconnect)
	for _, add := range []struct{ app, json string }{
		{testApp, `{"id":"c1","name":"PJSIP/trunk-00000001"}`},
		{testApp, `{"id":"c2","name":"PJSIP/trunk-00000002"}`},
		{"other", `{"id":"c3"}`},
		{"", `{"id":"c4"}`},
	} {
		mustAdd(t, srv.AddChannel(add.app, add.json))
	}
	mustAdd(t, srv.AddBridge(`{"id":"br-c2","channels":["c2"]}`))
	mustAdd(t, srv.AddBridge(`{"id":"br-c3","channels":["c3"]}`))
	startRun(t, c)
	nextAs[*Connected](t, c)
	waitConnected(t, srv)
	send(t, srv, `{"type":"StasisStart","args":["queue=sales"],"channel":{"id":"c5","name":"PJSIP/trunk-00000005","state":"Ring"}}`)
	nextAs[*StasisStart](t, c)

	srv.RefuseConnections(http.StatusServiceUnavailable)
	srv.Drop(testApp)
	nextAs[*Disconnected](t, c)
	// c1 hangs up during the gap: the application never hears of it.
	gone := `{"type":"ChannelDestroyed","cause":16,"cause_txt":"Normal Clearing","channel":{"id":"c1"}}`
	if err := srv.Send(testContext(t), testApp, gone); !errors.Is(err, aritest.ErrNotConnected) {
		t.Fatalf("Send(during the gap) = %v, want ErrNotConnected", err)
	}
	srv.RefuseConnections(0)
	if ev := nextAs[*Connected](t, c); !ev.Reconnect {
		t.Fatalf("Next() = %+v, want a reconnect", ev)
	}

	snap, err := c.Snapshot(testContext(t))
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	var ids, bridges []string
	for _, ch := range snap.Channels {
		ids = append(ids, ch.ID)
	}
	for _, b := range snap.Bridges {
		bridges = append(bridges, b.ID)
	}
	if want := []string{"c2", "c5"}; !cmp.Equal(ids, want) || !cmp.Equal(snap.Application.ChannelIDs, want) {
		t.Errorf("Snapshot() channels = %v (application %v), want %v", ids, snap.Application.ChannelIDs, want)
	}
	if want := []string{"br-c2"}; !cmp.Equal(bridges, want) {
		t.Errorf("Snapshot() bridges = %v, want %v", bridges, want)
	}
	if got := snap.Channels[1]; got.State != "Ring" || got.Name != "PJSIP/trunk-00000005" {
		t.Errorf("Snapshot() channel c5 = %+v, want the StasisStart's snapshot", got)
	}
}
