package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testApp = "deflect"

func newTestServer(t *testing.T) *aritest.Server {
	t.Helper()
	srv := aritest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// newTestClient returns a client of srv for testApp with its own registry;
// edit, if not nil, changes the options first.
func newTestClient(t *testing.T, srv *aritest.Server, edit func(*Options)) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{
		URL:         srv.URL,
		Username:    srv.Username,
		Password:    srv.Password,
		Application: testApp,
		Registerer:  reg,
	}
	if edit != nil {
		edit(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v) = %v", opts, err)
	}
	return c, reg
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAdd(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// addModel gives srv the channels, bridge, playback and subscription the
// REST cases act on: ch1 and ch2 in testApp, bridge br1 holding ch1,
// playback pb1 on ch1, testApp subscribed to ch2.
func addModel(t *testing.T, srv *aritest.Server, c *Client) {
	t.Helper()
	ctx := testContext(t)
	mustAdd(t, srv.AddChannel(testApp, `{"id":"ch1","name":"PJSIP/trunk-00000001","state":"Ring"}`))
	mustAdd(t, srv.AddChannel(testApp, `{"id":"ch2","name":"PJSIP/trunk-00000002","state":"Up"}`))
	mustAdd(t, srv.AddBridge(`{"id":"br1","channels":["ch1"]}`))
	srv.SetVar("ch1", "CALLERID(num)", "+15551230001")
	if _, err := c.Play(ctx, "ch1", PlayRequest{Media: []string{"sound:hello-world"}, PlaybackID: "pb1"}); err != nil {
		t.Fatalf("setup: Play = %v", err)
	}
	if err := c.SubscribeChannel(ctx, "ch2"); err != nil {
		t.Fatalf("setup: SubscribeChannel = %v", err)
	}
}

func TestClientRequests(t *testing.T) {
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	type call = aritest.Call
	tests := []struct {
		name string
		do   func(context.Context, *Client) error
		want call
	}{
		{"ListChannels", func(ctx context.Context, c *Client) error { _, err := c.ListChannels(ctx); return err },
			call{Method: "GET", Path: "/channels"}},
		{"GetChannel", func(ctx context.Context, c *Client) error { _, err := c.GetChannel(ctx, "ch1"); return err },
			call{Method: "GET", Path: "/channels/ch1"}},
		{"Answer", func(ctx context.Context, c *Client) error { return c.Answer(ctx, "ch1") },
			call{Method: "POST", Path: "/channels/ch1/answer"}},
		{"Ring", func(ctx context.Context, c *Client) error { return c.Ring(ctx, "ch1") },
			call{Method: "POST", Path: "/channels/ch1/ring"}},
		{"StopRinging", func(ctx context.Context, c *Client) error { return c.StopRinging(ctx, "ch1") },
			call{Method: "DELETE", Path: "/channels/ch1/ring"}},
		{"Hangup/reason", func(ctx context.Context, c *Client) error { return c.Hangup(ctx, "ch1", HangupBusy) },
			call{Method: "DELETE", Path: "/channels/ch1", Query: q("reason", "busy")}},
		{"Hangup/default", func(ctx context.Context, c *Client) error { return c.Hangup(ctx, "ch1", "") },
			call{Method: "DELETE", Path: "/channels/ch1"}},
		{"Continue", func(ctx context.Context, c *Client) error {
			return c.Continue(ctx, "ch1", ContinueRequest{Context: "queue-entry", Extension: "sales", Priority: 2, Label: "start"})
		}, call{Method: "POST", Path: "/channels/ch1/continue",
			Query: q("context", "queue-entry", "extension", "sales", "priority", "2", "label", "start")}},
		{"Continue/empty", func(ctx context.Context, c *Client) error { return c.Continue(ctx, "ch1", ContinueRequest{}) },
			call{Method: "POST", Path: "/channels/ch1/continue"}},
		{"Move", func(ctx context.Context, c *Client) error { return c.Move(ctx, "ch1", "other", "a,b") },
			call{Method: "POST", Path: "/channels/ch1/move", Query: q("app", "other", "appArgs", "a,b")}},
		{"SendDTMF", func(ctx context.Context, c *Client) error {
			return c.SendDTMF(ctx, "ch1", DTMFRequest{DTMF: "12#", Before: 100 * time.Millisecond,
				Between: 200 * time.Millisecond, Duration: 150 * time.Millisecond, After: time.Second})
		}, call{Method: "POST", Path: "/channels/ch1/dtmf",
			Query: q("dtmf", "12#", "before", "100", "between", "200", "duration", "150", "after", "1000")}},
		{"SendDTMF/defaults", func(ctx context.Context, c *Client) error { return c.SendDTMF(ctx, "ch1", DTMFRequest{DTMF: "5"}) },
			call{Method: "POST", Path: "/channels/ch1/dtmf", Query: q("dtmf", "5")}},
		{"Play/id", func(ctx context.Context, c *Client) error {
			_, err := c.Play(ctx, "ch1", PlayRequest{Media: []string{"sound:hello-world", "sound:goodbye"}, Lang: "fr",
				PlaybackID: "prompt-ch1", Offset: 1500 * time.Millisecond, Skip: 3 * time.Second})
			return err
		}, call{Method: "POST", Path: "/channels/ch1/play/prompt-ch1",
			Query: q("media", "sound:hello-world,sound:goodbye", "lang", "fr", "offsetms", "1500", "skipms", "3000")}},
		{"Play/noid", func(ctx context.Context, c *Client) error {
			_, err := c.Play(ctx, "ch1", PlayRequest{Media: []string{"sound:beep"}})
			return err
		}, call{Method: "POST", Path: "/channels/ch1/play", Query: q("media", "sound:beep")}},
		{"GetPlayback", func(ctx context.Context, c *Client) error { _, err := c.GetPlayback(ctx, "pb1"); return err },
			call{Method: "GET", Path: "/playbacks/pb1"}},
		{"StopPlayback", func(ctx context.Context, c *Client) error { return c.StopPlayback(ctx, "pb1") },
			call{Method: "DELETE", Path: "/playbacks/pb1"}},
		{"ControlPlayback", func(ctx context.Context, c *Client) error { return c.ControlPlayback(ctx, "pb1", PlaybackPause) },
			call{Method: "POST", Path: "/playbacks/pb1/control", Query: q("operation", "pause")}},
		{"StartMOH", func(ctx context.Context, c *Client) error { return c.StartMOH(ctx, "ch1", "default") },
			call{Method: "POST", Path: "/channels/ch1/moh", Query: q("mohClass", "default")}},
		{"StartMOH/noclass", func(ctx context.Context, c *Client) error { return c.StartMOH(ctx, "ch1", "") },
			call{Method: "POST", Path: "/channels/ch1/moh"}},
		{"StopMOH", func(ctx context.Context, c *Client) error { return c.StopMOH(ctx, "ch1") },
			call{Method: "DELETE", Path: "/channels/ch1/moh"}},
		{"GetVariable", func(ctx context.Context, c *Client) error {
			_, err := c.GetVariable(ctx, "ch1", "CALLERID(num)")
			return err
		}, call{Method: "GET", Path: "/channels/ch1/variable", Query: q("variable", "CALLERID(num)")}},
		{"SetVariable/empty", func(ctx context.Context, c *Client) error { return c.SetVariable(ctx, "ch1", "X", "") },
			call{Method: "POST", Path: "/channels/ch1/variable", Query: q("variable", "X", "value", "")}},
		{"Originate/local", func(ctx context.Context, c *Client) error {
			_, err := c.Originate(ctx, OriginateRequest{
				Endpoint: "Local/sales@queue-entry/n", App: "deflect", AppArgs: "qproxy,ch1",
				CallerID: `"Alice Caller" <+15551230001>`, Timeout: 119500 * time.Millisecond,
				ChannelID: "ch1-q1", OtherChannelID: "ch1-q2", Originator: "ch1", Formats: "ulaw",
				Variables: map[string]string{"DEFLECT_CALL": "ch1", "B": "2"},
			})
			return err
		}, call{Method: "POST", Path: "/channels",
			Query: q("endpoint", "Local/sales@queue-entry/n", "app", "deflect", "appArgs", "qproxy,ch1",
				"callerId", `"Alice Caller" <+15551230001>`, "timeout", "120", "channelId", "ch1-q1",
				"otherChannelId", "ch1-q2", "originator", "ch1", "formats", "ulaw"),
			Body: []byte(`{"variables":{"B":"2","DEFLECT_CALL":"ch1"}}`)}},
		{"Originate/default-app", func(ctx context.Context, c *Client) error {
			_, err := c.Originate(ctx, OriginateRequest{Endpoint: "PJSIP/agent1"})
			return err
		}, call{Method: "POST", Path: "/channels", Query: q("endpoint", "PJSIP/agent1", "app", testApp)}},
		{"Originate/extension", func(ctx context.Context, c *Client) error {
			_, err := c.Originate(ctx, OriginateRequest{Endpoint: "PJSIP/agent1", Extension: "100", Context: "from-trunk", Priority: 3})
			return err
		}, call{Method: "POST", Path: "/channels",
			Query: q("endpoint", "PJSIP/agent1", "extension", "100", "context", "from-trunk", "priority", "3")}},
		{"CreateBridge/default", func(ctx context.Context, c *Client) error { _, err := c.CreateBridge(ctx, BridgeRequest{}); return err },
			call{Method: "POST", Path: "/bridges", Query: q("type", "mixing")}},
		{"CreateBridge/full", func(ctx context.Context, c *Client) error {
			_, err := c.CreateBridge(ctx, BridgeRequest{ID: "br-ch1", Type: "mixing,dtmf_events", Name: "deflect-ch1"})
			return err
		}, call{Method: "POST", Path: "/bridges", Query: q("type", "mixing,dtmf_events", "bridgeId", "br-ch1", "name", "deflect-ch1")}},
		{"ListBridges", func(ctx context.Context, c *Client) error { _, err := c.ListBridges(ctx); return err },
			call{Method: "GET", Path: "/bridges"}},
		{"GetBridge", func(ctx context.Context, c *Client) error { _, err := c.GetBridge(ctx, "br1"); return err },
			call{Method: "GET", Path: "/bridges/br1"}},
		{"DestroyBridge", func(ctx context.Context, c *Client) error { return c.DestroyBridge(ctx, "br1") },
			call{Method: "DELETE", Path: "/bridges/br1"}},
		{"AddChannel/full", func(ctx context.Context, c *Client) error {
			return c.AddChannel(ctx, "br1", AddChannelRequest{Channels: []string{"ch1", "ch2"}, Role: "caller", AbsorbDTMF: true, Mute: true})
		}, call{Method: "POST", Path: "/bridges/br1/addChannel",
			Query: q("channel", "ch1,ch2", "role", "caller", "absorbDTMF", "true", "mute", "true")}},
		{"AddChannel/minimal", func(ctx context.Context, c *Client) error {
			return c.AddChannel(ctx, "br1", AddChannelRequest{Channels: []string{"ch2"}})
		}, call{Method: "POST", Path: "/bridges/br1/addChannel", Query: q("channel", "ch2")}},
		{"RemoveChannel", func(ctx context.Context, c *Client) error { return c.RemoveChannel(ctx, "br1", "ch1") },
			call{Method: "POST", Path: "/bridges/br1/removeChannel", Query: q("channel", "ch1")}},
		{"PlayOnBridge", func(ctx context.Context, c *Client) error {
			_, err := c.PlayOnBridge(ctx, "br1", PlayRequest{Media: []string{"sound:queue-periodic-announce"}, PlaybackID: "ann-1"})
			return err
		}, call{Method: "POST", Path: "/bridges/br1/play/ann-1", Query: q("media", "sound:queue-periodic-announce")}},
		{"StartBridgeMOH", func(ctx context.Context, c *Client) error { return c.StartBridgeMOH(ctx, "br1", "default") },
			call{Method: "POST", Path: "/bridges/br1/moh", Query: q("mohClass", "default")}},
		{"StopBridgeMOH", func(ctx context.Context, c *Client) error { return c.StopBridgeMOH(ctx, "br1") },
			call{Method: "DELETE", Path: "/bridges/br1/moh"}},
		{"GetApplication", func(ctx context.Context, c *Client) error { _, err := c.GetApplication(ctx); return err },
			call{Method: "GET", Path: "/applications/deflect"}},
		{"Subscribe", func(ctx context.Context, c *Client) error {
			_, err := c.Subscribe(ctx, ChannelSource("ch1"), BridgeSource("br1"), EndpointSource("PJSIP", "agent1"))
			return err
		}, call{Method: "POST", Path: "/applications/deflect/subscription",
			Query: q("eventSource", "channel:ch1,bridge:br1,endpoint:PJSIP/agent1")}},
		{"Unsubscribe", func(ctx context.Context, c *Client) error {
			_, err := c.Unsubscribe(ctx, ChannelSource("ch2"))
			return err
		},
			call{Method: "DELETE", Path: "/applications/deflect/subscription", Query: q("eventSource", "channel:ch2")}},
		{"SubscribeChannel", func(ctx context.Context, c *Client) error { return c.SubscribeChannel(ctx, "ch1") },
			call{Method: "POST", Path: "/applications/deflect/subscription", Query: q("eventSource", "channel:ch1")}},
		{"UnsubscribeChannel", func(ctx context.Context, c *Client) error { return c.UnsubscribeChannel(ctx, "ch2") },
			call{Method: "DELETE", Path: "/applications/deflect/subscription", Query: q("eventSource", "channel:ch2")}},
		{"Ping", func(ctx context.Context, c *Client) error { _, err := c.Ping(ctx); return err },
			call{Method: "GET", Path: "/asterisk/ping"}},
		{"Info", func(ctx context.Context, c *Client) error { _, err := c.Info(ctx); return err },
			call{Method: "GET", Path: "/asterisk/info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			c, _ := newTestClient(t, srv, nil)
			addModel(t, srv, c)
			if err := tt.do(testContext(t), c); err != nil {
				t.Fatalf("%s = %v, want nil", tt.name, err)
			}
			calls := srv.Calls()
			got := calls[len(calls)-1]
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(aritest.Call{}, "RawPath", "Params")); diff != "" {
				t.Errorf("%s sent (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// TestClientSubscribeNoSource checks that an empty subscription fails
// before any request.
func TestClientSubscribeNoSource(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	if _, err := c.Subscribe(testContext(t)); err == nil {
		t.Errorf("Subscribe() = nil error, want one")
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("Subscribe() sent %d requests, want 0", n)
	}
}

// TestClientAnswers checks that answers decode into the models, against the
// fake's ARI-shaped bodies.
func TestClientAnswers(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	ctx := testContext(t)
	addModel(t, srv, c)

	ch, err := c.Originate(ctx, OriginateRequest{Endpoint: "Local/sales@queue-entry/n", AppArgs: "qproxy,ch1",
		CallerID: `"Alice Caller" <+15551230001>`, ChannelID: "ch1-q1", OtherChannelID: "ch1-q2",
		Variables: map[string]string{"DEFLECT_CALL": "ch1"}})
	if err != nil {
		t.Fatalf("Originate = %v", err)
	}
	if ch.ID != "ch1-q1" || ch.State != StateDown || !strings.HasSuffix(ch.Name, ";1") ||
		ch.Caller != (CallerID{Name: "Alice Caller", Number: "+15551230001"}) {
		t.Errorf("Originate = %+v, want id ch1-q1, state Down, a ;1 name, caller Alice Caller <+15551230001>", ch)
	}
	if v, err := c.GetVariable(ctx, "ch1-q1", "DEFLECT_CALL"); v != "ch1" || err != nil {
		t.Errorf("GetVariable(ch1-q1, DEFLECT_CALL) = %q, %v, want ch1, nil", v, err)
	}
	if v, err := c.GetVariable(ctx, "ch1", "CALLERID(num)"); v != "+15551230001" || err != nil {
		t.Errorf("GetVariable(ch1, CALLERID(num)) = %q, %v, want +15551230001, nil", v, err)
	}
	if err := c.SetVariable(ctx, "ch1", "DEFLECT_STATE", "queued"); err != nil {
		t.Fatalf("SetVariable = %v", err)
	}
	if v, err := c.GetVariable(ctx, "ch1", "DEFLECT_STATE"); v != "queued" || err != nil {
		t.Errorf("GetVariable(ch1, DEFLECT_STATE) = %q, %v, want queued, nil", v, err)
	}

	app, err := c.GetApplication(ctx)
	if err != nil {
		t.Fatalf("GetApplication = %v", err)
	}
	if want := []string{"ch1", "ch2", "ch1-q1"}; !cmp.Equal(app.ChannelIDs, want) || app.Name != testApp {
		t.Errorf("GetApplication() = %+v, want name %s, channel_ids %v", app, testApp, want)
	}

	pb, err := c.Play(ctx, "ch1", PlayRequest{Media: []string{"sound:hello-world"}, PlaybackID: "pb-ch1"})
	if err != nil {
		t.Fatalf("Play = %v", err)
	}
	if want := (&Playback{ID: "pb-ch1", MediaURI: "sound:hello-world", TargetURI: "channel:ch1", Language: "en", State: "queued"}); !cmp.Equal(pb, want) {
		t.Errorf("Play() = %+v, want %+v", pb, want)
	}
	if ids := ChannelIDs(&PlaybackStarted{Playback: *pb}); !cmp.Equal(ids, []string{"ch1"}) {
		t.Errorf("ChannelIDs(PlaybackStarted of Play()) = %v, want [ch1]", ids)
	}

	br, err := c.CreateBridge(ctx, BridgeRequest{ID: "br-ch1", Name: "deflect-ch1"})
	if err != nil {
		t.Fatalf("CreateBridge = %v", err)
	}
	if br.ID != "br-ch1" || br.BridgeType != "mixing" || br.Name != "deflect-ch1" || br.CreationTime.IsZero() {
		t.Errorf("CreateBridge() = %+v, want id br-ch1, type mixing, name deflect-ch1, a creation time", br)
	}
	if _, err := c.CreateBridge(ctx, BridgeRequest{ID: "br-ch1"}); !errors.Is(err, ErrConflict) {
		t.Errorf("CreateBridge(existing id) = %v, want ErrConflict", err)
	}
	if err := c.AddChannel(ctx, "br-ch1", AddChannelRequest{Channels: []string{"ch1"}}); err != nil {
		t.Fatalf("AddChannel = %v", err)
	}
	if got, err := c.GetBridge(ctx, "br-ch1"); err != nil || !cmp.Equal(got.Channels, []string{"ch1"}) {
		t.Errorf("GetBridge(br-ch1) = %+v, %v, want channels [ch1]", got, err)
	}

	ping, err := c.Ping(ctx)
	if err != nil || ping.AsteriskID != aritest.AsteriskID || ping.Ping != "pong" || ping.Timestamp.IsZero() {
		t.Errorf("Ping() = %+v, %v, want asterisk id %s, pong, a timestamp", ping, err, aritest.AsteriskID)
	}
	info, err := c.Info(ctx)
	if err != nil || info.System.Version != aritest.Version || info.Status.StartupTime.IsZero() {
		t.Errorf("Info() = %+v, %v, want version %s and a startup time", info, err, aritest.Version)
	}

	if err := c.Hangup(ctx, "ch1", HangupNormal); err != nil {
		t.Fatalf("Hangup = %v", err)
	}
	if _, err := c.GetChannel(ctx, "ch1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetChannel(hung up) = %v, want ErrNotFound", err)
	}
	if err := c.Hangup(ctx, "ch1", HangupNormal); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hangup(hung up) = %v, want ErrNotFound", err)
	}
}

func TestClientErrors(t *testing.T) {
	sentinels := []error{ErrNotFound, ErrConflict, ErrPreconditionFailed, ErrUnprocessable}
	tests := []struct {
		status  int
		body    any
		wantIs  error // nil: none of the sentinels
		wantMsg string
	}{
		{404, aritest.ErrorBody("Channel not found"), ErrNotFound, "Channel not found"},
		{409, aritest.ErrorBody("Channel not in Stasis application"), ErrConflict, "Channel not in Stasis application"},
		{412, aritest.ErrorBody("Channel in invalid state"), ErrPreconditionFailed, "Channel in invalid state"},
		{422, aritest.ErrorBody("Unable to find event source"), ErrUnprocessable, "Unable to find event source"},
		{400, aritest.ErrorBody("DTMF is required"), nil, "DTMF is required"},
		{500, aritest.ErrorBody("Allocation failed"), nil, "Allocation failed"},
		{503, "<html>Service Unavailable</html>", nil, ""},
		{502, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := newTestServer(t)
			c, _ := newTestClient(t, srv, nil)
			srv.Handle("POST", "/channels/{id}/answer", func(context.Context, aritest.Call) (int, any) {
				return tt.status, tt.body
			})
			err := c.Answer(testContext(t), "ch1")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Answer(ch1) = %v (%T), want an *Error", err, err)
			}
			want := &Error{Op: "answer", Method: "POST", Path: "/channels/ch1/answer", StatusCode: tt.status, Message: tt.wantMsg}
			if diff := cmp.Diff(want, e); diff != "" {
				t.Errorf("Answer(ch1) error (-want +got):\n%s", diff)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.wantIs) {
					t.Errorf("errors.Is(Answer(ch1) = %v, %v) = %v, want %v", err, s, got, !got)
				}
			}
			if tt.wantMsg == "" && !strings.Contains(err.Error(), http.StatusText(tt.status)) {
				t.Errorf("Answer(ch1) = %q, want the status text %q when Asterisk gave no message", err, http.StatusText(tt.status))
			}
		})
	}
}

// TestClientModelErrors checks errors from the fake's model, which answers
// as Asterisk does for gone channels and channels outside Stasis.
func TestClientModelErrors(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	ctx := testContext(t)
	mustAdd(t, srv.AddChannel("", `{"id":"dialplan-only"}`))
	mustAdd(t, srv.AddChannel(testApp, `{"id":"in-app"}`)) // Asterisk knows the application
	tests := []struct {
		name   string
		err    error
		wantIs error
		msg    string
	}{
		{"Answer(gone)", c.Answer(ctx, "gone"), ErrNotFound, "Channel not found"},
		{"GetApplication(unknown)", func() error {
			other, _ := newTestClient(t, srv, func(o *Options) { o.Application = "nobody" })
			_, err := other.GetApplication(ctx)
			return err
		}(), ErrNotFound, "Application not found"},
		{"Answer(dialplan-only)", c.Answer(ctx, "dialplan-only"), ErrConflict, "Channel not in Stasis application"},
		{"Unsubscribe(never subscribed)", c.UnsubscribeChannel(ctx, "dialplan-only"), ErrConflict, "Application not subscribed to event source channel:dialplan-only"},
		{"Subscribe(gone)", c.SubscribeChannel(ctx, "gone"), ErrUnprocessable, "Unable to find event source channel:gone"},
		{"StopPlayback(gone)", c.StopPlayback(ctx, "gone"), ErrNotFound, "Playback not found"},
	}
	for _, tt := range tests {
		var e *Error
		if !errors.As(tt.err, &e) || !errors.Is(tt.err, tt.wantIs) || e.Message != tt.msg {
			t.Errorf("%s = %v, want an *Error matching %v with message %q", tt.name, tt.err, tt.wantIs, tt.msg)
		}
	}
}

func TestClientRequestTimeout(t *testing.T) {
	srv := newTestServer(t)
	c, reg := newTestClient(t, srv, func(o *Options) { o.RequestTimeout = 50 * time.Millisecond })
	srv.Handle("POST", "/channels/{id}/answer", func(ctx context.Context, _ aritest.Call) (int, any) {
		<-ctx.Done() // answers only once the client gave up
		return http.StatusNoContent, nil
	})
	start := time.Now()
	err := c.Answer(testContext(t), "ch1")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Answer(ch1) with RequestTimeout 50ms took %v", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Answer(ch1) = %v, want context.DeadlineExceeded", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("Answer(ch1) = %v, want no *Error: Asterisk never answered", err)
	}
	if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("answer", "error")); got != 1 {
		t.Errorf("deflectd_ari_requests_total{op=answer,code=error} = %v, want 1", got)
	}
	// Every op's series exists from the start; the answer's holds the one
	// observation.
	if n, err := testutil.GatherAndCount(reg, "deflectd_ari_request_duration_seconds"); err != nil || n != len(restOps) {
		t.Errorf("GatherAndCount(request_duration) = %d, %v, want %d series", n, err, len(restOps))
	}

	// The caller's context still ends a call sooner.
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if err := c.Answer(ctx, "ch1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Answer(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestClientPathEscaping(t *testing.T) {
	ids := []string{"1795236473.0", "a/b", "with space", "q?x#y", "100%", "semi;colon", "ünï", "../x"}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			srv := newTestServer(t)
			c, _ := newTestClient(t, srv, nil)
			ctx := testContext(t)
			mustAdd(t, srv.AddChannel(testApp, map[string]any{"id": id}))
			if err := c.Answer(ctx, id); err != nil {
				t.Fatalf("Answer(%q) = %v, want nil", id, err)
			}
			if _, err := c.Play(ctx, id, PlayRequest{Media: []string{"sound:x"}, PlaybackID: "pb-" + id}); err != nil {
				t.Fatalf("Play(%q) = %v, want nil", id, err)
			}
			calls := srv.Calls()
			answer, play := calls[len(calls)-2], calls[len(calls)-1]
			if got, want := answer.RawPath, "/channels/"+url.PathEscape(id)+"/answer"; got != want {
				t.Errorf("Answer(%q) sent path %q, want %q", id, got, want)
			}
			if got := answer.Params["id"]; got != id {
				t.Errorf("Answer(%q) reached channel %q", id, got)
			}
			if got := play.Params; got["id"] != id || got["playbackId"] != "pb-"+id {
				t.Errorf("Play(%q) reached %v, want id %q and playbackId %q", id, got, id, "pb-"+id)
			}
		})
	}
}

