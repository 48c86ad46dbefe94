package outbox

import (
	"strconv"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	enqueued       *prometheus.CounterVec // kind, result
	sends          *prometheus.CounterVec // kind, result, reason
	sendErrors     *prometheus.CounterVec // code
	sendDuration   prometheus.Histogram
	indoubtResends prometheus.Counter
	claimed        prometheus.Counter
	rateWaits      prometheus.Counter
	statuses       *prometheus.CounterVec // status, kind, result
	breakerOpen    prometheus.Gauge
	breakerTrips   *prometheus.CounterVec // reason
	depth          prometheus.Gauge
	delayed        prometheus.Gauge
	oldestAge      prometheus.Gauge
	budgetLeft     prometheus.Gauge
	optouts        prometheus.Counter
	redisErrors    prometheus.Counter
}

// reasons are the bounded values of the "reason" label: whatsapp.Classify's
// reasons and the outbox's own.
var reasons = []string{"", "throughput", "pair_rate", "app_rate", "transient", "spam_rate", "token_expired",
	"auth", "restricted", "window_closed", "undeliverable", "ecosystem", "marketing_optout", "template",
	"template_paused", "parameter", "not_allowed", "permission", "server", "unknown", "network", "canceled",
	"bad_answer", "encoding", "request", "retries_exhausted", "corrupt", "redis"}

func reasonLabel(r string) string {
	for _, k := range reasons {
		if k == r {
			return r
		}
	}
	return "unknown"
}

func kindLabel(k string) string {
	if knownKind(k) {
		return k
	}
	return "other"
}

func statusLabel(s string) string {
	if whatsapp.StatusRank(s) > 0 {
		return s
	}
	return "other"
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_enqueued_total",
			Help: "Outbox enqueue requests, by message kind and result (queued, duplicate, opted_out, budget_exhausted, invalid).",
		}, []string{"kind", "result"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_sends_total",
			Help: "Cloud API send attempts, by kind, result (sent, retry, indoubt, failed) and error reason.",
		}, []string{"kind", "result", "reason"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_send_errors_total",
			Help: "Failed Cloud API send attempts by Meta error code (codes outside Meta's known table count as other; none: no error object, e.g. a network failure).",
		}, []string{"code"}),
		sendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deflectd_whatsapp_send_duration_seconds",
			Help:    "Latency of Cloud API send requests.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		indoubtResends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_indoubt_resends_total",
			Help: "Sends repeated because an earlier attempt's outcome stayed unknown past the grace period (possible duplicates).",
		}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_outbox_claimed_total",
			Help: "Outbox entries taken over from a consumer that stopped acknowledging them.",
		}),
		rateWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_rate_limited_total",
			Help: "Times a send waited for the phone number's shared rate limit.",
		}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_outbox_statuses_total",
			Help: "Status webhooks applied to outbox records, by status, message kind and result (applied, resolved, duplicate, unknown).",
		}, []string{"status", "kind", "result"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_whatsapp_breaker_open",
			Help: "1 while sends are stopped by an account or token error.",
		}),
		breakerTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_breaker_trips_total",
			Help: "Times the send breaker opened, by reason.",
		}, []string{"reason"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_whatsapp_outbox_depth",
			Help: "Outbox entries waiting to be sent now.",
		}),
		delayed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_whatsapp_outbox_delayed",
			Help: "Outbox jobs waiting for a retry, a breaker or a webhook.",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_whatsapp_outbox_oldest_age_seconds",
			Help: "Age of the oldest outbox entry waiting to be sent.",
		}),
		budgetLeft: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_whatsapp_tier_budget_remaining",
			Help: "New recipients the messaging tier still allows in the rolling 24 hours (-1: no limit).",
		}),
		optouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_outbox_optouts_total",
			Help: "Numbers put on the opt-out list.",
		}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_outbox_redis_errors_total",
			Help: "Redis operations of the outbox that failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.sends, m.sendErrors, m.sendDuration, m.indoubtResends, m.claimed,
		m.rateWaits, m.statuses, m.breakerOpen, m.breakerTrips, m.depth, m.delayed, m.oldestAge, m.budgetLeft,
		m.optouts, m.redisErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range Kinds() {
		for _, r := range []string{"queued", "duplicate", "opted_out", "budget_exhausted", "invalid"} {
			m.enqueued.WithLabelValues(k, r)
		}
		for _, r := range []string{"sent", "retry", "indoubt", "failed"} {
			m.sends.WithLabelValues(k, r, "")
		}
	}
	for _, c := range whatsapp.KnownCodes() {
		m.sendErrors.WithLabelValues(strconv.Itoa(c))
	}
	for _, c := range []string{"200-299", "other", "none"} {
		m.sendErrors.WithLabelValues(c)
	}
	for _, r := range []string{"token_expired", "auth", "permission", "restricted", "spam_rate"} {
		m.breakerTrips.WithLabelValues(r)
	}
	for _, s := range []string{whatsapp.StatusSent, whatsapp.StatusDelivered, whatsapp.StatusRead, whatsapp.StatusFailed} {
		for _, k := range Kinds() {
			for _, r := range []string{"applied", "resolved", "duplicate"} {
				m.statuses.WithLabelValues(s, k, r)
			}
		}
		m.statuses.WithLabelValues(s, "other", "unknown")
	}
	return m, nil
}
