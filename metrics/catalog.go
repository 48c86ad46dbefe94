package metrics

import (
	"fmt"
	"slices"
	"strings"
)

// Metric types, the values of Metric.Type.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Groups, the values of Metric.Group, in the order docs/metrics.md lists
// them.
const (
	GroupVoice    = "voice"
	GroupFunnel   = "deflection funnel"
	GroupWhatsApp = "whatsapp"
	GroupInbox    = "inbox"
	GroupARI      = "ari"
	GroupOps      = "ops"
)

// Groups returns the groups in documentation order.
func Groups() []string {
	return []string{GroupVoice, GroupFunnel, GroupWhatsApp, GroupInbox, GroupARI, GroupOps}
}

// Metric is one metric family deflectd exports.
type Metric struct {
	// Name is the family name; a histogram's series add _bucket, _sum and
	// _count to it.
	Name string
	// Type is Counter, Gauge or Histogram.
	Type string
	// Labels are the label names, histograms' "le" excluded.
	Labels []string
	// Help is the HELP text the code registers, word for word.
	Help string
	// Group is one of Groups().
	Group string
}

// catalog lists every deflectd_* family, grouped, funnel stages in funnel
// order. Help must equal the code's HELP: the cmd/deflectd test compares
// them on a live scrape.
var catalog = []Metric{
	// Voice side, per queue.
	{"deflectd_calls_entered_total", Counter, []string{"queue"},
		"Calls that entered a queue through the bridge.", GroupVoice},
	{"deflectd_calls_answered_total", Counter, []string{"queue"},
		"Calls an agent answered.", GroupVoice},
	{"deflectd_calls_abandoned_total", Counter, []string{"queue"},
		"Callers who hung up while waiting, after the short-abandon threshold.", GroupVoice},
	{"deflectd_calls_short_abandoned_total", Counter, []string{"queue"},
		"Callers who hung up while waiting, before the short-abandon threshold (excluded from the abandonment rate).", GroupVoice},
	{"deflectd_calls_waiting", Gauge, []string{"queue"},
		"Calls waiting in a queue now.", GroupVoice},
	{"deflectd_wait_seconds", Histogram, []string{"queue", "outcome"},
		"Time callers waited, by outcome (answered, abandoned, short_abandoned, deflected, performed).", GroupVoice},
	{"deflectd_ewt_seconds", Gauge, []string{"queue", "estimator"},
		"Estimated wait for a new caller, by estimator (ql: position- and abandonment-aware; app_queue: Asterisk's EWMA).", GroupVoice},

	// Deflection funnel: eligible → offered → accepted | performed → sent
	// → delivered → read → converted; recovery: abandoned → recovered →
	// converted{kind="recover"}.
	{"deflectd_calls_eligible_total", Counter, []string{"queue"},
		"Calls whose caller number can receive WhatsApp (a valid mobile): the top of the deflection funnel.", GroupFunnel},
	{"deflectd_offers_total", Counter, []string{"queue", "trigger"},
		"WhatsApp offers played, by trigger (entry_ewt, sla, reoffer).", GroupFunnel},
	{"deflectd_offers_skipped_total", Counter, []string{"queue", "reason"},
		"Offers or messages not made, by reason (cooldown, opted_out, budget, not_mobile, redis, ...).", GroupFunnel},
	{"deflectd_offer_responses_total", Counter, []string{"queue", "response"},
		"Answers to offers: accepted, declined, timeout.", GroupFunnel},
	{"deflectd_deflections_total", Counter, []string{"queue", "mode"},
		"WhatsApp messages queued for a call, by mode (offer, perform, recover).", GroupFunnel},
	{"deflectd_whatsapp_enqueued_total", Counter, []string{"kind", "result"},
		"Outbox enqueue requests, by message kind and result (queued, duplicate, opted_out, budget_exhausted, invalid).", GroupFunnel},
	{"deflectd_whatsapp_sends_total", Counter, []string{"kind", "result", "reason"},
		"Cloud API send attempts, by kind, result (sent, retry, indoubt, failed) and error reason.", GroupFunnel},
	{"deflectd_whatsapp_outbox_statuses_total", Counter, []string{"status", "kind", "result"},
		"Status webhooks applied to outbox records, by status, message kind and result (applied, resolved, duplicate, unknown).", GroupFunnel},
	{"deflectd_whatsapp_conversions_total", Counter, []string{"kind", "via"},
		"Sent messages converted by a customer's reply or tap, by message kind and how.", GroupFunnel},

	// WhatsApp: Cloud API, outbox, webhooks.
	{"deflectd_whatsapp_send_duration_seconds", Histogram, nil,
		"Latency of Cloud API send requests.", GroupWhatsApp},
	{"deflectd_whatsapp_send_errors_total", Counter, []string{"code"},
		"Failed Cloud API send attempts by Meta error code (codes outside Meta's known table count as other; none: no error object, e.g. a network failure).", GroupWhatsApp},
	{"deflectd_whatsapp_indoubt_resends_total", Counter, nil,
		"Sends repeated because an earlier attempt's outcome stayed unknown past the grace period (possible duplicates).", GroupWhatsApp},
	{"deflectd_whatsapp_rate_limited_total", Counter, nil,
		"Times a send waited for the phone number's shared rate limit.", GroupWhatsApp},
	{"deflectd_whatsapp_breaker_open", Gauge, nil,
		"1 while sends are stopped by an account or token error.", GroupWhatsApp},
	{"deflectd_whatsapp_breaker_trips_total", Counter, []string{"reason"},
		"Times the send breaker opened, by reason.", GroupWhatsApp},
	{"deflectd_whatsapp_tier_budget_remaining", Gauge, nil,
		"New recipients the messaging tier still allows in the rolling 24 hours (-1: no limit).", GroupWhatsApp},
	{"deflectd_whatsapp_outbox_depth", Gauge, nil,
		"Outbox entries waiting to be sent now.", GroupWhatsApp},
	{"deflectd_whatsapp_outbox_delayed", Gauge, nil,
		"Outbox jobs waiting for a retry, a breaker or a webhook.", GroupWhatsApp},
	{"deflectd_whatsapp_outbox_oldest_age_seconds", Gauge, nil,
		"Age of the oldest outbox entry waiting to be sent.", GroupWhatsApp},
	{"deflectd_whatsapp_outbox_claimed_total", Counter, nil,
		"Outbox entries taken over from a consumer that stopped acknowledging them.", GroupWhatsApp},
	{"deflectd_whatsapp_outbox_optouts_total", Counter, nil,
		"Numbers put on the opt-out list.", GroupWhatsApp},
	{"deflectd_whatsapp_webhooks_total", Counter, []string{"result"},
		"Webhook POSTs received from Meta, by result.", GroupWhatsApp},
	{"deflectd_whatsapp_status_updates_total", Counter, []string{"status", "applied"},
		"Message statuses from webhooks, by status and whether the store applied them (duplicate: an exact repeat of an applied status, not passed on).", GroupWhatsApp},
	{"deflectd_whatsapp_inbound_total", Counter, []string{"type"},
		"Inbound customer messages surfaced, once per message id, by type.", GroupWhatsApp},
	{"deflectd_whatsapp_optouts_total", Counter, nil,
		"Opt-out keywords received and recorded.", GroupWhatsApp},
	{"deflectd_whatsapp_webhook_processing_errors_total", Counter, []string{"reason"},
		"Webhook entries that failed processing, by reason (malformed: dropped; sink: left pending for a retry).", GroupWhatsApp},

	// Inbox: the four metrics (first response, pending, seen and
	// unanswered, resolved per agent), then escalations, lost chats, handoffs.
	{"deflectd_inbox_conversations_total", Counter, []string{"team", "origin"},
		"Conversations created, by team and origin (deflection: the customer answered a call's message; direct).", GroupInbox},
	{"deflectd_inbox_first_response_seconds", Histogram, []string{"team"},
		"Time from a cycle's first customer message to the first agent answer WhatsApp accepted, by team.", GroupInbox},
	{"deflectd_inbox_pending", Gauge, []string{"team", "level"},
		"Open chats whose customer waits for an answer now, by team and level (normal, critical, escalated).", GroupInbox},
	{"deflectd_inbox_pending_seen", Gauge, []string{"team", "seen"},
		"Pending chats by whether an agent opened them after the customer wrote (seen=\"true\": seen and unanswered).", GroupInbox},
	{"deflectd_inbox_open", Gauge, []string{"team", "assigned"},
		"Open chats now, by team and whether someone owns them.", GroupInbox},
	{"deflectd_inbox_resolved_total", Counter, []string{"agent", "kind"},
		"Chats resolved, by agent and closing kind (next_step, question, confirmation).", GroupInbox},
	{"deflectd_inbox_escalations_total", Counter, []string{"team", "level", "reason"},
		"Pending chats that reached a level, by team, level (critical, escalated) and reason (threshold, window, offline).", GroupInbox},
	{"deflectd_inbox_unassigned_total", Counter, []string{"team", "reason"},
		"Chats put back into Unassigned by the policy, by team and reason (claim_timeout, offline, escalated).", GroupInbox},
	{"deflectd_inbox_lost_total", Counter, []string{"team", "reason"},
		"Chats lost: unanswered when the window closed, or escalated and still unanswered after lost_after, by team and reason.", GroupInbox},
	{"deflectd_inbox_window_expired_total", Counter, []string{"team"},
		"24-hour windows that closed while the customer waited for an answer, by team.", GroupInbox},
	{"deflectd_inbox_claims_total", Counter, []string{"team", "result"},
		"Attempts to take a chat, by team and result (won, conflict).", GroupInbox},
	{"deflectd_inbox_handoffs_total", Counter, []string{"team"},
		"Handoffs, by the team receiving the chat.", GroupInbox},
	{"deflectd_inbox_pingpongs_total", Counter, []string{"team"},
		"Handoffs back to where the chat came from within the ping-pong window, by receiving team.", GroupInbox},
	{"deflectd_inbox_reopens_total", Counter, []string{"team", "by"},
		"Resolved chats opened again, by team and by whom (customer, agent).", GroupInbox},
	{"deflectd_inbox_csat_total", Counter, []string{"team", "score"},
		"Post-chat survey answers, by team and score (1-5).", GroupInbox},
	{"deflectd_inbox_messages_total", Counter, []string{"direction", "kind"},
		"Messages stored in conversations, by direction and kind.", GroupInbox},
	{"deflectd_inbox_logins_total", Counter, []string{"result"},
		"Password sign-ins to the inbox, by result (ok, bad_credentials, locked_out: refused after 10 failures within a minute).", GroupInbox},
	{"deflectd_inbox_reply_failures_total", Counter, []string{"team", "code"},
		"Agent messages and surveys that failed, by team and Meta error code (\"other\": another code, or the outbox never held the message).", GroupInbox},
	{"deflectd_inbox_agents", Gauge, []string{"status"},
		"Agents and supervisors by availability (online, away, offline).", GroupInbox},
	{"deflectd_inbox_timer_lateness_seconds", Histogram, nil,
		"How late the policy's timers ran after their due time.", GroupInbox},
	{"deflectd_inbox_redis_errors_total", Counter, nil,
		"Redis commands of the inbox that failed.", GroupInbox},

	// ARI: the connection to Asterisk.
	{"deflectd_ari_connected", Gauge, nil,
		"1 while the ARI event websocket is connected, 0 otherwise.", GroupARI},
	{"deflectd_ari_connects_total", Counter, []string{"kind"},
		"ARI event websocket connections established, by kind (first, reconnect).", GroupARI},
	{"deflectd_ari_connect_failures_total", Counter, nil,
		"Failed attempts to open the ARI event websocket.", GroupARI},
	{"deflectd_ari_disconnects_total", Counter, []string{"reason"},
		"ARI event websocket losses, by reason.", GroupARI},
	{"deflectd_ari_events_total", Counter, []string{"type"},
		"ARI events received, by type (types without a struct count as other).", GroupARI},
	{"deflectd_ari_event_decode_errors_total", Counter, nil,
		"ARI events delivered raw because their typed decoding failed.", GroupARI},
	{"deflectd_ari_event_backlog", Gauge, nil,
		"ARI events received and not yet read by the application.", GroupARI},
	{"deflectd_ari_slow_consumer_total", Counter, nil,
		"Times the event backlog crossed the slow-consumer threshold.", GroupARI},
	{"deflectd_ari_requests_total", Counter, []string{"op", "code"},
		"ARI REST requests, by operation and HTTP status code (error when none came back).", GroupARI},
	{"deflectd_ari_request_duration_seconds", Histogram, []string{"op"},
		"Latency of ARI REST requests, by operation.", GroupARI},
	{"deflectd_ari_last_event_timestamp_seconds", Gauge, nil,
		"Unix time of the last ARI event received.", GroupARI},

	// Ops: the bridge's own health, Redis, configuration.
	{"deflectd_calls_adopted_total", Counter, nil,
		"Calls found in the application at a (re)connect and adopted.", GroupOps},
	{"deflectd_calls_fallback_total", Counter, nil,
		"Calls handed back to the dialplan's Queue() because the bridge could not queue them.", GroupOps},
	{"deflectd_calls_bad_entry_total", Counter, nil,
		"Channels that entered the application without the queue= argument.", GroupOps},
	{"deflectd_leftovers_removed_total", Counter, []string{"kind"},
		"Local channels and bridges of ended calls that a failed cleanup left in Asterisk, removed later, by kind (local_channel, bridge).", GroupOps},
	{"deflectd_deflect_redis_errors_total", Counter, nil,
		"Redis operations of the bridge that failed (the bridge then fails open).", GroupOps},
	{"deflectd_whatsapp_outbox_redis_errors_total", Counter, nil,
		"Redis operations of the outbox that failed.", GroupOps},
	{"deflectd_config_last_reload_successful", Gauge, nil,
		"1 if the last load of the rules and templates succeeded, 0 if the old ones were kept.", GroupOps},
	{"deflectd_config_last_reload_success_timestamp_seconds", Gauge, nil,
		"Unix time of the last successful load of the rules and templates.", GroupOps},
}

