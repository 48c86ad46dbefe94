package aritest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/google/go-cmp/cmp"
)

func newServer(t *testing.T) *aritest.Server {
	t.Helper()
	s := aritest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// do sends a REST request with the server's credentials and returns the
// status and body.
func do(t *testing.T, s *aritest.Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.Username, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// dial opens the event socket for app (raw query) with api_key auth.
func dial(t *testing.T, s *aritest.Server, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/events?" + query
	conn, resp, err := websocket.Dial(testContext(t), u, nil)
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func connect(t *testing.T, s *aritest.Server, app string) *websocket.Conn {
	t.Helper()
	conn, _, err := dial(t, s, "app="+app+"&api_key="+s.Username+":"+s.Password)
	if err != nil {
		t.Fatalf("dial %s: %v", app, err)
	}
	if err := s.WaitConnected(testContext(t), app); err != nil {
		t.Fatal(err)
	}
	return conn
}

func read(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := conn.Read(testContext(t))
	if err != nil {
		t.Fatalf("Read() = %v", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("event %s: %v", data, err)
	}
	return ev
}

func TestRESTBasics(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string // a substring
	}{
		{"GET", "/asterisk/ping", 200, `"ping":"pong"`},
		{"GET", "/asterisk/info", 200, `"version":"` + aritest.Version + `"`},
		{"GET", "/channels", 200, `[]`},
		{"GET", "/nothing/here", 404, `{"message":"Not found"}`},
		{"PUT", "/channels", 405, `{"message":"Invalid method"}`},
		{"POST", "/channels/nope/answer", 404, `{"message":"Channel not found"}`},
		{"GET", "/applications/nobody", 404, `{"message":"Application not found"}`},
		{"POST", "/channels", 400, `{"message":"Endpoint must be specified"}`},
	}
	for _, tt := range tests {
		status, body := do(t, s, tt.method, tt.path)
		if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%s %s = %d %s, want %d with %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantBody)
		}
	}
}

func TestAuth(t *testing.T) {
	s := newServer(t)
	for _, tt := range []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"basic", func(r *http.Request) { r.SetBasicAuth(s.Username, s.Password) }, 200},
		{"api_key", func(r *http.Request) { r.URL.RawQuery = "api_key=" + url.QueryEscape(s.Username+":"+s.Password) }, 200},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth(s.Username, "nope") }, 401},
		{"none", func(*http.Request) {}, 401},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/asterisk/ping", nil)
		tt.set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: GET /asterisk/ping = %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}

	for _, tt := range []struct {
		name, query string
		want        int
	}{
		{"bad credentials", "app=a&api_key=aritest:wrong", 401},
		{"no app", "api_key=aritest:aritest-secret", 400},
	} {
		_, resp, err := dial(t, s, tt.query)
		if err == nil || resp == nil || resp.StatusCode != tt.want {
			t.Errorf("%s: dial = %v, %v, want status %d", tt.name, resp, err, tt.want)
		}
	}
}

func TestHandleAndCalls(t *testing.T) {
	s := newServer(t)
	s.Handle("POST", "/channels/{id}/answer", func(_ context.Context, c aritest.Call) (int, any) {
		return http.StatusPreconditionFailed, aritest.ErrorBody("Channel in invalid state: " + c.Params["id"])
	})
	status, body := do(t, s, "POST", "/channels/a%2Fb/answer?x=1")
	if status != 412 || body != `{"message":"Channel in invalid state: a/b"}` {
		t.Errorf("overridden answer = %d %s, want 412 with the id", status, body)
	}
	got, err := s.WaitCall(testContext(t), "POST", "/channels/*")
	if err != nil {
		t.Fatal(err)
	}
	want := aritest.Call{Method: "POST", Path: "/channels/a/b/answer", RawPath: "/channels/a%2Fb/answer",
		Query: url.Values{"x": {"1"}}, Params: map[string]string{"id": "a/b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WaitCall(POST /channels/*) (-want +got):\n%s", diff)
	}

	s.Handle("POST", "/channels/{id}/answer", nil)
	if status, _ := do(t, s, "POST", "/channels/a%2Fb/answer"); status != 404 {
		t.Errorf("answer after removing the override = %d, want the default 404", status)
	}
	if n := len(s.Calls()); n != 2 {
		t.Errorf("len(Calls()) = %d, want 2", n)
	}

	// A handler that blocks sees the client leave.
	left := make(chan struct{})
	s.Handle("GET", "/channels/{id}", func(ctx context.Context, _ aritest.Call) (int, any) {
		<-ctx.Done()
		close(left)
		return 0, nil
	})
	ctx, cancel := context.WithTimeout(testContext(t), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/channels/x", nil)
	req.SetBasicAuth(s.Username, s.Password)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked request = %v, want DeadlineExceeded", err)
	}
	select {
	case <-left:
	case <-testContext(t).Done():
		t.Error("the handler's context did not end when the client left")
	}
}