func TestClientOriginateVariables(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, nil)
	ctx := testContext(t)
	vars := map[string]string{"DEFLECT_CALL": "ch1", "CALLERID(name)": "Alice, \"the\" caller"}
	if _, err := c.Originate(ctx, OriginateRequest{Endpoint: "PJSIP/agent1", ChannelID: "agent-call", Variables: vars}); err != nil {
		t.Fatalf("Originate = %v", err)
	}
	got, err := srv.WaitCall(ctx, "POST", "/channels")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Variables map[string]string `json:"variables"`
	}
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatalf("Originate body %q: %v", got.Body, err)
	}
	if diff := cmp.Diff(vars, body.Variables); diff != "" {
		t.Errorf("Originate body variables (-want +got):\n%s", diff)
	}
	for k := range got.Query {
		if strings.Contains(strings.ToLower(k), "variable") {
			t.Errorf("Originate sent %q in the query; variables go in the body only", k)
		}
	}

	if _, err := c.Originate(ctx, OriginateRequest{Endpoint: "PJSIP/agent1", ChannelID: "no-vars"}); err != nil {
		t.Fatalf("Originate = %v", err)
	}
	calls := srv.Calls()
	if b := calls[len(calls)-1].Body; b != nil {
		t.Errorf("Originate without Variables sent body %q, want none", b)
	}
}

