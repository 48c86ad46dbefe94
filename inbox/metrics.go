package inbox

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the inbox's Prometheus metrics (the catalog in metrics/
// lists them). Labels are bounded: teams and agents are those of the
// config and the users file, anything else is "other".
type metrics struct {
	firstResponse *prometheus.HistogramVec
	pending       *prometheus.GaugeVec
	pendingSeen   *prometheus.GaugeVec
	open          *prometheus.GaugeVec
	agents        *prometheus.GaugeVec
	resolved      *prometheus.CounterVec
	escalations   *prometheus.CounterVec
	unassigned    *prometheus.CounterVec
	claims        *prometheus.CounterVec
	handoffs      *prometheus.CounterVec
	pingpongs     *prometheus.CounterVec
	reopens       *prometheus.CounterVec
	windowExpired *prometheus.CounterVec
	lost          *prometheus.CounterVec
	csat          *prometheus.CounterVec
	messages      *prometheus.CounterVec
	replyFailures *prometheus.CounterVec
	created       *prometheus.CounterVec
	lateness      prometheus.Histogram
	redisErrors   prometheus.Counter

	teams  map[string]bool
	agentL map[string]bool
}

// Bounded label values.
var (
	inKinds       = []string{"text", "button", "media", "reaction", "other"}
	outKinds      = []string{"agent", "template", "survey"}
	failureCodes  = []string{"131047", "131026", "131049", "131050", "131051", "131056", "130429", "other"}
	unassignWhy   = []string{ReasonClaimTimeout, ReasonOffline, ReasonEscalated}
	escalationWhy = []string{ReasonThreshold, ReasonWindow, ReasonOffline}
	lostWhy       = []string{ReasonWindow, ReasonEscalatedOld}
)

