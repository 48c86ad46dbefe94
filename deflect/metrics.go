package deflect

import (
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bridge's Prometheus series: the voice side of the funnel
// (entered, answered, abandoned) and the deflection side (offers, answers
// to them, deflections by mode). Labels are bounded: queue names come from
// the dialplan, never from callers.
type metrics struct {
	entered, eligible, answered, abandoned      *prometheus.CounterVec // queue
	shortAbandoned                              *prometheus.CounterVec // queue
	waiting                                     *prometheus.GaugeVec   // queue
	offers                                      *prometheus.CounterVec // queue, trigger
	responses                                   *prometheus.CounterVec // queue, response
	deflections                                 *prometheus.CounterVec // queue, mode
	skipped                                     *prometheus.CounterVec // queue, reason
	wait                                        *prometheus.HistogramVec
	ewt                                         *prometheus.GaugeVec // queue, estimator
	adopted, fallbacks, badEntries, redisErrors prometheus.Counter
	reaped                                      *prometheus.CounterVec // kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		entered:        cv("deflectd_calls_entered_total", "Calls that entered a queue through the bridge.", "queue"),
		eligible:       cv("deflectd_calls_eligible_total", "Calls whose caller number can receive WhatsApp (a valid mobile): the top of the deflection funnel.", "queue"),
		answered:       cv("deflectd_calls_answered_total", "Calls an agent answered.", "queue"),
		abandoned:      cv("deflectd_calls_abandoned_total", "Callers who hung up while waiting, after the short-abandon threshold.", "queue"),
		shortAbandoned: cv("deflectd_calls_short_abandoned_total", "Callers who hung up while waiting, before the short-abandon threshold (excluded from the abandonment rate).", "queue"),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "deflectd_calls_waiting",
			Help: "Calls waiting in a queue now."}, []string{"queue"}),
		offers:      cv("deflectd_offers_total", "WhatsApp offers played, by trigger (entry_ewt, sla, reoffer).", "queue", "trigger"),
		responses:   cv("deflectd_offer_responses_total", "Answers to offers: accepted, declined, timeout.", "queue", "response"),
		deflections: cv("deflectd_deflections_total", "WhatsApp messages queued for a call, by mode (offer, perform, recover).", "queue", "mode"),
		skipped:     cv("deflectd_offers_skipped_total", "Offers or messages not made, by reason (cooldown, opted_out, budget, not_mobile, redis, ...).", "queue", "reason"),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "deflectd_wait_seconds",
			Help:    "Time callers waited, by outcome (answered, abandoned, short_abandoned, deflected, performed).",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200}}, []string{"queue", "outcome"}),
		ewt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "deflectd_ewt_seconds",
			Help: "Estimated wait for a new caller, by estimator (ql: position- and abandonment-aware; app_queue: Asterisk's EWMA)."}, []string{"queue", "estimator"}),
		adopted:     c("deflectd_calls_adopted_total", "Calls found in the application at a (re)connect and adopted."),
		fallbacks:   c("deflectd_calls_fallback_total", "Calls handed back to the dialplan's Queue() because the bridge could not queue them."),
		badEntries:  c("deflectd_calls_bad_entry_total", "Channels that entered the application without the queue= argument."),
		redisErrors: c("deflectd_deflect_redis_errors_total", "Redis operations of the bridge that failed (the bridge then fails open)."),
		reaped:      cv("deflectd_leftovers_removed_total", "Local channels and bridges of ended calls that a failed cleanup left in Asterisk, removed later, by kind (local_channel, bridge).", "kind"),
	}
	for _, col := range []prometheus.Collector{m.entered, m.eligible, m.answered, m.abandoned, m.shortAbandoned, m.waiting, m.offers,
		m.responses, m.deflections, m.skipped, m.wait, m.ewt, m.adopted, m.fallbacks, m.badEntries, m.redisErrors, m.reaped} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	for _, kind := range []string{"local_channel", "bridge"} {
		m.reaped.WithLabelValues(kind)
	}
	return m, nil
}

// initQueue creates every series of a queue at zero.
func (m *metrics) initQueue(q string) {
	for _, c := range []*prometheus.CounterVec{m.entered, m.eligible, m.answered, m.abandoned, m.shortAbandoned} {
		c.WithLabelValues(q)
	}
	m.waiting.WithLabelValues(q)
	for _, t := range []string{rules.TriggerEntryEWT, rules.TriggerSLA, rules.TriggerReoffer} {
		m.offers.WithLabelValues(q, t)
	}
	for _, r := range []string{"accepted", "declined", "timeout"} {
		m.responses.WithLabelValues(q, r)
	}
	for _, mode := range []string{"offer", "perform", "recover"} {
		m.deflections.WithLabelValues(q, mode)
	}
	for _, r := range []string{skipAnonymous, skipInvalid, skipNotMobile, "redis", "cooldown", "opted_out", "unreachable", "budget", "send_failed"} {
		m.skipped.WithLabelValues(q, r)
	}
	for _, o := range []string{"answered", "abandoned", "short_abandoned", string(StateDeflected), string(StatePerformed)} {
		m.wait.WithLabelValues(q, o)
	}
	for _, e := range []string{"ql", "app_queue"} {
		m.ewt.WithLabelValues(q, e)
	}
}
