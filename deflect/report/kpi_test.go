package report

import (
	"math"
	"slices"
	"testing"
	"time"
)

// The fixture's sales queue: answered after 10 s (talk 120 s, one
// RINGNOANSWER), abandoned after 45 s, answered after 9 s on re-entry
// (talk 30 s, transferred), abandoned after 10 s, one still waiting.
func TestSummarizeExact(t *testing.T) {
	calls := assemble(t, fixture).Calls()
	s := time.Second
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	k := Summarize(calls, Options{})["sales"]
	if k.Offered != 4 || k.Answered != 2 || k.Abandoned != 2 || k.ShortAbandoned != 0 || k.Open != 1 || k.Transferred != 1 || k.RingNoAnswers != 1 {
		t.Errorf("sales counts = %+v", k)
	}
	if k.ASA != 9500*time.Millisecond || k.AHT != 75*s {
		t.Errorf("ASA %v AHT %v, want 9.5s 75s", k.ASA, k.AHT)
	}
	// T = 20 s: both answered within; of the abandons, the 10 s one.
	if !near(k.AbandonRate, 0.5) || !near(k.SLAnswered, 1) || !near(k.SLOffered, 0.5) || !near(k.SL2, 0.75) {
		t.Errorf("rates: abandon %v SL %v SL/offered %v SL2 %v, want 0.5 1 0.5 0.75", k.AbandonRate, k.SLAnswered, k.SLOffered, k.SL2)
	}

	// With short abandons under 15 s, the 10 s abandon leaves the rate.
	k = Summarize(calls, Options{ShortAbandon: 15 * s})["sales"]
	if k.Abandoned != 1 || k.ShortAbandoned != 1 || !near(k.AbandonRate, 1.0/3) || !near(k.SLOffered, 2.0/3) || !near(k.SL2, 0.75) {
		t.Errorf("with short abandons: %+v", k)
	}

	// A deflection is not an abandon, and stays offered.
	h := Summarize(calls, Options{})["hold"]
	if h.Offered != 2 || h.Deflected != 1 || h.ExitKey != 1 || h.Abandoned != 0 || h.AbandonRate != 0 {
		t.Errorf("hold = %+v, want 2 offered, 1 deflected, 1 other key, no abandon", h)
	}
	if sup := Summarize(calls, Options{})["support"]; sup.Offered != 1 || sup.Timeout != 1 {
		t.Errorf("support = %+v, want the timeout", sup)
	}
}

// By hour of week, Monday first: the fixture's calls all fall on Saturday
// 2026-11-21 between 03:00 and 04:00 UTC; one more at 04:00 makes a bucket.
func TestSummarizeByHourOfWeek(t *testing.T) {
	late := "1795233700|x-q2|sales|NONE|ENTERQUEUE||+1|1\n1795233730|x-q2|sales|NONE|ABANDON|1|1|30\n"
	m := SummarizeBy(assemble(t, fixture+late).Calls(), Options{}, HourOfWeek(time.UTC))
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"hold\t6 Sat 03", "sales\t6 Sat 03", "sales\t6 Sat 04", "support\t6 Sat 03"}
	if !slices.Equal(keys, want) {
		t.Fatalf("buckets = %q, want %q", keys, want)
	}
	if k := m["sales\t6 Sat 03"]; k.Offered != 4 || k.Answered != 2 {
		t.Errorf("sales at Sat 03 = %+v", k)
	}
	if k := m["sales\t6 Sat 04"]; k.Offered != 1 || k.Abandoned != 1 {
		t.Errorf("sales at Sat 03 = %+v", k)
	}
	if got := Day(time.UTC)(Call{Entered: time.Unix(1795230000, 0)}); got != "2026-11-21" {
		t.Errorf("Day = %q", got)
	}
	if got := Hour(time.UTC)(Call{Entered: time.Unix(1795230000, 0)}); got != "2026-11-21 03:00" {
		t.Errorf("Hour = %q", got)
	}
}

func TestQuantile(t *testing.T) {
	s := time.Second
	ws := []time.Duration{1 * s, 2 * s, 3 * s, 4 * s, 10 * s}
	for q, want := range map[float64]time.Duration{0.5: 3 * s, 0.9: 10 * s, 0.2: 1 * s, 1: 10 * s, 0: 1 * s} {
		if got := Quantile(ws, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("Quantile of nothing != 0")
	}
}
