package ari

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimeUnmarshalJSON(t *testing.T) {
	minus3 := time.FixedZone("", -3*60*60)
	tests := []struct {
		in   string
		want time.Time // zero: the zero time
	}{
		{`"2026-11-21T04:21:10.342+0000"`, time.Date(2026, 11, 21, 4, 21, 10, 342e6, time.UTC)},
		{`"2026-11-21T01:21:10.342-0300"`, time.Date(2026, 11, 21, 1, 21, 10, 342e6, minus3)},
		{`"2026-11-21T05:51:10.342+0130"`, time.Date(2026, 11, 21, 5, 51, 10, 342e6, time.FixedZone("", 90*60))},
		{`"2026-11-21T04:21:10+0000"`, time.Date(2026, 11, 21, 4, 21, 10, 0, time.UTC)},
		{`"2026-11-21T04:21:10.342123+0000"`, time.Date(2026, 11, 21, 4, 21, 10, 342123e3, time.UTC)},
		{`"2026-11-21T04:21:10.342Z"`, time.Date(2026, 11, 21, 4, 21, 10, 342e6, time.UTC)},
		{`"2026-11-21T04:21:10Z"`, time.Date(2026, 11, 21, 4, 21, 10, 0, time.UTC)},
		{`"2026-11-21T01:21:10.342-03:00"`, time.Date(2026, 11, 21, 1, 21, 10, 342e6, minus3)},
		{`""`, time.Time{}},
		{`null`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Time{time.Now()} // must be overwritten, zero included
			if err := got.UnmarshalJSON([]byte(tt.in)); err != nil {
				t.Fatalf("UnmarshalJSON(%s) error: %v", tt.in, err)
			}
			if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
				t.Errorf("UnmarshalJSON(%s) = %v, want %v", tt.in, got.Time, tt.want)
			}
			if !tt.want.IsZero() {
				_, gotOff := got.Zone()
				_, wantOff := tt.want.Zone()
				if gotOff != wantOff {
					t.Errorf("UnmarshalJSON(%s) zone offset = %d, want %d", tt.in, gotOff, wantOff)
				}
			}
		})
	}
}

func TestTimeUnmarshalJSONErrors(t *testing.T) {
	tests := []string{
		``,
		`"`,
		`0`,
		`1763698870`,
		`true`,
		`{}`,
		`"yesterday"`,
		`"null"`,
		`"2026-11-21"`,
		`"2026-11-21 04:21:10.342+0000"`,
		`"2026-11-21T04:21:10.342"`,
		`"2026-13-21T04:21:10.342+0000"`,
		`"2026-11-21T25:21:10.342+0000"`,
		`"2026-11-21T04:21:10.342+00"`,
		`"2026-11-21T04:21:10.342+0000`,
		`2026-11-21T04:21:10.342+0000"`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			var got Time
			if err := got.UnmarshalJSON([]byte(in)); err == nil {
				t.Errorf("UnmarshalJSON(%s) = %v, nil, want an error", in, got.Time)
			}
		})
	}
}

func TestTimeMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   Time
		want string
	}{
		{"utc", Time{time.Date(2026, 11, 21, 4, 21, 10, 342e6, time.UTC)}, `"2026-11-21T04:21:10.342+0000"`},
		{"minus3", Time{time.Date(2026, 11, 21, 1, 21, 10, 342e6, time.FixedZone("", -3*60*60))}, `"2026-11-21T01:21:10.342-0300"`},
		{"truncatedToMs", Time{time.Date(2026, 11, 21, 4, 21, 10, 342999999, time.UTC)}, `"2026-11-21T04:21:10.342+0000"`},
		{"zero", Time{}, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.MarshalJSON()
			if err != nil || string(got) != tt.want {
				t.Errorf("MarshalJSON(%v) = %s, %v, want %s, nil", tt.in.Time, got, err, tt.want)
			}
		})
	}
}

func TestTimeRoundTrip(t *testing.T) {
	for _, in := range []string{
		`"2026-11-21T04:21:10.342+0000"`,
		`"2026-11-21T01:21:10.342-0300"`,
		`"2026-11-21T09:51:10.000+0530"`,
		`""`,
	} {
		t.Run(in, func(t *testing.T) {
			var v Time
			if err := json.Unmarshal([]byte(in), &v); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", in, err)
			}
			got, err := json.Marshal(v)
			if err != nil || string(got) != in {
				t.Errorf("json.Marshal(json.Unmarshal(%s)) = %s, %v, want %s, nil", in, got, err, in)
			}
		})
	}

	// Inside a struct, as in every event header; null encodes back as "".
	var h EventHeader
	in := `{"type":"StasisEnd","application":"deflect","timestamp":null}`
	if err := json.Unmarshal([]byte(in), &h); err != nil {
		t.Fatalf("json.Unmarshal(%s) error: %v", in, err)
	}
	got, err := json.Marshal(&h)
	if want := `{"type":"StasisEnd","application":"deflect","timestamp":""}`; err != nil || string(got) != want {
		t.Errorf("json.Marshal(%+v) = %s, %v, want %s, nil", h, got, err, want)
	}
}
