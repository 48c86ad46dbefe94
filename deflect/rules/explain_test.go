package rules

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExplain(t *testing.T) {
	r := testRules(t)
	ba := location(t, "America/Argentina/Buenos_Aires")
	t0 := time.Date(2025, 6, 2, 11, 0, 0, 0, ba)
	tests := []struct {
		name string
		call Call
		now  time.Time
		want Explanation
	}{
		{
			name: "billing, under the sla",
			call: Call{Queue: "sales", Option: "2", Reason: "billing", Entered: t0},
			now:  t0.Add(10 * time.Second),
			want: Explanation{
				Decision: Decision{Action: ActionNone, Route: "root/sales/billing", Next: t0.Add(30 * time.Second)},
				Steps: []Step{
					{Route: "root", Matched: true},
					{Route: "root/self-service", Depth: 1, Reason: `reason="order_status": reason is "billing"`},
					{Route: "root/vip", Depth: 1, Reason: `option="9": option is "2"`},
					{Route: "root/tech-long", Depth: 1, Reason: `reason="tech": reason is "billing"`},
					{Route: "root/spain", Depth: 1, Reason: `queue="spain": queue is "sales"`},
					{Route: "root/sales", Depth: 1, Matched: true},
					{Route: "root/sales/after-hours", Depth: 2, Reason: "muted: inside time interval business_hours"},
					{Route: "root/sales/billing", Depth: 2, Matched: true, Decides: true, Action: ActionNone,
						Reason: "no offer yet: EWT unknown, not above 2m0s: waited 10s < sla 30s"},
				},
			},
		},
		{
			name: "continue: the first decider waits, the second acts",
			call: Call{Queue: "support", Option: "1", Reason: "tech", Entered: t0, EWT: 5 * time.Minute, Position: 3},
			now:  t0,
			want: Explanation{
				Decision: Decision{Action: ActionOffer, Route: "root/sales", Trigger: TriggerEntryEWT, Template: "queue_deflect_v1", OfferTimeout: 8 * time.Second},
				Steps: []Step{
					{Route: "root", Matched: true},
					{Route: "root/self-service", Depth: 1, Reason: `reason="order_status": reason is "tech"`},
					{Route: "root/vip", Depth: 1, Reason: `option="9": option is "1"`},
					{Route: "root/tech-long", Depth: 1, Matched: true, Decides: true, Action: ActionNone,
						Reason: "no offer yet: EWT 5m0s, not above 5m0s"},
					{Route: "root/spain", Depth: 1, Reason: `queue="spain": queue is "support"`},
					{Route: "root/sales", Depth: 1, Matched: true, Decides: true, Action: ActionOffer,
						Reason: "EWT 5m0s > offer_at_entry_ewt_above 2m0s"},
					{Route: "root/sales/after-hours", Depth: 2, Reason: "muted: inside time interval business_hours"},
					{Route: "root/sales/billing", Depth: 2, Reason: `reason="billing": reason is "tech"`},
					{Route: "root/sales/deep", Depth: 2, Reason: "min_position 10: position 3"},
					{Route: "root/sales/3", Depth: 2, Reason: `option!~"[0-9]": option is "1"`},
				},
			},
		},
		{
			name: "an acting route hides the later ones",
			call: Call{Queue: "support", Option: "1", Reason: "tech", Entered: t0, EWT: 6 * time.Minute},
			now:  t0,
			want: Explanation{
				Decision: Decision{Action: ActionOffer, Route: "root/tech-long", Trigger: TriggerEntryEWT, Template: "queue_deflect_v1", OfferTimeout: 10 * time.Second},
				Steps: []Step{
					{Route: "root", Matched: true},
					{Route: "root/self-service", Depth: 1, Reason: `reason="order_status": reason is "tech"`},
					{Route: "root/vip", Depth: 1, Reason: `option="9": option is "1"`},
					{Route: "root/tech-long", Depth: 1, Matched: true, Decides: true, Action: ActionOffer,
						Reason: "EWT 6m0s > offer_at_entry_ewt_above 5m0s"},
					{Route: "root/spain", Depth: 1, Reason: `queue="spain": queue is "support"`},
					{Route: "root/sales", Depth: 1, Matched: true, Reason: "not considered: an earlier route acted"},
					{Route: "root/sales/after-hours", Depth: 2, Reason: "muted: inside time interval business_hours"},
					{Route: "root/sales/billing", Depth: 2, Reason: `reason="billing": reason is "tech"`},
					{Route: "root/sales/deep", Depth: 2, Reason: "min_position 10: position unknown"},
					{Route: "root/sales/3", Depth: 2, Reason: `option!~"[0-9]": option is "1"`},
				},
			},
		},
		{
			name: "abandoned, short",
			call: Call{Queue: "sales", Option: "2", Reason: "billing", Entered: t0, Abandoned: true, AbandonedAt: t0.Add(4 * time.Second)},
			now:  t0.Add(5 * time.Second),
			want: Explanation{
				Decision: Decision{Action: ActionNone, Route: "root/sales/billing", Trigger: TriggerAbandon},
				Steps: []Step{
					{Route: "root", Matched: true},
					{Route: "root/self-service", Depth: 1, Reason: `reason="order_status": reason is "billing"`},
					{Route: "root/vip", Depth: 1, Reason: `option="9": option is "2"`},
					{Route: "root/tech-long", Depth: 1, Reason: `reason="tech": reason is "billing"`},
					{Route: "root/spain", Depth: 1, Reason: `queue="spain": queue is "sales"`},
					{Route: "root/sales", Depth: 1, Matched: true},
					{Route: "root/sales/after-hours", Depth: 2, Reason: "muted: inside time interval business_hours"},
					{Route: "root/sales/billing", Depth: 2, Matched: true, Decides: true, Action: ActionNone,
						Reason: "short abandon: waited 4s < short_abandon 5s"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Explain(tt.call, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Explain(%+v, %s) = %v, want %v\ndiff (-want +got):\n%s", tt.call, tt.now, got, tt.want, diff)
			}
			if d := r.Evaluate(tt.call, tt.now); d != got.Decision {
				t.Errorf("Explain(%+v, %s).Decision = %v, want Evaluate's %v", tt.call, tt.now, got.Decision, d)
			}
		})
	}
}

func TestExplanationString(t *testing.T) {
	r := testRules(t)
	t0 := time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)
	got := r.Explain(Call{Queue: "sales", Option: "2", Reason: "billing", Entered: t0}, t0.Add(40*time.Second)).String()
	want := `root: match
  root/self-service: no match (reason="order_status": reason is "billing")
  root/vip: no match (option="9": option is "2")
  root/tech-long: no match (reason="tech": reason is "billing")
  root/spain: no match (queue="spain": queue is "sales")
  root/sales: match
    root/sales/after-hours: no match (muted: inside time interval business_hours)
    root/sales/billing: decides offer (waited 40s >= sla 30s)
=> offer by root/sales/billing (sla) template queue_deflect_v1 offer_timeout 8s`
	if got != want {
		t.Errorf("Explain().String() =\n%s\nwant\n%s\ndiff (-want +got):\n%s", got, want, cmp.Diff(want, got))
	}
	next := Decision{Action: ActionNone, Route: "root", Next: t0}
	if got, want := next.String(), "none by root next 2025-06-02T14:00:00Z"; got != want {
		t.Errorf("%#v.String() = %q, want %q", next, got, want)
	}
}

func TestExplanationJSON(t *testing.T) {
	e := Explanation{
		Decision: Decision{Action: ActionNone, Route: "root/sales"},
		Steps:    []Step{{Route: "root", Matched: true}, {Route: "root/sales", Depth: 1, Matched: true, Decides: true, Action: ActionNone, Reason: "action none"}},
	}
	got, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"decision":{"action":"none","route":"root/sales"},"steps":[{"route":"root","depth":0,"matched":true},` +
		`{"route":"root/sales","depth":1,"matched":true,"decides":true,"action":"none","reason":"action none"}]}`
	if string(got) != want {
		t.Errorf("json.Marshal(%+v) = %s, want %s", e, got, want)
	}
}
