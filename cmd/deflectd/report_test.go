package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// deflectd report reads a queue_log (testdata/queue_log.sample, the
// fixture of deflect/report), reports the KPIs, counts the events that fit
// no visit, and refuses bad flags and missing files.
func TestReportCommand(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"report", "-format", "json", "-short-abandon", "15s", "testdata/queue_log.sample"}, &out, &errb); code != 0 {
		t.Fatalf("report = %d: %s", code, errb.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	byQueue := map[string]map[string]any{}
	for _, r := range rows {
		byQueue[r["queue"].(string)] = r
	}
	if s := byQueue["sales"]; s["offered"] != 4.0 || s["abandoned"] != 1.0 || s["short_abandoned"] != 1.0 || s["asa_seconds"] != 9.5 {
		t.Errorf("sales = %v", s)
	}
	if h := byQueue["hold"]; h["deflected"] != 1.0 || h["abandoned"] != 0.0 {
		t.Errorf("hold = %v, want the deflection apart from abandons", h)
	}
	if !strings.Contains(errb.String(), "2 events that fit no visit") {
		t.Errorf("stderr = %q, want the problems counted", errb.String())
	}

	out.Reset()
	errb.Reset()
	for _, args := range [][]string{{"report", "-format", "xml", "x"}, {"report", "-from", "yesterday", "x"}, {"report", "no-such-queue_log"}, {"report"}} {
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q = %d, want 2", args, code)
		}
	}
}