func newMetrics(reg prometheus.Registerer, teams []string, agents []string) (*metrics, error) {
	m := &metrics{teams: map[string]bool{}, agentL: map[string]bool{}}
	for _, t := range teams {
		m.teams[t] = true
	}
	for _, a := range agents {
		m.agentL[a] = true
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m.firstResponse = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "deflectd_inbox_first_response_seconds",
		Help:    "Time from a cycle's first customer message to the first agent answer WhatsApp accepted, by team.",
		Buckets: []float64{15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}}, []string{"team"})
	m.pending = gauge("deflectd_inbox_pending", "Open chats whose customer waits for an answer now, by team and level (normal, critical, escalated).", "team", "level")
	m.pendingSeen = gauge("deflectd_inbox_pending_seen", "Pending chats by whether an agent opened them after the customer wrote (seen=\"true\": seen and unanswered).", "team", "seen")
	m.open = gauge("deflectd_inbox_open", "Open chats now, by team and whether someone owns them.", "team", "assigned")
	m.agents = gauge("deflectd_inbox_agents", "Agents and supervisors by availability (online, away, offline).", "status")
	m.resolved = counter("deflectd_inbox_resolved_total", "Chats resolved, by agent and closing kind (next_step, question, confirmation).", "agent", "kind")
	m.escalations = counter("deflectd_inbox_escalations_total", "Pending chats that reached a level, by team, level (critical, escalated) and reason (threshold, window, offline).", "team", "level", "reason")
	m.unassigned = counter("deflectd_inbox_unassigned_total", "Chats put back into Unassigned by the policy, by team and reason (claim_timeout, offline, escalated).", "team", "reason")
	m.claims = counter("deflectd_inbox_claims_total", "Attempts to take a chat, by team and result (won, conflict).", "team", "result")
	m.handoffs = counter("deflectd_inbox_handoffs_total", "Handoffs, by the team receiving the chat.", "team")
	m.pingpongs = counter("deflectd_inbox_pingpongs_total", "Handoffs back to where the chat came from within the ping-pong window, by receiving team.", "team")
	m.reopens = counter("deflectd_inbox_reopens_total", "Resolved chats opened again, by team and by whom (customer, agent).", "team", "by")
	m.windowExpired = counter("deflectd_inbox_window_expired_total", "24-hour windows that closed while the customer waited for an answer, by team.", "team")
	m.lost = counter("deflectd_inbox_lost_total", "Chats lost: unanswered when the window closed, or escalated and still unanswered after lost_after, by team and reason.", "team", "reason")
	m.csat = counter("deflectd_inbox_csat_total", "Post-chat survey answers, by team and score (1-5).", "team", "score")
	m.messages = counter("deflectd_inbox_messages_total", "Messages stored in conversations, by direction and kind.", "direction", "kind")
	m.replyFailures = counter("deflectd_inbox_reply_failures_total", "Agent messages and surveys that failed, by team and Meta error code (\"other\": another code, or the outbox never held the message).", "team", "code")
	m.created = counter("deflectd_inbox_conversations_total", "Conversations created, by team and origin (deflection: the customer answered a call's message; direct).", "team", "origin")
	m.lateness = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deflectd_inbox_timer_lateness_seconds",
		Help:    "How late the policy's timers ran after their due time.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}})
	m.redisErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "deflectd_inbox_redis_errors_total",
		Help: "Redis commands of the inbox that failed."})
	for _, c := range []prometheus.Collector{m.firstResponse, m.pending, m.pendingSeen, m.open, m.agents, m.resolved,
		m.escalations, m.unassigned, m.claims, m.handoffs, m.pingpongs, m.reopens, m.windowExpired, m.lost, m.csat,
		m.messages, m.replyFailures, m.created, m.lateness, m.redisErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every series exists at zero from the start.
	for _, t := range append(teams, "other") {
		m.firstResponse.WithLabelValues(t)
		for _, l := range PendingLevels() {
			m.pending.WithLabelValues(t, l.String())
		}
		for _, b := range []string{"true", "false"} {
			m.pendingSeen.WithLabelValues(t, b)
			m.open.WithLabelValues(t, b)
		}
		for _, l := range []Level{LevelCritical, LevelEscalated} {
			for _, r := range escalationWhy {
				m.escalations.WithLabelValues(t, l.String(), r)
			}
		}
		for _, r := range unassignWhy {
			m.unassigned.WithLabelValues(t, r)
		}
		for _, r := range []string{"won", "conflict"} {
			m.claims.WithLabelValues(t, r)
		}
		m.handoffs.WithLabelValues(t)
		m.pingpongs.WithLabelValues(t)
		m.reopens.WithLabelValues(t, "customer")
		m.reopens.WithLabelValues(t, "agent")
		m.windowExpired.WithLabelValues(t)
		for _, r := range lostWhy {
			m.lost.WithLabelValues(t, r)
		}
		for s := 1; s <= 5; s++ {
			m.csat.WithLabelValues(t, strconv.Itoa(s))
		}
		for _, c := range failureCodes {
			m.replyFailures.WithLabelValues(t, c)
		}
		m.created.WithLabelValues(t, "deflection")
		m.created.WithLabelValues(t, "direct")
	}
	for _, a := range append(agents, "other") {
		for _, k := range ClosingKinds() {
			m.resolved.WithLabelValues(a, string(k))
		}
	}
	for _, s := range []Availability{Online, Away, Offline} {
		m.agents.WithLabelValues(string(s))
	}
	for _, k := range inKinds {
		m.messages.WithLabelValues("in", k)
	}
	for _, k := range outKinds {
		m.messages.WithLabelValues("out", k)
	}
	return m, nil
}

func (m *metrics) team(t string) string {
	if m.teams[t] {
		return t
	}
	return "other"
}

func (m *metrics) agent(a string) string {
	if m.agentL[a] {
		return a
	}
	return "other"
}

func codeLabel(code int) string {
	s := strconv.Itoa(code)
	for _, c := range failureCodes {
		if c == s {
			return s
		}
	}
	return "other"
}

func inKind(t string) string {
	switch t {
	case "text", "button", "reaction":
		return t
	case "interactive":
		return "button"
	case "image", "audio", "video", "document", "sticker":
		return "media"
	}
	return "other"
}
