package queuelog

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	e, err := Parse("1795234876|1795234870.2-q2|sales|Agent One|CONNECT|6|1795234870.5|6")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Time.Equal(time.Unix(1795234876, 0)) || e.CallID != "1795234870.2-q2" || e.Queue != "sales" || e.Agent != "Agent One" ||
		e.Event != "CONNECT" || !slices.Equal(e.Data, []string{"6", "1795234870.5", "6"}) {
		t.Errorf("Parse = %+v", e)
	}
	if e, _ := Parse("1795234870|id|hold|NONE|ENTERQUEUE||+5491155553001|1"); !slices.Equal(e.Data, []string{"", "+5491155553001", "1"}) {
		t.Errorf("ENTERQUEUE data = %q, want the empty URL kept", e.Data)
	}
	if e, _ := Parse("1795234870.25|NONE|NONE|NONE|QUEUESTART"); e.Time.Nanosecond() != 250000000 || e.Data != nil {
		t.Errorf("fractional time = %v, data %q", e.Time, e.Data)
	}
	for _, bad := range []string{
		"1795234870|id|sales|NONE",          // cut short
		"x|id|sales|NONE|ABANDON|1|1|6",     // not a time
		"-5|id|sales|NONE|ABANDON",          // negative
		"1795234870.|id|sales|NONE|ABANDON", // empty fraction
		"1795234870|id|sales|NONE|",         // no event
		"",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}

// A Reader reports each bad line with its file and number, and goes on.
func TestReaderGoesOnAfterBadLines(t *testing.T) {
	in := "1795234870|a-q2|sales|NONE|ENTERQUEUE||+1|1\n" +
		"\n" +
		"garbage\r\n" +
		"1795234876|a-q2|sales|NONE|EXITWITHKEY|D|1|1|6\n" +
		"1795234880|b-q2|sal" // truncated by a crash, no newline
	r := NewReader(strings.NewReader(in), "queue_log")
	var events []string
	var bad []*LineError
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			bad = append(bad, le)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e.Event)
	}
	if !slices.Equal(events, []string{"ENTERQUEUE", "EXITWITHKEY"}) {
		t.Errorf("events = %q", events)
	}
	if len(bad) != 2 || bad[0].Line != 3 || bad[1].Line != 5 || bad[0].Text != "garbage" {
		t.Fatalf("bad lines = %+v, want lines 3 and 5", bad)
	}
	if got := bad[0].Error(); !strings.HasPrefix(got, "queue_log:3: ") {
		t.Errorf("error = %q, want it to name the file and line", got)
	}
}

func TestReaderLongLine(t *testing.T) {
	r := NewReader(strings.NewReader(strings.Repeat("x", maxLine+1)+"\n"), "q")
	if _, err := r.Next(); err == nil || err == io.EOF || errors.As(err, new(*LineError)) {
		t.Errorf("Next on an over-long line = %v, want the stream's error", err)
	}
}

// FuzzParse: Parse never panics, and what it accepts renders back to a
// line that parses to the same event.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1795234876|1795234870.2-q2|sales|Agent One|CONNECT|6|1795234870.5|6",
		"1795234870|id|hold|NONE|ENTERQUEUE||+5491155553001|1",
		"1795234870.123|NONE|NONE|NONE|QUEUESTART",
		"1795234870|id|sales|NONE",
		"|||||",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		again, err := Parse(e.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q does not parse: %v", line, e, e.String(), err)
		}
		if !again.Time.Equal(e.Time) || again.CallID != e.CallID || again.Queue != e.Queue || again.Agent != e.Agent ||
			again.Event != e.Event || !slices.Equal(again.Data, e.Data) {
			t.Fatalf("round trip of %q: %+v, then %+v", line, e, again)
		}
	})
}