func TestSendFills(t *testing.T) {
	s := newServer(t)
	conn := connect(t, s, "deflect")
	ctx := testContext(t)

	const full = `{"variable":"X","type":"ChannelVarset","timestamp":"2026-11-21T04:47:53.430+0000","application":"deflect"}`
	tests := []struct {
		name  string
		event any
		check func(string) bool
	}{
		{"complete raw JSON, byte for byte", full, func(got string) bool { return got == full }},
		{"raw JSON gets application and timestamp", `{"type":"Dial" }`, func(got string) bool {
			return strings.HasPrefix(got, `{"type":"Dial" ,"timestamp":"`) && strings.HasSuffix(got, `","application":"deflect"}`)
		}},
		{"empty object", json.RawMessage(`{}`), func(got string) bool {
			return strings.HasPrefix(got, `{"timestamp":"`) && strings.HasSuffix(got, `"application":"deflect"}`)
		}},
		{"a value", map[string]any{"type": "StasisEnd"}, func(got string) bool {
			var ev struct{ Type, Application, Timestamp string }
			_ = json.Unmarshal([]byte(got), &ev)
			_, err := time.Parse("2006-01-02T15:04:05.000-0700", ev.Timestamp)
			return ev.Type == "StasisEnd" && ev.Application == "deflect" && err == nil
		}},
		{"not JSON", "{broken", func(got string) bool { return got == "{broken" }},
	}
	for _, tt := range tests {
		if err := s.Send(ctx, "deflect", tt.event); err != nil {
			t.Fatalf("%s: Send = %v", tt.name, err)
		}
		_, data, err := conn.Read(ctx)
		if err != nil || !tt.check(string(data)) {
			t.Errorf("%s: received %s, %v", tt.name, data, err)
		}
	}
	if err := s.Send(ctx, "other", `{"type":"X"}`); !errors.Is(err, aritest.ErrNotConnected) {
		t.Errorf("Send(app without socket) = %v, want ErrNotConnected", err)
	}
}

func TestApplicationReplaced(t *testing.T) {
	s := aritest.NewServer()
	defer s.Close()
	old := connect(t, s, "deflect")
	current := connect(t, s, "deflect")
	ev := read(t, old)
	if ev["type"] != "ApplicationReplaced" || ev["application"] != "deflect" {
		t.Errorf("old socket got %v, want ApplicationReplaced for deflect", ev)
	}
	if err := s.Send(testContext(t), "deflect", `{"type":"StasisStart"}`); err != nil {
		t.Fatal(err)
	}
	if ev := read(t, current); ev["type"] != "StasisStart" {
		t.Errorf("new socket got %v, want the StasisStart", ev)
	}
	// The old socket stayed open with nothing more to read: after Close,
	// reading it fails at once, with no event before.
	s.Close()
	if _, data, err := old.Read(testContext(t)); err == nil {
		t.Errorf("old socket got %s after ApplicationReplaced, want nothing", data)
	}
}

func TestDropAndRefuse(t *testing.T) {
	s := newServer(t)
	conn := connect(t, s, "deflect")
	s.Drop("deflect")
	if _, _, err := conn.Read(testContext(t)); err == nil {
		t.Fatal("Read() after Drop = nil error, want the socket cut")
	}
	if err := s.Send(testContext(t), "deflect", `{"type":"X"}`); !errors.Is(err, aritest.ErrNotConnected) {
		t.Errorf("Send after Drop = %v, want ErrNotConnected", err)
	}

	s.RefuseConnections(http.StatusServiceUnavailable)
	_, resp, err := dial(t, s, "app=deflect&api_key=aritest:aritest-secret")
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("dial while refused = %v, %v, want 503", resp, err)
	}
	s.RefuseConnections(0)
	connect(t, s, "deflect")
	calls, err := s.WaitCalls(testContext(t), "GET", "/events", 3)
	if err != nil || len(calls) != 3 || calls[0].Query.Get("app") != "deflect" {
		t.Errorf("WaitCalls(GET /events, 3) = %v, %v, want the 3 attempts", calls, err)
	}
}

func TestStopPongs(t *testing.T) {
	s := newServer(t)
	conn := connect(t, s, "deflect")
	conn.CloseRead(context.Background()) // reads the pongs

	ping := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(testContext(t), timeout)
		defer cancel()
		return conn.Ping(ctx)
	}
	if err := ping(5 * time.Second); err != nil {
		t.Fatalf("Ping() = %v, want a pong", err)
	}
	s.StopPongs("deflect")
	if err := ping(50 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping() after StopPongs = %v, want a timeout", err)
	}
}