// Catalog returns every deflectd_* metric family the app exports, grouped
// as Groups() orders them and, within the funnel, in funnel order. The
// caller may modify the result.
func Catalog() []Metric {
	out := make([]Metric, len(catalog))
	for i, m := range catalog {
		m.Labels = slices.Clone(m.Labels)
		out[i] = m
	}
	return out
}

// Lookup returns the catalog entry of a family name.
func Lookup(name string) (Metric, bool) {
	i := slices.IndexFunc(catalog, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	m := catalog[i]
	m.Labels = slices.Clone(m.Labels)
	return m, true
}

// Names returns the set of catalogued family names.
func Names() map[string]bool {
	n := make(map[string]bool, len(catalog))
	for _, m := range catalog {
		n[m.Name] = true
	}
	return n
}

// forbiddenLabelWords may not appear as a word of a label name: labels
// must be bounded, and never carry a caller's number or a call's id.
var forbiddenLabelWords = []string{"number", "phone", "msisdn", "call", "caller", "callerid", "id", "uniqueid", "wa", "channel", "to", "from", "user", "email"}

// ForbiddenLabel reports whether a label name looks like it carries an
// unbounded or personal value (a phone number, caller, call or message
// id).
func ForbiddenLabel(label string) bool {
	l := strings.ToLower(label)
	for _, w := range strings.Split(l, "_") {
		if slices.Contains(forbiddenLabelWords, w) {
			return true
		}
	}
	for _, s := range []string{"phone", "caller", "number", "msisdn"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// Validate checks a metric against the naming conventions: a deflectd_
// prefix; counters and only counters end in _total; histograms, and
// anything measuring time (duration, latency, age, timestamp, wait), end in
// _seconds; label names are valid, distinct, not reserved and not
// forbidden (ForbiddenLabel).
func Validate(m Metric) error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if !strings.HasPrefix(m.Name, "deflectd_") || !validName(m.Name) {
		bad("name is not a deflectd_ metric name")
	}
	switch m.Type {
	case Counter:
		if !strings.HasSuffix(m.Name, "_total") {
			bad("counter does not end in _total")
		}
	case Gauge, Histogram:
		if strings.HasSuffix(m.Name, "_total") {
			bad("%s ends in _total", m.Type)
		}
		for _, s := range []string{"_bucket", "_sum", "_count", "_created"} {
			if strings.HasSuffix(m.Name, s) {
				bad("name ends in the reserved suffix %s", s)
			}
		}
	default:
		bad("unknown type %q", m.Type)
	}
	timed := m.Type == Histogram
	for _, w := range []string{"duration", "latency", "age", "timestamp", "wait", "ewt", "seconds"} {
		timed = timed || slices.Contains(strings.Split(m.Name, "_"), w)
	}
	if timed && !strings.HasSuffix(strings.TrimSuffix(m.Name, "_total"), "_seconds") {
		bad("a histogram or time does not end in _seconds")
	}
	seen := map[string]bool{}
	for _, l := range m.Labels {
		switch {
		case !validName(l) || strings.HasPrefix(l, "__") || strings.Contains(l, ":"):
			bad("label %q is not a valid label name", l)
		case l == "le" || l == "quantile":
			bad("label %q is reserved", l)
		case seen[l]:
			bad("label %q repeated", l)
		case ForbiddenLabel(l):
			bad("label %q may carry a number or an id: labels must be bounded", l)
		}
		seen[l] = true
	}
	if m.Help == "" {
		bad("no help")
	}
	if !slices.Contains(Groups(), m.Group) {
		bad("unknown group %q", m.Group)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", m.Name, strings.Join(errs, "; "))
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == ':':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
