package rules

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// fuzzTime maps a fuzz input to a time: 0 is the zero time, anything else
// nanoseconds since 1970 (1678 to 2262).
func fuzzTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// FuzzEvaluate sends arbitrary calls through the test rules. Evaluate must
// never panic, and its decision must hold together: Next is zero or after
// now (and zero when acting or abandoned), an acting decision has a
// template, an offer has a timeout, the route exists, Explain agrees. And
// Next is never late: evaluated again at any earlier moment, the same call
// gets no action either.
func FuzzEvaluate(f *testing.F) {
	r := testRules(f)
	t0 := time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	f.Add("sales", "2", "billing", "es", t0, int64(0), 0, 0, int64(0), false, false, int64(0), t0+10*sec, uint64(0))
	f.Add("sales", "2", "billing", "es", t0, int64(180*sec), 3, 1, t0+30*sec, true, false, int64(0), t0+100*sec, uint64(7))
	f.Add("support", "1", "tech", "en", t0, int64(300*sec), 12, 0, int64(0), false, false, int64(0), t0, uint64(1<<40))
	f.Add("sales", "3", "order_status", "", t0, int64(0), 0, 0, int64(0), false, true, t0+7*sec, t0+8*sec, uint64(0))
	f.Add("spain", "", "", "es", t0, int64(0), 0, 0, int64(0), false, false, int64(0), time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC).UnixNano(), uint64(1<<35))
	f.Add("sales", "none", "general", "", t0, int64(-1), -5, -3, t0+200*sec, true, false, int64(0), t0-sec, uint64(99))
	f.Add("", "", "", "", int64(1), int64(1<<62), 1<<30, 1<<30, int64(-1<<62), true, true, int64(1<<62), int64(-1), ^uint64(0))
	f.Fuzz(func(t *testing.T, queue, option, reason, lang string, entered, ewt int64, position, offers int,
		lastOffer int64, declined, abandoned bool, abandonedAt, nowNs int64, later uint64) {
		c := Call{Queue: queue, Option: option, Reason: reason, Language: lang,
			Entered: fuzzTime(entered), EWT: time.Duration(ewt), Position: position, Offers: offers,
			LastOffer: fuzzTime(lastOffer), Declined: declined, Abandoned: abandoned, AbandonedAt: fuzzTime(abandonedAt)}
		now := time.Unix(0, nowNs)
		d := r.Evaluate(c, now)

		if d2 := r.Evaluate(c, now); d2 != d {
			t.Fatalf("Evaluate(%+v, %s) = %v, then %v", c, now, d, d2)
		}
		if !d.Next.IsZero() && !d.Next.After(now) {
			t.Fatalf("Evaluate(%+v, %s).Next = %s, want zero or after now", c, now, d.Next)
		}
		if !slices.Contains(r.Routes(), d.Route) {
			t.Fatalf("Evaluate(%+v, %s).Route = %q, not one of %q", c, now, d.Route, r.Routes())
		}
		switch d.Action {
		case ActionNone:
			if d.Template != "" || d.OfferTimeout != 0 {
				t.Fatalf("Evaluate(%+v, %s) = %v: none with a template or timeout", c, now, d)
			}
		case ActionOffer, ActionPerform, ActionRecover:
			if d.Template == "" {
				t.Fatalf("Evaluate(%+v, %s) = %v without a template", c, now, d)
			}
			if !d.Next.IsZero() {
				t.Fatalf("Evaluate(%+v, %s) = %v: acting, with a Next", c, now, d)
			}
		default:
			t.Fatalf("Evaluate(%+v, %s).Action = %q", c, now, d.Action)
		}
		if (d.Action == ActionOffer) != (d.OfferTimeout > 0) {
			t.Fatalf("Evaluate(%+v, %s) = %v: OfferTimeout set if and only if offering", c, now, d)
		}
		if abandoned {
			if d.Trigger != TriggerAbandon || (d.Action != ActionNone && d.Action != ActionRecover) || !d.Next.IsZero() {
				t.Fatalf("Evaluate(abandoned %+v, %s) = %v, want recover or none, trigger abandon, no Next", c, now, d)
			}
		} else if d.Action == ActionRecover || (d.Action == ActionNone) != (d.Trigger == "") {
			t.Fatalf("Evaluate(%+v, %s) = %v: action and trigger disagree", c, now, d)
		}
		if e := r.Explain(c, now); e.Decision != d {
			t.Fatalf("Explain(%+v, %s).Decision = %v, want Evaluate's %v", c, now, e.Decision, d)
		}

		// Never late: nothing fires before Next (or ever, without one).
		if d.Action != ActionNone || abandoned {
			return
		}
		window := uint64(400 * 24 * time.Hour)
		if !d.Next.IsZero() {
			window = uint64(d.Next.Sub(now))
		}
		if window == 0 {
			return
		}
		at := now.Add(time.Duration(later % window))
		if d2 := r.Evaluate(c, at); d2.Action != ActionNone {
			t.Fatalf("Evaluate(%+v, %s) = %v, but at %s (before Next) = %v", c, now, d, at, d2)
		}
	})
}

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, every
// problem must be a *ConfigError or a single plain error, and rules it
// accepts must evaluate without panicking.
func FuzzLoad(f *testing.F) {
	// Small seeds: the fuzzer minimizes every input that finds new
	// coverage, and a whole sample file takes it longer than a short run.
	// TestSampleConfig and the Evaluate tests cover the full files.
	f.Add([]byte("time_intervals:\n- name: h\n  time_intervals: [{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '18:00'}], location: Europe/Madrid}]\n" +
		"route:\n  recover: true\n  recover_template: r_v1\n  routes:\n  - {name: p, matchers: ['reason=\"x\"'], action: perform, template: p_v1}\n" +
		"  - name: s\n    matchers: ['queue=~\"a|b\"', 'option!~\"[0-9]\"']\n    continue: true\n    mute_time_intervals: [h]\n    action: offer\n    template: o_v1\n" +
		"    sla: 60s\n    offer_at_entry_ewt_above: 2m\n    reoffer_every: 90s\n    max_offers: 2\n    routes: [{min_position: 3, min_ewt: 1m, min_wait: 30s, active_time_intervals: [h], short_abandon: 5s}]\n"))
	f.Add([]byte("time_intervals: [{name: d, time_intervals: [{days_of_month: ['1:-1'], months: ['may'], years: ['2026']}]}]\nroute: {short_abandon: 1s, routes: [{action: none}]}\n"))
	f.Add([]byte("route: {}\n"))
	f.Add([]byte("route:\n  routes:\n    - {matchers: ['queue=~\"(\"'], action: offer, sla: -1s, max_offers: 0}\n"))
	f.Add([]byte("time_intervals:\n  - name: x\n    time_intervals: [{weekdays: ['friday:monday'], days_of_month: ['-1:1'], location: Nowhere}]\nroute: {mute_time_intervals: [x]}\n"))
	f.Add([]byte("route: &a\n  routes: [*a]\n"))
	f.Add([]byte("---\n---\n"))
	now := time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				os.WriteFile("/tmp/hang.yaml", data, 0o644)
				panic(fmt.Sprintf("HANG %q", data))
			}
		}()
		r, err := Load(bytes.NewReader(data))
		if err != nil {
			if r != nil {
				t.Fatalf("Load(%q) = %v and an error", data, r)
			}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					if _, ok := e.(*ConfigError); !ok {
						t.Fatalf("Load(%q) joined %v (%T), want *ConfigError", data, e, e)
					}
				}
			}
			return
		}
		if r == nil {
			t.Fatalf("Load(%q) = nil, nil", data)
		}
		r.Templates()
		r.ShortAbandon("sales")
		for _, c := range []Call{
			{Queue: "sales", Option: "2", Reason: "billing", Entered: now.Add(-time.Minute)},
			{Queue: "support", Reason: "tech", EWT: time.Hour, Position: 20, Offers: 1, Declined: true, LastOffer: now.Add(-time.Hour)},
			{Queue: "sales", Abandoned: true, AbandonedAt: now, Entered: now.Add(-time.Minute)},
		} {
			d := r.Evaluate(c, now)
			if d.Action != ActionNone && d.Template == "" {
				t.Fatalf("Load(%q).Evaluate(%+v) = %v without a template", data, c, d)
			}
			if !d.Next.IsZero() && !d.Next.After(now) {
				t.Fatalf("Load(%q).Evaluate(%+v).Next = %s, want zero or after now", data, c, d.Next)
			}
			_ = r.Explain(c, now).String()
		}
	})
}

func TestFuzzTime(t *testing.T) {
	if got := fuzzTime(0); !got.IsZero() {
		t.Errorf("fuzzTime(0) = %s, want the zero time", got)
	}
	if got, want := fuzzTime(1), time.Unix(0, 1); !got.Equal(want) {
		t.Errorf("fuzzTime(1) = %s, want %s", got, want)
	}
}
