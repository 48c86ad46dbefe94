package ari

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/google/go-cmp/cmp"
)

// fixtureLines returns every event of aritest's recordings (the calls
// captured from Asterisk 22 in the project's sandbox), one raw event each,
// as Asterisk sent them.
func fixtureLines(tb testing.TB) [][]byte {
	tb.Helper()
	var lines [][]byte
	for _, name := range aritest.Recordings() {
		events, err := aritest.Recording(name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, ev := range events {
			lines = append(lines, []byte(ev))
		}
	}
	if len(lines) == 0 {
		tb.Fatal("aritest has no recorded events")
	}
	return lines
}

// fixtureEvent returns the first fixture event of type T for which match
// reports true, decoded.
func fixtureEvent[T Event](t *testing.T, match func(T) bool) T {
	t.Helper()
	for _, line := range fixtureLines(t) {
		ev, err := DecodeEvent(line)
		if err != nil {
			t.Fatalf("DecodeEvent(%s) error: %v", line, err)
		}
		if e, ok := ev.(T); ok && match(e) {
			return e
		}
	}
	var zero T
	t.Fatalf("no %T in the recordings matches", zero)
	return zero
}

func TestDecodeEventFixtures(t *testing.T) {
	lines := fixtureLines(t)
	counts := map[string]int{}
	for i, line := range lines {
		ev, err := DecodeEvent(line)
		if err != nil {
			t.Errorf("line %d: DecodeEvent(%s) error: %v", i+1, line, err)
			continue
		}
		h := ev.Header()
		var want struct {
			Type        string `json:"type"`
			Application string `json:"application"`
			AsteriskID  string `json:"asterisk_id"`
		}
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if h.Type != want.Type || h.Application != want.Application || h.AsteriskID != want.AsteriskID {
			t.Errorf("line %d: DecodeEvent(...).Header() = %q %q %q, want %q %q %q", i+1,
				h.Type, h.Application, h.AsteriskID, want.Type, want.Application, want.AsteriskID)
		}
		if h.Timestamp.IsZero() {
			t.Errorf("line %d: DecodeEvent(...).Header().Timestamp is zero", i+1)
		}
		if newEvent(h.Type) != nil {
			if raw, ok := ev.(*RawEvent); ok {
				t.Errorf("line %d: DecodeEvent(%s) = *RawEvent (Err %v), want %s", i+1, line, raw.Err, h.Type)
			}
		} else if _, ok := ev.(*RawEvent); !ok {
			t.Errorf("line %d: DecodeEvent(%s) = %T, want *RawEvent", i+1, line, ev)
		}
		counts[h.Type]++
	}
	// The mix the benchmarks and spot checks rely on.
	for _, typ := range []string{TypeStasisStart, TypeDial, TypeChannelVarset, TypeChannelHangupRequest,
		TypeChannelDestroyed, TypePlaybackFinished, TypeChannelDtmfReceived, "ChannelCallerId", "ChannelConnectedLine"} {
		if counts[typ] == 0 {
			t.Errorf("the recordings has no %s", typ)
		}
	}
}

func TestDecodeEventFields(t *testing.T) {
	asteriskTime := func(s string) Time {
		v, err := time.Parse(TimeLayout, s)
		if err != nil {
			t.Fatal(err)
		}
		return Time{v}
	}

	t.Run("StasisStart", func(t *testing.T) {
		e := fixtureEvent(t, func(e *StasisStart) bool { return len(e.Args) == 3 })
		if diff := cmp.Diff([]string{"queue=sales", "option=2", "reason=billing"}, e.Args); diff != "" {
			t.Errorf("StasisStart.Args mismatch (-want +got):\n%s", diff)
		}
		if got, want := e.Channel.Caller, (CallerID{Name: "Alice Caller", Number: "+15551230001"}); got != want {
			t.Errorf("StasisStart.Channel.Caller = %+v, want %+v", got, want)
		}
		if got, ok := e.Arg("queue"); got != "sales" || !ok {
			t.Errorf("Arg(%q) = %q, %v, want %q, true", "queue", got, ok, "sales")
		}
		if got, ok := e.Arg("missing"); got != "" || ok {
			t.Errorf("Arg(%q) = %q, %v, want \"\", false", "missing", got, ok)
		}
		if e.Channel.ID == "" || e.Channel.State != StateRing || e.Channel.Dialplan.AppName != "Stasis" {
			t.Errorf("StasisStart.Channel = %+v, want an id, state Ring, app Stasis", e.Channel)
		}
		if e.Channel.ChannelVars["DEFLECT_ENTRY"] != "ivr-main" {
			t.Errorf("StasisStart.Channel.ChannelVars = %v, want DEFLECT_ENTRY=ivr-main", e.Channel.ChannelVars)
		}
		if e.Channel.CreationTime.IsZero() || e.Application != "deflect" {
			t.Errorf("StasisStart = %+v, want creationtime and application deflect", e)
		}
	})

	t.Run("DialAnswer", func(t *testing.T) {
		e := fixtureEvent(t, func(e *Dial) bool { return e.DialStatus == DialAnswer && e.Caller != nil })
		if e.Caller.ID != "1795234870.2-q2" || e.Caller.Name != "Local/sales@queue-entry-00000000;2" {
			t.Errorf("Dial.Caller = %+v, want the queue's Local ;2 half", e.Caller)
		}
		if e.Peer.ID != "1795234870.5" || e.DialString != "PJSIP/agent1" {
			t.Errorf("Dial.Peer.ID, DialString = %q, %q, want %q, %q", e.Peer.ID, e.DialString, "1795234870.5", "PJSIP/agent1")
		}
		if want := asteriskTime("2026-11-21T04:21:16.860+0000"); !e.Timestamp.Equal(want.Time) {
			t.Errorf("Dial.Timestamp = %v, want %v", e.Timestamp, want)
		}
	})

	t.Run("DialWithoutCaller", func(t *testing.T) {
		e := fixtureEvent(t, func(e *Dial) bool { return e.Caller == nil })
		if e.Peer.ID == "" || e.DialString != "sales@queue-entry/n" {
			t.Errorf("Dial = %+v, want a peer and dialstring sales@queue-entry/n", e)
		}
	})

	t.Run("ChannelVarsetAbandoned", func(t *testing.T) {
		e := fixtureEvent(t, func(e *ChannelVarset) bool { return e.Variable == "ABANDONED" })
		if e.Value != "TRUE" {
			t.Errorf("ChannelVarset ABANDONED Value = %q, want TRUE", e.Value)
		}
		if e.Channel == nil || !strings.HasSuffix(e.Channel.ID, "-q2") {
			t.Errorf("ChannelVarset ABANDONED Channel = %+v, want the Local ;2 half", e.Channel)
		}
		// Asterisk writes variable and value before type: the slow path.
		if e.Type != TypeChannelVarset || e.Application != "deflect" || e.Timestamp.IsZero() {
			t.Errorf("ChannelVarset header = %+v, want type, application, timestamp", e.EventHeader)
		}
	})

	t.Run("ChannelHangupRequest", func(t *testing.T) {
		e := fixtureEvent(t, func(e *ChannelHangupRequest) bool { return e.Cause == 32 })
		if !e.Soft || e.Channel.ID != "1795236473.0" {
			t.Errorf("ChannelHangupRequest = cause %d soft %v channel %q, want 32 true %q", e.Cause, e.Soft, e.Channel.ID, "1795236473.0")
		}
		remote := fixtureEvent(t, func(e *ChannelHangupRequest) bool { return e.Cause == 0 })
		if remote.Soft || remote.Channel.ID == "" {
			t.Errorf("remote ChannelHangupRequest = soft %v channel %q, want false and an id", remote.Soft, remote.Channel.ID)
		}
	})

	t.Run("ChannelDestroyed", func(t *testing.T) {
		e := fixtureEvent(t, func(e *ChannelDestroyed) bool { return true })
		if e.Cause != 16 || e.CauseTxt != "Normal Clearing" || e.Channel.ID == "" {
			t.Errorf("ChannelDestroyed = %d %q %q, want 16 \"Normal Clearing\" and an id", e.Cause, e.CauseTxt, e.Channel.ID)
		}
	})

	t.Run("PlaybackFinished", func(t *testing.T) {
		e := fixtureEvent(t, func(e *PlaybackFinished) bool { return true })
		want := Playback{ID: "pb-1795236473.0", MediaURI: "sound:hello-world", TargetURI: "channel:1795236473.0", Language: "en", State: "done"}
		if diff := cmp.Diff(want, e.Playback); diff != "" {
			t.Errorf("PlaybackFinished.Playback mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ChannelDtmfReceived", func(t *testing.T) {
		e := fixtureEvent(t, func(e *ChannelDtmfReceived) bool { return true })
		if e.Digit != "5" || e.DurationMs != 160 || e.Channel.ID != "1795234851.1" {
			t.Errorf("ChannelDtmfReceived = %q %d %q, want \"5\" 160 %q", e.Digit, e.DurationMs, e.Channel.ID, "1795234851.1")
		}
	})
}

func TestDecodeEventRaw(t *testing.T) {
	var callerID, connectedLine []byte
	for _, line := range fixtureLines(t) {
		switch {
		case callerID == nil && bytes.HasPrefix(line, []byte(`{"type":"ChannelCallerId"`)):
			callerID = line
		case connectedLine == nil && bytes.HasPrefix(line, []byte(`{"type":"ChannelConnectedLine"`)):
			connectedLine = line
		}
	}
	if callerID == nil || connectedLine == nil {
		t.Fatal("the recordings lacks ChannelCallerId or ChannelConnectedLine")
	}
	ts := func(s string) Time {
		v, err := time.Parse(TimeLayout, s)
		if err != nil {
			t.Fatal(err)
		}
		return Time{v}
	}
	tests := []struct {
		name       string
		in         []byte
		wantHeader EventHeader
		wantErr    bool // RawEvent.Err set
	}{
		{
			name:       "ChannelCallerId",
			in:         callerID,
			wantHeader: EventHeader{Type: "ChannelCallerId", Application: "deflect", Timestamp: ts("2026-11-21T04:21:10.350+0000"), AsteriskID: "02:fc:00:00:00:01"},
		},
		{
			name:       "ChannelConnectedLine",
			in:         connectedLine,
			wantHeader: EventHeader{Type: "ChannelConnectedLine", Application: "deflect", Timestamp: ts("2026-11-21T04:21:10.350+0000"), AsteriskID: "02:fc:00:00:00:01"},
		},
		{
			name:       "FutureEvent",
			in:         []byte(`{"type":"FutureEvent","timestamp":"2026-11-21T04:21:10.342+0000","answer":42,"nested":{"a":[1,2]},"asterisk_id":"02:fc:00:00:00:01","application":"deflect"}`),
			wantHeader: EventHeader{Type: "FutureEvent", Application: "deflect", Timestamp: ts("2026-11-21T04:21:10.342+0000"), AsteriskID: "02:fc:00:00:00:01"},
		},
		{
			name:       "FutureEventTypeLast",
			in:         []byte(`{"x":{"type":"Dial"},"application":"deflect","type":"FutureEvent"}`),
			wantHeader: EventHeader{Type: "FutureEvent", Application: "deflect"},
		},
		{
			name:       "KnownTypeWrongField",
			in:         []byte(`{"type":"Dial","timestamp":"2026-11-21T04:21:10.342+0000","dialstatus":7,"peer":{"id":"p"},"application":"deflect"}`),
			wantHeader: EventHeader{Type: "Dial", Application: "deflect", Timestamp: ts("2026-11-21T04:21:10.342+0000")},
			wantErr:    true,
		},
		{
			name:       "KnownTypeWrongFieldTypeNotFirst",
			in:         []byte(`{"cause":"sixteen","type":"ChannelHangupRequest","application":"deflect"}`),
			wantHeader: EventHeader{Type: "ChannelHangupRequest", Application: "deflect"},
			wantErr:    true,
		},
		{
			name:       "KnownTypeBadTimestamp",
			in:         []byte(`{"type":"StasisStart","timestamp":"yesterday","application":"deflect"}`),
			wantHeader: EventHeader{Type: "StasisStart"},
			wantErr:    true,
		},
		{
			// Asterisk writes ChannelVarset with variable and value first.
			name:       "KnownTypeBadTimestampTypeNotFirst",
			in:         []byte(`{"variable":"QUEUEWAIT","value":"1","type":"ChannelVarset","timestamp":"yesterday","application":"deflect"}`),
			wantHeader: EventHeader{Type: "ChannelVarset"},
			wantErr:    true,
		},
		{
			name:       "UnknownTypeBadTimestamp",
			in:         []byte(`{"type":"FutureEvent","timestamp":"yesterday"}`),
			wantHeader: EventHeader{Type: "FutureEvent"},
			wantErr:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent(tt.in)
			if err != nil {
				t.Fatalf("DecodeEvent(%s) error: %v", tt.in, err)
			}
			raw, ok := ev.(*RawEvent)
			if !ok {
				t.Fatalf("DecodeEvent(%s) = %T, want *RawEvent", tt.in, ev)
			}
			if !bytes.Equal(raw.Raw, tt.in) {
				t.Errorf("DecodeEvent(%s).Raw = %s, want the input", tt.in, raw.Raw)
			}
			if diff := cmp.Diff(tt.wantHeader, raw.EventHeader); diff != "" {
				t.Errorf("DecodeEvent(%s).EventHeader mismatch (-want +got):\n%s", tt.in, diff)
			}
			if gotErr := raw.Err != nil; gotErr != tt.wantErr {
				t.Errorf("DecodeEvent(%s).Err = %v, want error %v", tt.in, raw.Err, tt.wantErr)
			}
			if raw.Err != nil && !strings.Contains(raw.Err.Error(), tt.wantHeader.Type) {
				t.Errorf("DecodeEvent(%s).Err = %q, want it to name %s", tt.in, raw.Err, tt.wantHeader.Type)
			}
			if ids := ChannelIDs(ev); ids != nil {
				t.Errorf("ChannelIDs(%s) = %q, want nil", tt.in, ids)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []string{
		``,
		`   `,
		`null`,
		`42`,
		`"StasisStart"`,
		`[{"type":"StasisStart"}]`,
		`{`,
		`{"type":`,
		`{}`,
		`{"application":"deflect"}`,
		`{"type":""}`,
		`{"type":null}`,
		`{"type":7}`,
		`{"type":["Dial"]}`,
		`{ "type" : "" }`,
		`{"type":"FutureEvent","type":""}`,
		"{\n  \"type\": \"Dial\",\n  \"peer\": {\"id\":",
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(in))
			if err == nil {
				t.Errorf("DecodeEvent(%q) = %T %+v, nil, want an error", in, ev, ev)
			}
			if ev != nil {
				t.Errorf("DecodeEvent(%q) = %T, want nil with the error", in, ev)
			}
		})
	}
}

func TestDecodeEventLayouts(t *testing.T) {
	want := &ChannelDtmfReceived{
		EventHeader: EventHeader{Type: TypeChannelDtmfReceived, Application: "deflect"},
		Digit:       "5",
		DurationMs:  160,
		Channel:     Channel{ID: "c1", Name: "PJSIP/trunk-00000001", State: StateUp},
	}
	tests := []struct {
		name string
		in   string
	}{
		{"compact", `{"type":"ChannelDtmfReceived","digit":"5","duration_ms":160,"channel":{"id":"c1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"deflect"}`},
		{"typeLast", `{"digit":"5","duration_ms":160,"channel":{"id":"c1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"deflect","type":"ChannelDtmfReceived"}`},
		{"pretty", "{\n  \"type\": \"ChannelDtmfReceived\",\n  \"digit\": \"5\",\n  \"duration_ms\": 160,\n  \"channel\": {\n    \"id\": \"c1\",\n    \"name\": \"PJSIP/trunk-00000001\",\n    \"state\": \"Up\"\n  },\n  \"application\": \"deflect\"\n}\n"},
		{"leadingSpace", ` {"type":"ChannelDtmfReceived","digit":"5","duration_ms":160,"channel":{"id":"c1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"deflect"}`},
		{"tabs", "{\t\"type\"\t:\t\"ChannelDtmfReceived\",\"digit\":\"5\",\"duration_ms\":160,\"channel\":{\"id\":\"c1\",\"name\":\"PJSIP/trunk-00000001\",\"state\":\"Up\"},\"application\":\"deflect\"}"},
		{"escapedType", `{"type":"ChannelDtmf\u0052eceived","digit":"5","duration_ms":160,"channel":{"id":"c1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"deflect"}`},
		{"typeInsideValueFirst", `{"channel":{"id":"c1","name":"PJSIP/trunk-00000001","state":"Up","type":"Dial"},"digit":"5","duration_ms":160,"type":"ChannelDtmfReceived","application":"deflect"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeEvent(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DecodeEvent(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}

	// A whole real event, pretty-printed as ari.conf pretty=yes would send
	// it, decodes to what the compact one does.
	for _, line := range fixtureLines(t)[:12] {
		var buf bytes.Buffer
		if err := json.Indent(&buf, line, "", "  "); err != nil {
			t.Fatal(err)
		}
		compact, err := DecodeEvent(line)
		if err != nil {
			t.Fatalf("DecodeEvent(%s) error: %v", line, err)
		}
		pretty, err := DecodeEvent(buf.Bytes())
		if err != nil {
			t.Fatalf("DecodeEvent(%s) error: %v", buf.Bytes(), err)
		}
		if diff := cmp.Diff(compact, pretty, cmp.FilterPath(func(p cmp.Path) bool {
			return p.Last().String() == ".Raw"
		}, cmp.Ignore())); diff != "" {
			t.Errorf("DecodeEvent(pretty %s) mismatch (-compact +pretty):\n%s", compact.Header().Type, diff)
		}
	}
}

// TestDecodeEventDuplicateType: encoding/json keeps the last of duplicate
// keys; the struct chosen and Header().Type must still agree, and Type must
// not be left empty.
func TestDecodeEventDuplicateType(t *testing.T) {
	tests := []string{
		`{"type":"Dial","type":""}`,
		`{"type":"Dial","peer":{"id":"p"},"type":"StasisStart"}`,
		`{"type":"ChannelVarset","variable":"X","type":"FutureEvent"}`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(in))
			if err != nil {
				return // refusing it is fine too
			}
			typ := ev.Header().Type
			if typ == "" {
				t.Fatalf("DecodeEvent(%s) = %T with Header().Type \"\", want a type", in, ev)
			}
			if _, raw := ev.(*RawEvent); !raw {
				if want := newEvent(typ); want == nil || fmt.Sprintf("%T", want) != fmt.Sprintf("%T", ev) {
					t.Errorf("DecodeEvent(%s) = %T with Header().Type %q, want them to agree", in, ev, typ)
				}
			}
		})
	}
}

func TestChannelIDs(t *testing.T) {
	ch := func(id string) Channel { return Channel{ID: id} }
	pch := func(id string) *Channel { c := ch(id); return &c }
	tests := []struct {
		name string
		ev   Event
		want []string
	}{
		{"StasisStart", &StasisStart{Channel: ch("a")}, []string{"a"}},
		{"StasisEnd", &StasisEnd{Channel: ch("a")}, []string{"a"}},
		{"ChannelCreated", &ChannelCreated{Channel: ch("a")}, []string{"a"}},
		{"ChannelDestroyed", &ChannelDestroyed{Channel: ch("a")}, []string{"a"}},
		{"ChannelStateChange", &ChannelStateChange{Channel: ch("a")}, []string{"a"}},
		{"ChannelDtmfReceived", &ChannelDtmfReceived{Channel: ch("a")}, []string{"a"}},
		{"ChannelHangupRequest", &ChannelHangupRequest{Channel: ch("a")}, []string{"a"}},
		{"ChannelEnteredBridge", &ChannelEnteredBridge{Channel: ch("a"), Bridge: Bridge{ID: "b"}}, []string{"a"}},
		{"ChannelLeftBridge", &ChannelLeftBridge{Channel: ch("a"), Bridge: Bridge{ID: "b"}}, []string{"a"}},
		{"ChannelDialplan", &ChannelDialplan{Channel: ch("a")}, []string{"a"}},
		{"ChannelVarset", &ChannelVarset{Variable: "ABANDONED", Channel: pch("a")}, []string{"a"}},
		{"ChannelVarsetGlobal", &ChannelVarset{Variable: "G"}, nil},
		{"DialWithCaller", &Dial{Caller: pch("q2"), Peer: ch("agent")}, []string{"q2", "agent"}},
		{"DialWithoutCaller", &Dial{Peer: ch("q1")}, []string{"q1"}},
		{"DialCallerWithoutID", &Dial{Caller: pch(""), Peer: ch("q1")}, []string{"q1"}},
		{"PlaybackStartedChannel", &PlaybackStarted{Playback: Playback{TargetURI: "channel:a"}}, []string{"a"}},
		{"PlaybackContinuingChannel", &PlaybackContinuing{Playback: Playback{TargetURI: "channel:a"}}, []string{"a"}},
		{"PlaybackFinishedChannel", &PlaybackFinished{Playback: Playback{TargetURI: "channel:a"}}, []string{"a"}},
		{"PlaybackFinishedBridge", &PlaybackFinished{Playback: Playback{TargetURI: "bridge:b"}}, nil},
		{"PlaybackNoTarget", &PlaybackStarted{}, nil},
		{"BridgeCreated", &BridgeCreated{Bridge: Bridge{ID: "b"}}, nil},
		{"BridgeDestroyed", &BridgeDestroyed{Bridge: Bridge{ID: "b"}}, nil},
		{"ApplicationReplaced", &ApplicationReplaced{}, nil},
		{"RawEvent", &RawEvent{EventHeader: EventHeader{Type: "ChannelCallerId"}}, nil},
		{"Connected", &Connected{}, nil},
		{"Disconnected", &Disconnected{Err: errors.New("x")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChannelIDs(tt.ev)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ChannelIDs(%+v) = %q, want %q", tt.ev, got, tt.want)
			}
		})
	}

	// On the real stream: every typed channel event routes somewhere.
	for _, line := range fixtureLines(t) {
		ev, err := DecodeEvent(line)
		if err != nil {
			t.Fatal(err)
		}
		ids := ChannelIDs(ev)
		switch e := ev.(type) {
		case *RawEvent, *BridgeDestroyed:
			if ids != nil {
				t.Errorf("ChannelIDs(%s) = %q, want nil", e.Header().Type, ids)
			}
		case *Dial:
			want := []string{e.Peer.ID}
			if e.Caller != nil {
				want = []string{e.Caller.ID, e.Peer.ID}
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("ChannelIDs(%s) = %q, want %q", line, ids, want)
			}
		default:
			if len(ids) != 1 || ids[0] == "" {
				t.Errorf("ChannelIDs(%s) = %q, want one channel id", line, ids)
			}
		}
	}
}