func TestNewOptions(t *testing.T) {
	ok := Options{URL: "http://127.0.0.1:8088/ari", Username: "u", Password: "p", Application: "deflect"}
	tests := []struct {
		name    string
		edit    func(*Options)
		wantErr bool
	}{
		{"valid", func(*Options) {}, false},
		{"no URL", func(o *Options) { o.URL = "" }, true},
		{"no user", func(o *Options) { o.Username = "" }, true},
		{"no app", func(o *Options) { o.Application = "" }, true},
		{"two apps", func(o *Options) { o.Application = "a,b" }, true},
		{"ws scheme", func(o *Options) { o.URL = "ws://127.0.0.1:8088/ari" }, true},
		{"bad URL", func(o *Options) { o.URL = "http://[::1" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			o.Registerer = prometheus.NewRegistry()
			tt.edit(&o)
			_, err := New(o)
			if (err != nil) != tt.wantErr {
				t.Errorf("New(%+v) = %v, want error %v", o, err, tt.wantErr)
			}
		})
	}
}

// TestMetricsLint checks the series the client registers against
// Prometheus' naming rules (what promtool check metrics enforces).
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Options{URL: "http://127.0.0.1/ari", Username: "u", Application: "a", Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint() = %v, %v, want no problems", problems, err)
	}
}

// A burst of requests opens at most MaxConnections connections to
// Asterisk, whose http.conf sessionlimit (100 by default) refuses more:
// the rest wait in the client for a connection.
func TestMaxConnections(t *testing.T) {
	const limit, burst = 4, 20
	var mu sync.Mutex
	open, peak := 0, 0
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open++
			peak = max(peak, open)
		case http.StateClosed, http.StateHijacked:
			open--
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Options{URL: srv.URL + "/ari", Username: "u", Application: "a", MaxConnections: limit, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for i := range burst {
		wg.Go(func() { errs <- c.Answer(context.Background(), fmt.Sprint("chan-", i)) })
	}
	// Once the limit's worth of requests is in, no more connections come.
	for {
		mu.Lock()
		n := open
		mu.Unlock()
		if n >= limit {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if peak > limit {
		t.Errorf("%d connections at once, want at most %d", peak, limit)
	}
	if tr, ok := c.opts.HTTPClient.Transport.(*http.Transport); !ok || tr.MaxConnsPerHost != limit {
		t.Errorf("the default client's transport = %T, want one with MaxConnsPerHost %d", c.opts.HTTPClient.Transport, limit)
	}
}
