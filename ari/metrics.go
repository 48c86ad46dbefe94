package ari

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus series. They are registered on the
// Registerer given in Options; every label value is created up front so the
// series exist at zero before the first event.
type metrics struct {
	connected        prometheus.Gauge
	connects         *prometheus.CounterVec // by kind: first, reconnect
	connectFailures  prometheus.Counter
	disconnects      *prometheus.CounterVec // by reason
	events           *prometheus.CounterVec // by type, bounded to typedEvents + "other"
	decodeErrors     prometheus.Counter
	backlog          prometheus.Gauge
	slowConsumer     prometheus.Counter
	requests         *prometheus.CounterVec // by op, code
	requestDuration  *prometheus.HistogramVec
	lastEventSeconds prometheus.Gauge
}

// Disconnect reasons, the values of the "reason" label.
const (
	reasonClosed       = "closed"
	reasonPingTimeout  = "ping_timeout"
	reasonSlowConsumer = "slow_consumer"
	reasonReplaced     = "replaced"
	reasonShutdown     = "shutdown"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_ari_connected",
			Help: "1 while the ARI event websocket is connected, 0 otherwise.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_ari_connects_total",
			Help: "ARI event websocket connections established, by kind (first, reconnect).",
		}, []string{"kind"}),
		connectFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_ari_connect_failures_total",
			Help: "Failed attempts to open the ARI event websocket.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_ari_disconnects_total",
			Help: "ARI event websocket losses, by reason.",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_ari_events_total",
			Help: "ARI events received, by type (types without a struct count as other).",
		}, []string{"type"}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_ari_event_decode_errors_total",
			Help: "ARI events delivered raw because their typed decoding failed.",
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_ari_event_backlog",
			Help: "ARI events received and not yet read by the application.",
		}),
		slowConsumer: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deflectd_ari_slow_consumer_total",
			Help: "Times the event backlog crossed the slow-consumer threshold.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_ari_requests_total",
			Help: "ARI REST requests, by operation and HTTP status code (error when none came back).",
		}, []string{"op", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deflectd_ari_request_duration_seconds",
			Help:    "Latency of ARI REST requests, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		lastEventSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deflectd_ari_last_event_timestamp_seconds",
			Help: "Unix time of the last ARI event received.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.connected, m.connects, m.connectFailures, m.disconnects, m.events,
		m.decodeErrors, m.backlog, m.slowConsumer, m.requests, m.requestDuration,
		m.lastEventSeconds,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.connects.WithLabelValues("first")
	m.connects.WithLabelValues("reconnect")
	for _, r := range []string{reasonClosed, reasonPingTimeout, reasonSlowConsumer, reasonReplaced, reasonShutdown} {
		m.disconnects.WithLabelValues(r)
	}
	for _, t := range typedEvents {
		m.events.WithLabelValues(t)
	}
	m.events.WithLabelValues("other")
	for _, op := range restOps {
		m.requestDuration.WithLabelValues(op)
		m.requests.WithLabelValues(op, "error") // the one code known before any answer
	}
	return m, nil
}

// restOps are the values of the "op" label of the request metrics: one per
// REST operation of the client (TestRESTOpsListed keeps the list whole).
var restOps = [...]string{"add_channel", "answer", "continue", "control_playback", "create_bridge",
	"destroy_bridge", "events", "get_application", "get_bridge", "get_channel", "get_playback", "get_variable",
	"hangup", "info", "list_bridges", "list_channels", "move", "originate", "ping", "play", "play_bridge",
	"remove_channel", "ring", "ring_stop", "send_dtmf", "set_variable", "start_bridge_moh", "start_moh",
	"stop_bridge_moh", "stop_moh", "stop_playback", "subscribe", "unsubscribe"}

// eventLabel bounds the type label: Asterisk's own type names are a closed
// set per version, but a label must not grow with input.
func eventLabel(typ string) string {
	if newEvent(typ) != nil {
		return typ
	}
	return "other"
}
