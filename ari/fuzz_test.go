package ari

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// FuzzDecodeEvent checks DecodeEvent's contract on any input: no panic; an
// error comes without an event; an event has a type, and a typed struct is
// the one its type names; a *RawEvent keeps the input as it came.
func FuzzDecodeEvent(f *testing.F) {
	for _, line := range fixtureLines(f) {
		f.Add(line)
	}
	for _, s := range []string{
		``,
		`null`,
		`{}`,
		`[]`,
		`"x"`,
		`{"type":""}`,
		`{"type":"Dial"`,
		`{"type":"Dial"}`,
		`{"type":"Dial"}x`,
		`{"type":"Dial","type":""}`,
		`{"type":"Dial","type":"StasisStart"}`,
		`{"type":"Dial\"x"}`,
		`{"type":"Dial\u0000"}`,
		`{"type":"\u0044ial","peer":{"id":"p"}}`,
		"{\"type\":\"Fu\xfftureEvent\"}",
		`{"type":"FutureEvent","timestamp":"2026-11-21T04:21:10.342+0000"}`,
		`{"type":"StasisStart","timestamp":"bad"}`,
		`{"type":"StasisStart","args":"queue=sales"}`,
		`{"variable":"X","value":"1","type":"ChannelVarset","timestamp":"bad"}`,
		`{"variable":"X","type":"ChannelVarset","channel":null}`,
		`{"cause":"16","type":"ChannelHangupRequest"}`,
		`{"type":"PlaybackFinished","playback":{"target_uri":"channel:"}}`,
		"{\n  \"type\": \"ChannelDtmfReceived\",\n  \"digit\": \"5\"\n}",
		`{"type":"ApplicationReplaced","application":"deflect"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		ev, err := DecodeEvent(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("DecodeEvent(%q) modified its input to %q", in, data)
		}
		if err != nil {
			if ev != nil {
				t.Fatalf("DecodeEvent(%q) = %T, %v, want nil with the error", data, ev, err)
			}
			return
		}
		if ev == nil {
			t.Fatalf("DecodeEvent(%q) = nil, nil, want an event or an error", data)
		}
		typ := ev.Header().Type
		if typ == "" {
			t.Fatalf("DecodeEvent(%q) = %T with Header().Type \"\", want a type", data, ev)
		}
		if raw, ok := ev.(*RawEvent); ok {
			if !bytes.Equal(raw.Raw, data) {
				t.Fatalf("DecodeEvent(%q).Raw = %q, want the input", data, raw.Raw)
			}
			return
		}
		if want := newEvent(typ); want == nil || fmt.Sprintf("%T", want) != fmt.Sprintf("%T", ev) {
			t.Fatalf("DecodeEvent(%q) = %T with Header().Type %q, want them to agree", data, ev, typ)
		}
		_ = ChannelIDs(ev)
	})
}

// FuzzTime checks that any timestamp Time accepts encodes back to Asterisk's
// layout, which decodes to the same instant to the millisecond.
func FuzzTime(f *testing.F) {
	for _, s := range []string{
		`"2026-11-21T04:21:10.342+0000"`,
		`"2026-11-21T01:21:10.342-0300"`,
		`"2026-11-21T04:21:10+0000"`,
		`"2026-11-21T04:21:10.123456789+0000"`,
		`"2026-11-21T04:21:10.342Z"`,
		`"2026-11-21T04:21:10-03:00"`,
		`"0000-01-01T00:00:00.000+0000"`,
		`"9999-12-31T23:59:59.999-2359"`,
		`""`,
		`null`,
		`"`,
		`"garbage"`,
		`1763698870`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v Time
		if err := v.UnmarshalJSON(data); err != nil {
			return
		}
		enc, err := v.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON(%v) from %q error: %v", v.Time, data, err)
		}
		var back Time
		if err := back.UnmarshalJSON(enc); err != nil {
			t.Fatalf("UnmarshalJSON(%s) (MarshalJSON of %q) error: %v", enc, data, err)
		}
		if v.IsZero() != back.IsZero() {
			t.Fatalf("UnmarshalJSON(%s) = %v, want zero %v like %q", enc, back.Time, v.IsZero(), data)
		}
		if d := v.Sub(back.Time); d < 0 || d >= time.Millisecond {
			t.Fatalf("UnmarshalJSON(MarshalJSON(%q)) = %v, want %v to the millisecond", data, back.Time, v.Time)
		}
		again, err := back.MarshalJSON()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("MarshalJSON(UnmarshalJSON(%s)) = %s, %v, want %s", enc, again, err, enc)
		}
	})
}