func TestModel(t *testing.T) {
	s := newServer(t)
	connect(t, s, "deflect")
	ctx := testContext(t)
	if err := s.AddChannel("deflect", `{"id":"c1"}`); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChannel("", map[string]string{"name": "no id"}); err == nil {
		t.Errorf("AddChannel(without id) = nil, want an error")
	}
	send := func(ev string) {
		t.Helper()
		if err := s.Send(ctx, "deflect", ev); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"type":"StasisStart","args":[],"channel":{"id":"c2","state":"Ring"}}`)
	send(`{"type":"ChannelVarset","variable":"QUEUEWAIT","value":"6","channel":{"id":"c2","state":"Up"}}`)
	send(`{"type":"ChannelEnteredBridge","bridge":{"id":"b1","channels":["c2"]},"channel":{"id":"c2"}}`)
	appIDs := func() []string {
		t.Helper()
		_, body := do(t, s, "GET", "/applications/deflect")
		var app struct {
			ChannelIDs []string `json:"channel_ids"`
			BridgeIDs  []string `json:"bridge_ids"`
		}
		if err := json.Unmarshal([]byte(body), &app); err != nil {
			t.Fatalf("GET /applications/deflect = %s: %v", body, err)
		}
		return append(app.ChannelIDs, app.BridgeIDs...)
	}
	if got, want := appIDs(), []string{"c1", "c2", "b1"}; !cmp.Equal(got, want) {
		t.Errorf("application ids = %v, want %v", got, want)
	}
	if _, body := do(t, s, "GET", "/channels/c2/variable?variable=QUEUEWAIT"); body != `{"value":"6"}` {
		t.Errorf("GET variable QUEUEWAIT = %s, want 6 from the ChannelVarset", body)
	}
	s.SetVar("", "QUEUE_MEMBER(sales,logged)", "2")
	if _, body := do(t, s, "GET", "/channels/c1/variable?variable="+url.QueryEscape("QUEUE_MEMBER(sales,logged)")); body != `{"value":"2"}` {
		t.Errorf("GET variable QUEUE_MEMBER(sales,logged) = %s, want 2 for every channel", body)
	}

	send(`{"type":"StasisEnd","channel":{"id":"c2"}}`)
	send(`{"type":"ChannelDestroyed","channel":{"id":"c1"}}`)
	send(`{"type":"BridgeDestroyed","bridge":{"id":"b1"}}`)
	if got, want := appIDs(), []string{}; !cmp.Equal(got, want) {
		t.Errorf("application ids after StasisEnd, ChannelDestroyed, BridgeDestroyed = %v, want none", got)
	}
	if ch, ok := s.Channel("c2"); !ok || !strings.Contains(string(ch), `"id":"c2"`) {
		t.Errorf("Channel(c2) after StasisEnd = %s, %v, want it still there (out of Stasis)", ch, ok)
	}
	if _, ok := s.Channel("c1"); ok {
		t.Errorf("Channel(c1) after ChannelDestroyed exists")
	}
}

func TestRecordings(t *testing.T) {
	names := aritest.Recordings()
	want := []string{"step4", "step5", "step6a", "step6b", "step6c", "step6d", "step6e", "step7"}
	if !cmp.Equal(names, want) {
		t.Errorf("Recordings() = %v, want %v", names, want)
	}
	total := 0
	for _, n := range names {
		events, err := aritest.Recording(n)
		if err != nil || len(events) == 0 {
			t.Errorf("Recording(%s) = %d events, %v", n, len(events), err)
		}
		for i, e := range events {
			if !json.Valid(e) {
				t.Errorf("Recording(%s)[%d] is not JSON: %s", n, i, e)
			}
		}
		total += len(events)
	}
	if total != 399 {
		t.Errorf("recordings hold %d events, want the 399 captured", total)
	}
	if _, err := aritest.Recording("nope"); err == nil {
		t.Errorf("Recording(nope) = nil error, want one")
	}
}

// TestCloseWithSockets checks that Close returns with sockets open.
func TestCloseWithSockets(t *testing.T) {
	s := aritest.NewServer()
	conn, _, err := websocket.Dial(testContext(t), "ws"+strings.TrimPrefix(s.URL, "http")+"/events?app=a&api_key=aritest:aritest-secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := s.WaitConnected(testContext(t), "a"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, _, err := conn.Read(testContext(t)); err == nil {
		t.Error("Read() after Close = nil error, want the socket gone")
	}
	if err := s.Send(testContext(t), "a", `{}`); err == nil {
		t.Error("Send after Close = nil error")
	}
}
