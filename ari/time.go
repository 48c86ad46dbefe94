package ari

import (
	"bytes"
	"fmt"
	"time"
)

// TimeLayout is the layout of every timestamp Asterisk writes in ARI: ISO
// 8601 with milliseconds and a numeric zone without a colon, which
// time.RFC3339 does not accept.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Time is a time.Time that reads and writes Asterisk's timestamp format. An
// empty string or null decodes to the zero time, as Asterisk leaves some
// timestamps empty.
type Time struct {
	time.Time
}

// UnmarshalJSON parses Asterisk's layout, and RFC 3339 as a fallback for
// values that other tools (or a future Asterisk) write.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte(`""`)) {
		t.Time = time.Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("ari: timestamp %s is not a JSON string", b)
	}
	s := string(b[1 : len(b)-1])
	for _, layout := range [...]string{TimeLayout, "2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("ari: timestamp %q is not in Asterisk's layout %s", s, TimeLayout)
}

// MarshalJSON writes Asterisk's layout, so a decoded event encodes back to
// what Asterisk sent.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return []byte(`"` + t.Format(TimeLayout) + `"`), nil
}
