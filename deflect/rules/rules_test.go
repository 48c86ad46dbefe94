package rules

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the host's zoneinfo

	"github.com/google/go-cmp/cmp"
)

func testRules(t testing.TB) *Rules {
	t.Helper()
	r, err := LoadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatalf("LoadFile(testdata/rules.yaml) = %v", err)
	}
	return r
}

func mustLoad(t testing.TB, yaml string) *Rules {
	t.Helper()
	r, err := Load(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("Load(%q) = %v", yaml, err)
	}
	return r
}

func location(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestEvaluate(t *testing.T) {
	r := testRules(t)
	ba := location(t, "America/Argentina/Buenos_Aires")
	// Monday 2 June 2025, 11:00 in Buenos Aires: inside business hours,
	// which end at 18:00, seven hours later.
	t0 := time.Date(2025, 6, 2, 11, 0, 0, 0, ba)
	closing := time.Date(2025, 6, 2, 18, 0, 0, 0, ba)
	s := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

	billing := Call{Queue: "sales", Option: "2", Reason: "billing", Language: "es", Entered: t0}
	sales := Call{Queue: "sales", Option: "1", Reason: "agent", Language: "es", Entered: t0}
	noOption := Call{Queue: "sales", Option: "none", Reason: "general", Entered: t0}
	support := Call{Queue: "support", Option: "4", Reason: "returns", Entered: t0}
	tech := Call{Queue: "support", Option: "1", Reason: "tech", Entered: t0}
	order := Call{Queue: "sales", Option: "3", Reason: "order_status", Entered: t0}
	vip := Call{Queue: "sales", Option: "9", Reason: "billing", Entered: t0}
	with := func(c Call, f func(*Call)) Call { f(&c); return c }
	offered := func(c Call, n int, last time.Time, declined bool) Call {
		c.Offers, c.LastOffer, c.Declined = n, last, declined
		return c
	}
	abandoned := func(c Call, at time.Time) Call {
		c.Abandoned, c.AbandonedAt = true, at
		return c
	}
	offer := func(route, trigger string) Decision {
		return Decision{Action: ActionOffer, Route: route, Trigger: trigger, Template: "queue_deflect_v1", OfferTimeout: 8 * time.Second}
	}
	none := func(route string, next time.Time) Decision {
		return Decision{Action: ActionNone, Route: route, Next: next}
	}

	tests := []struct {
		name string
		call Call
		now  time.Time
		want Decision
	}{
		// Offer at entry on a high EWT.
		{"entry: EWT above threshold", with(billing, func(c *Call) { c.EWT = 3 * time.Minute }), t0,
			offer("root/sales/billing", TriggerEntryEWT)},
		{"entry: EWT at threshold is not above", with(billing, func(c *Call) { c.EWT = 2 * time.Minute }), t0,
			none("root/sales/billing", s(30))},
		{"entry: EWT unknown", billing, t0, none("root/sales/billing", s(30))},
		{"entry: EWT rose above threshold before any offer", with(billing, func(c *Call) { c.EWT = 3 * time.Minute }), s(20),
			offer("root/sales/billing", TriggerEntryEWT)},
		{"entry: EWT beats the SLA when both hold", with(billing, func(c *Call) { c.EWT = 3 * time.Minute }), s(45),
			offer("root/sales/billing", TriggerEntryEWT)},

		// SLA crossing; billing's sla (30s) overrides sales' (60s).
		{"sla: just before", billing, s(29), none("root/sales/billing", s(30))},
		{"sla: exactly at", billing, s(30), offer("root/sales/billing", TriggerSLA)},
		{"sla: long after", billing, s(600), offer("root/sales/billing", TriggerSLA)},
		{"sla: parent's sla", sales, s(59), none("root/sales", s(60))},
		{"sla: parent's sla crossed", sales, s(60), offer("root/sales", TriggerSLA)},
		{"sla: entered in the future waits", sales, s(-10), none("root/sales", s(60))},

		// Re-offers: billing inherits reoffer_every 90s and max_offers 2.
		{"reoffer: offer awaiting an answer", offered(billing, 1, s(30), false), s(35), none("root/sales/billing", closing)},
		{"reoffer: declined, too soon", offered(billing, 1, s(30), true), s(60), none("root/sales/billing", s(120))},
		{"reoffer: declined, interval reached", offered(billing, 1, s(30), true), s(120), offer("root/sales/billing", TriggerReoffer)},
		{"reoffer: no LastOffer counts from entry", offered(billing, 1, time.Time{}, true), s(89), none("root/sales/billing", s(90))},
		{"reoffer: max_offers reached", offered(billing, 2, s(120), true), s(600), none("root/sales/billing", closing)},
		{"reoffer: max_offers 3 on deep", offered(with(support, func(c *Call) { c.Position = 12 }), 2, s(110), true), s(200),
			offer("root/sales/deep", TriggerReoffer)},
		{"reoffer: deep after 3 offers", offered(with(support, func(c *Call) { c.Position = 12 }), 3, s(200), true), s(400),
			none("root/sales/deep", closing)},
		{"reoffer: an entry offer declined is re-offered, not offered again at the SLA",
			offered(with(billing, func(c *Call) { c.EWT = 3 * time.Minute }), 1, t0, true), s(30), none("root/sales/billing", s(90))},

		// Conditions and first match among children.
		{"first match: deep", with(support, func(c *Call) { c.Position = 12 }), s(20), offer("root/sales/deep", TriggerSLA)},
		{"first match: billing before deep", with(support, func(c *Call) { c.Position = 12; c.Reason = "billing" }), s(20),
			none("root/sales/billing", s(30))},
		{"min_position not met", with(support, func(c *Call) { c.Position = 9 }), s(20), none("root/sales", s(60))},
		{"min_position at", with(support, func(c *Call) { c.Position = 10 }), s(20), offer("root/sales/deep", TriggerSLA)},
		{"min_position with position unknown", support, s(20), none("root/sales", s(60))},

		// min_wait: the unnamed route matches from 2m; Next counts it.
		{"min_wait: sla comes first", noOption, s(30), none("root/sales", s(60))},
		{"min_wait: parent offers at the sla", noOption, s(60), offer("root/sales", TriggerSLA)},
		{"min_wait: next is when the child starts to match", offered(noOption, 1, s(60), true), s(100), none("root/sales", s(120))},
		{"min_wait: child matched, it never re-offers", offered(noOption, 1, s(60), true), s(150), none("root/sales/3", closing)},

		// Perform.
		{"perform at entry", order, t0, Decision{Action: ActionPerform, Route: "root/self-service", Trigger: TriggerPerform, Template: "order_status_v1"}},
		{"perform whatever the wait", order, s(3600), Decision{Action: ActionPerform, Route: "root/self-service", Trigger: TriggerPerform, Template: "order_status_v1"}},
		{"perform: never after an offer", offered(order, 1, t0, true), s(10), none("root/self-service", time.Time{})},

		// A route without continue stops the search: no sales rules for VIPs.
		{"vip: none", with(vip, func(c *Call) { c.EWT = time.Hour }), s(600), none("root/vip", time.Time{})},

		// continue.
		{"continue: the first route acts", with(tech, func(c *Call) { c.EWT = 6 * time.Minute }), t0,
			Decision{Action: ActionOffer, Route: "root/tech-long", Trigger: TriggerEntryEWT, Template: "queue_deflect_v1", OfferTimeout: 10 * time.Second}},
		{"continue: the first route does not act, the next one does", with(tech, func(c *Call) { c.EWT = 5 * time.Minute }), t0,
			offer("root/sales", TriggerEntryEWT)},
		{"continue: the first route does not match", with(tech, func(c *Call) { c.EWT = 4 * time.Minute }), t0,
			offer("root/sales", TriggerEntryEWT)},
		{"continue: neither acts, the first decides, next is the earliest", with(tech, func(c *Call) { c.EWT = 5 * time.Minute; c.Offers = 1 }), s(10),
			none("root/tech-long", closing)},

		// Recovery after an abandon: billing's short_abandon is 5s, the
		// others' 10s.
		{"abandon: billing, not short", abandoned(billing, s(7)), s(8),
			Decision{Action: ActionRecover, Route: "root/sales/billing", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: billing, short", abandoned(billing, s(3)), s(8), Decision{Action: ActionNone, Route: "root/sales/billing", Trigger: TriggerAbandon}},
		{"abandon: exactly the threshold is not short", abandoned(billing, s(5)), s(8),
			Decision{Action: ActionRecover, Route: "root/sales/billing", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: sales, short at 7s", abandoned(sales, s(7)), s(8), Decision{Action: ActionNone, Route: "root/sales", Trigger: TriggerAbandon}},
		{"abandon: sales after 30s", abandoned(sales, s(30)), s(31),
			Decision{Action: ActionRecover, Route: "root/sales", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: AbandonedAt zero means now", abandoned(sales, time.Time{}), s(30),
			Decision{Action: ActionRecover, Route: "root/sales", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: after offers declined", abandoned(offered(sales, 2, s(150), true), s(200)), s(200),
			Decision{Action: ActionRecover, Route: "root/sales", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: vip never recovered", abandoned(vip, s(60)), s(61), Decision{Action: ActionNone, Route: "root/vip", Trigger: TriggerAbandon}},
		{"abandon: judged when it happened, not now", abandoned(sales, closing.Add(-time.Minute)), closing.Add(time.Hour),
			Decision{Action: ActionRecover, Route: "root/sales", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
		{"abandon: recover false after hours", abandoned(with(sales, func(c *Call) { c.Entered = closing }), closing.Add(time.Minute)), closing.Add(2 * time.Minute),
			Decision{Action: ActionNone, Route: "root/sales/after-hours", Trigger: TriggerAbandon}},
		{"abandon: tech-long has no recover of its own, inherits root's", abandoned(with(tech, func(c *Call) { c.EWT = 5 * time.Minute }), s(60)), s(60),
			Decision{Action: ActionRecover, Route: "root/tech-long", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},

		// Time intervals: business hours (Buenos Aires, no DST).
		{"after hours: perform, template inherited", with(sales, func(c *Call) { c.Entered = closing }), closing,
			Decision{Action: ActionPerform, Route: "root/sales/after-hours", Trigger: TriggerPerform, Template: "queue_deflect_v1"}},
		{"after hours: a minute before closing", with(sales, func(c *Call) { c.Entered = closing.Add(-time.Minute) }), closing.Add(-time.Minute),
			none("root/sales", closing)},
		{"after hours: Saturday", with(sales, func(c *Call) { c.Entered = t0.AddDate(0, 0, 5) }), t0.AddDate(0, 0, 5),
			Decision{Action: ActionPerform, Route: "root/sales/after-hours", Trigger: TriggerPerform, Template: "queue_deflect_v1"}},
		{"holiday: sales muted, next at midnight", with(sales, func(c *Call) { c.Entered = time.Date(2025, 12, 25, 11, 0, 0, 0, ba) }),
			time.Date(2025, 12, 25, 11, 0, 0, 0, ba), none("root", time.Date(2025, 12, 26, 0, 0, 0, 0, ba))},

		// Unmatched calls: the root decides.
		{"no route: root, nothing scheduled", Call{Queue: "other", Entered: t0}, s(600), none("root", time.Time{})},
		{"no route: abandoned, recovered by the root", abandoned(Call{Queue: "other", Entered: t0}, s(60)), s(60),
			Decision{Action: ActionRecover, Route: "root", Trigger: TriggerAbandon, Template: "queue_recover_v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Evaluate(tt.call, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%+v, %s) = %v, want %v\ndiff (-want +got):\n%s", tt.call, tt.now, got, tt.want, diff)
			}
		})
	}
}

// The spain route is active 09:00-14:00 Madrid time on weekdays; Madrid
// moved its clocks forward on Sunday 30 March 2025 at 01:00 UTC.
func TestEvaluateTimeIntervalDST(t *testing.T) {
	r := testRules(t)
	utc := func(month time.Month, day, h, m int) time.Time {
		return time.Date(2025, month, day, h, m, 0, 0, time.UTC)
	}
	spain := func(now time.Time) Call { return Call{Queue: "spain", Language: "es_ES", Entered: now} }
	tests := []struct {
		name string
		call Call
		now  time.Time
		want Decision
	}{
		{"Friday 07:30 UTC is 08:30 CET: closed until 08:00 UTC", spain(utc(3, 28, 7, 30)), utc(3, 28, 7, 30),
			Decision{Action: ActionNone, Route: "root", Next: utc(3, 28, 8, 0)}},
		{"Friday 08:00 UTC is 09:00 CET: open", spain(utc(3, 28, 8, 0)), utc(3, 28, 8, 0),
			Decision{Action: ActionNone, Route: "root/spain", Next: utc(3, 28, 8, 0).Add(45 * time.Second)}},
		{"Monday 07:30 UTC is 09:30 CEST: open", spain(utc(3, 31, 7, 30)), utc(3, 31, 7, 30),
			Decision{Action: ActionNone, Route: "root/spain", Next: utc(3, 31, 7, 30).Add(45 * time.Second)}},
		{"Monday 06:59 UTC is 08:59 CEST: closed for a minute", spain(utc(3, 31, 6, 59)), utc(3, 31, 6, 59),
			Decision{Action: ActionNone, Route: "root", Next: utc(3, 31, 7, 0)}},
		{"Monday 12:00 UTC is 14:00 CEST: closed", spain(utc(3, 31, 12, 0)), utc(3, 31, 12, 0),
			Decision{Action: ActionNone, Route: "root", Next: utc(3, 31, 22, 0)}},
		{"Monday sla crossed while open", spain(utc(3, 31, 7, 30)), utc(3, 31, 7, 31),
			Decision{Action: ActionOffer, Route: "root/spain", Trigger: TriggerSLA, Template: "queue_deflect_v1", OfferTimeout: 8 * time.Second}},
		{"Sunday night before the change: next is the change itself", spain(utc(3, 30, 0, 30)), utc(3, 30, 0, 30),
			Decision{Action: ActionNone, Route: "root", Next: utc(3, 30, 1, 0)}},
		{"another language never matches: nothing scheduled", Call{Queue: "spain", Language: "en", Entered: utc(3, 31, 7, 30)}, utc(3, 31, 7, 30),
			Decision{Action: ActionNone, Route: "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Evaluate(tt.call, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%+v, %s) = %v, want %v\ndiff (-want +got):\n%s", tt.call, tt.now, got, tt.want, diff)
			}
		})
	}
}

// Children inherit every setting they do not set, from the nearest
// ancestor that does; matchers, conditions and time intervals are not
// inherited but gate the whole subtree.
func TestEvaluateInheritance(t *testing.T) {
	r := mustLoad(t, `
route:
  offer_timeout: 12s
  recover: true
  recover_template: rec_v1
  short_abandon: 20s
  routes:
    - name: a
      matchers: ['queue="a"']
      action: offer
      template: a_v1
      sla: 60s
      reoffer_every: 30s
      max_offers: 3
      routes:
        - name: b
          matchers: ['reason="x"']
          sla: 10s
          routes:
            - name: c
              matchers: ['option="1"']
              template: c_v1
              recover: false
            - name: d
              matchers: ['option="2"']
              action: none
            - name: e
              matchers: ['option="3"']
              action: perform
`)
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	call := func(option string) Call { return Call{Queue: "a", Reason: "x", Option: option, Entered: t0} }
	tests := []struct {
		name string
		call Call
		now  time.Time
		want Decision
	}{
		{"b: sla own, template and offer_timeout inherited", call("9"), t0.Add(10 * time.Second),
			Decision{Action: ActionOffer, Route: "root/a/b", Trigger: TriggerSLA, Template: "a_v1", OfferTimeout: 12 * time.Second}},
		{"c: template own, sla from b", call("1"), t0.Add(10 * time.Second),
			Decision{Action: ActionOffer, Route: "root/a/b/c", Trigger: TriggerSLA, Template: "c_v1", OfferTimeout: 12 * time.Second}},
		{"c: reoffer_every and max_offers from a", Call{Queue: "a", Reason: "x", Option: "1", Entered: t0, Offers: 2, LastOffer: t0.Add(20 * time.Second), Declined: true},
			t0.Add(50 * time.Second), Decision{Action: ActionOffer, Route: "root/a/b/c", Trigger: TriggerReoffer, Template: "c_v1", OfferTimeout: 12 * time.Second}},
		{"c: recover false of its own", Call{Queue: "a", Reason: "x", Option: "1", Entered: t0, Abandoned: true, AbandonedAt: t0.Add(time.Minute)},
			t0.Add(time.Minute), Decision{Action: ActionNone, Route: "root/a/b/c", Trigger: TriggerAbandon}},
		{"d: action none of its own", call("2"), t0.Add(time.Hour), Decision{Action: ActionNone, Route: "root/a/b/d"}},
		{"d: recovery from the root", Call{Queue: "a", Reason: "x", Option: "2", Entered: t0, Abandoned: true, AbandonedAt: t0.Add(20 * time.Second)},
			t0.Add(time.Minute), Decision{Action: ActionRecover, Route: "root/a/b/d", Trigger: TriggerAbandon, Template: "rec_v1"}},
		{"e: perform with a's template", call("3"), t0, Decision{Action: ActionPerform, Route: "root/a/b/e", Trigger: TriggerPerform, Template: "a_v1"}},
		{"children are only tried under a matching parent", Call{Queue: "z", Reason: "x", Option: "1", Entered: t0}, t0.Add(time.Hour),
			Decision{Action: ActionNone, Route: "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Evaluate(tt.call, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%+v, %s) = %v, want %v\ndiff (-want +got):\n%s", tt.call, tt.now, got, tt.want, diff)
			}
		})
	}
}

// continue on several siblings: every matching one is tried in order, and
// the first that acts decides.
func TestEvaluateContinue(t *testing.T) {
	r := mustLoad(t, `
route:
  routes:
    - name: early
      matchers: ['queue="q"']
      continue: true
      action: offer
      template: t_v1
      sla: 30s
    - name: stop
      matchers: ['reason="stop"']
    - name: late
      matchers: ['queue="q"']
      continue: true
      action: offer
      template: t_v1
      offer_at_entry_ewt_above: 10m
    - name: catch-all
      action: perform
      template: p_v1
`)
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		call Call
		now  time.Time
		want Decision
	}{
		{"early acts at its sla", Call{Queue: "q", Entered: t0}, t0.Add(30 * time.Second),
			Decision{Action: ActionOffer, Route: "root/early", Trigger: TriggerSLA, Template: "t_v1", OfferTimeout: DefaultOfferTimeout}},
		{"late acts first on a high EWT", Call{Queue: "q", Entered: t0, EWT: 11 * time.Minute}, t0,
			Decision{Action: ActionOffer, Route: "root/late", Trigger: TriggerEntryEWT, Template: "t_v1", OfferTimeout: DefaultOfferTimeout}},
		{"the last sibling matches too: continue on late lets it decide", Call{Queue: "q", Entered: t0}, t0,
			Decision{Action: ActionPerform, Route: "root/catch-all", Trigger: TriggerPerform, Template: "p_v1"}},
		{"without continue, stop ends the search", Call{Queue: "q", Reason: "stop", Entered: t0}, t0,
			Decision{Action: ActionNone, Route: "root/early", Next: t0.Add(30 * time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Evaluate(tt.call, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%+v, %s) = %v, want %v\ndiff (-want +got):\n%s", tt.call, tt.now, got, tt.want, diff)
			}
		})
	}
}

func TestEvaluateNilRules(t *testing.T) {
	var r *Rules
	if got, want := r.Evaluate(Call{Queue: "sales"}, time.Now()), (Decision{Action: ActionNone}); got != want {
		t.Errorf("(*Rules)(nil).Evaluate() = %v, want %v", got, want)
	}
	if got, want := r.ShortAbandon("sales"), DefaultShortAbandon; got != want {
		t.Errorf("(*Rules)(nil).ShortAbandon(sales) = %v, want %v", got, want)
	}
}

func TestShortAbandon(t *testing.T) {
	r := mustLoad(t, `
time_intervals:
  - name: day
    time_intervals: [{times: [{start_time: '08:00', end_time: '20:00'}]}]
route:
  short_abandon: 8s
  routes:
    - name: by-reason
      matchers: ['queue="sales"', 'reason="billing"']
      short_abandon: 1s
    - name: sales
      matchers: ['queue=~"sales|presales"']
      active_time_intervals: [day]
      min_wait: 1m
      short_abandon: 5s
      routes:
        - name: pre
          matchers: ['queue="presales"']
          short_abandon: 3s
    - name: conditional
      min_position: 3
      short_abandon: 2s
    - name: everything-else
      short_abandon: 7s
`)
	tests := []struct {
		queue string
		want  time.Duration
	}{
		{"sales", 5 * time.Second},
		{"presales", 3 * time.Second},
		{"support", 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.queue, func(t *testing.T) {
			if got := r.ShortAbandon(tt.queue); got != tt.want {
				t.Errorf("ShortAbandon(%q) = %v, want %v", tt.queue, got, tt.want)
			}
		})
	}
	if got, want := testRules(t).ShortAbandon("sales"), 10*time.Second; got != want {
		t.Errorf("ShortAbandon(sales) over testdata/rules.yaml = %v, want %v", got, want)
	}
}

func TestTemplatesAndRoutes(t *testing.T) {
	r := testRules(t)
	if got, want := r.Templates(), []string{"order_status_v1", "queue_deflect_v1", "queue_recover_v1"}; !cmp.Equal(got, want) {
		t.Errorf("Templates() = %q, want %q", got, want)
	}
	want := []string{"root", "root/self-service", "root/vip", "root/tech-long", "root/spain", "root/sales",
		"root/sales/after-hours", "root/sales/billing", "root/sales/deep", "root/sales/3"}
	if got := r.Routes(); !cmp.Equal(got, want) {
		t.Errorf("Routes() = %q, want %q", got, want)
	}
	// The slices are copies.
	r.Templates()[0] = "x"
	r.Routes()[0] = "x"
	if r.Templates()[0] == "x" || r.Routes()[0] == "x" {
		t.Errorf("Templates() and Routes() share their slices with the Rules")
	}
}

func TestTriggers(t *testing.T) {
	want := []string{"entry_ewt", "sla", "reoffer", "perform", "abandon"}
	if got := Triggers(); !cmp.Equal(got, want) {
		t.Errorf("Triggers() = %q, want %q", got, want)
	}
}

// The sample file shipped in configs/ loads, and decides as its comments
// say for the dialplan's direct entries.
func TestSampleConfig(t *testing.T) {
	r, err := LoadFile("../../configs/deflectd/rules.yaml")
	if err != nil {
		t.Fatalf("LoadFile(configs/deflectd/rules.yaml) = %v", err)
	}
	for _, tmpl := range r.Templates() {
		switch tmpl {
		case "queue_deflect_v1", "queue_recover_v1", "order_status_v1":
		default:
			t.Errorf("Templates() has %q, not in configs/deflectd/templates.yaml", tmpl)
		}
	}
	ba := location(t, "America/Argentina/Buenos_Aires")
	open := time.Date(2026, 3, 3, 11, 0, 0, 0, ba) // a Tuesday
	tests := []struct {
		name       string
		call       Call
		now        time.Time
		wantAction Action
		wantRoute  string
	}{
		{"101: order status is performed", Call{Queue: "sales", Option: "3", Reason: "order_status", Entered: open}, open, ActionPerform, "root/order-status"},
		{"100: billing waits under the sla", Call{Queue: "sales", Option: "2", Reason: "billing", Entered: open}, open.Add(10 * time.Second), ActionNone, "root/sales/billing"},
		{"100: billing offered past the sla", Call{Queue: "sales", Option: "2", Reason: "billing", Entered: open}, open.Add(2 * time.Minute), ActionOffer, "root/sales/billing"},
		{"102: tech offered on a long EWT", Call{Queue: "support", Option: "1", Reason: "tech", Entered: open, EWT: 10 * time.Minute}, open, ActionOffer, "root/support"},
		{"102: abandoned after a minute is recovered", Call{Queue: "support", Option: "1", Reason: "tech", Entered: open, Abandoned: true, AbandonedAt: open.Add(time.Minute)}, open.Add(time.Minute), ActionRecover, "root/support"},
		{"102: abandoned after 3s is a short abandon", Call{Queue: "support", Option: "1", Reason: "tech", Entered: open, Abandoned: true, AbandonedAt: open.Add(3 * time.Second)}, open.Add(time.Minute), ActionNone, "root/support"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Evaluate(tt.call, tt.now)
			if got.Action != tt.wantAction || got.Route != tt.wantRoute {
				t.Errorf("Evaluate(%+v, %s) = %v, want %s by %s\n%s", tt.call, tt.now, got, tt.wantAction, tt.wantRoute, r.Explain(tt.call, tt.now))
			}
		})
	}
}

// The timeline docs/rules.md shows for extension 100 with the sample file.
func TestSampleConfigTimeline(t *testing.T) {
	r, err := LoadFile("../../configs/deflectd/rules.yaml")
	if err != nil {
		t.Fatalf("LoadFile(configs/deflectd/rules.yaml) = %v", err)
	}
	ba := location(t, "America/Argentina/Buenos_Aires")
	at := func(h, m, s int) time.Time { return time.Date(2026, 3, 3, h, m, s, 0, ba) }
	call := Call{Queue: "sales", Option: "2", Reason: "billing", Language: "es", Entered: at(11, 0, 0), EWT: 150 * time.Second}
	offer := func(trigger string) Decision {
		return Decision{Action: ActionOffer, Route: "root/sales/billing", Trigger: trigger, Template: "queue_deflect_v1", OfferTimeout: 8 * time.Second}
	}
	tests := []struct {
		name   string
		offers int
		last   time.Time
		ewt    time.Duration
		now    time.Time
		want   Decision
	}{
		{"entry", 0, time.Time{}, 150 * time.Second, at(11, 0, 0), Decision{Action: ActionNone, Route: "root/sales/billing", Next: at(11, 1, 0)}},
		{"sla", 0, time.Time{}, 150 * time.Second, at(11, 1, 0), offer(TriggerSLA)},
		{"declined by timeout", 1, at(11, 1, 0), 150 * time.Second, at(11, 1, 8), Decision{Action: ActionNone, Route: "root/sales/billing", Next: at(11, 3, 0)}},
		{"reoffer", 1, at(11, 1, 0), 150 * time.Second, at(11, 3, 0), offer(TriggerReoffer)},
		{"max_offers", 2, at(11, 3, 0), 150 * time.Second, at(11, 3, 4), Decision{Action: ActionNone, Route: "root/sales/billing", Next: at(13, 0, 0)}},
		{"entry EWT 5m", 0, time.Time{}, 5 * time.Minute, at(11, 0, 0), offer(TriggerEntryEWT)},
		{"entry EWT 5m, reoffer", 1, at(11, 0, 0), 5 * time.Minute, at(11, 2, 0), offer(TriggerReoffer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := call
			c.Offers, c.LastOffer, c.Declined, c.EWT = tt.offers, tt.last, tt.offers > 0, tt.ewt
			if got := r.Evaluate(c, tt.now); got != tt.want {
				t.Errorf("Evaluate(%+v, %s) = %v, want %v", c, tt.now, got, tt.want)
			}
		})
	}
}
