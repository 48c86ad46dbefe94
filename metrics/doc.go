// Package metrics is the catalog of every Prometheus metric deflectd
// exports: name, type, label names, meaning (the HELP text the code
// registers) and the group it is documented under. Tests hold the code,
// docs/metrics.md, the Grafana dashboard and the alert rules to it:
//
//   - cmd/deflectd scrapes the whole app and fails on a deflectd_* family
//     that is exported but not catalogued, or catalogued but not
//     registered, or whose type, labels or help differ;
//   - docs/metrics.md is Render's output below a hand-written intro
//     (go test ./metrics -update rewrites it);
//   - the dashboard and rule tests check every name Referenced finds in an
//     expression against Names.
//
// # The funnel
//
// The voice side, per queue: deflectd_calls_entered_total, then
// deflectd_calls_answered_total, deflectd_calls_abandoned_total or
// deflectd_calls_short_abandoned_total (hung up before the short-abandon
// threshold, left out of the abandonment rate); deflectd_calls_waiting now;
// deflectd_wait_seconds by outcome (service level is its answered bucket at
// the target, le="20"); deflectd_ewt_seconds, the estimated wait.
//
// The deflection funnel, per queue:
//
//	eligible   deflectd_calls_eligible_total
//	offered    deflectd_offers_total
//	accepted   deflectd_offer_responses_total{response="accepted"}
//	 | performed deflectd_deflections_total{mode="perform"} (sent without asking)
//	sent       deflectd_whatsapp_sends_total{result="sent"}
//	delivered  deflectd_whatsapp_outbox_statuses_total{status="delivered",kind=~"offer|perform",result="applied"}
//	read       deflectd_whatsapp_outbox_statuses_total{status="read",kind=~"offer|perform",result="applied"}
//	converted  deflectd_whatsapp_conversions_total
//
// Recovery: deflectd_calls_abandoned_total, then recovered
// (deflectd_deflections_total{mode="recover"}), then converted
// (deflectd_whatsapp_conversions_total{kind="recover"}).
//
// The WhatsApp side after the bridge (sends, statuses, conversions) is
// labelled by message kind (offer, perform, recover), not by queue.
package metrics
