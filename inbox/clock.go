package inbox

import (
	"slices"
	"time"
)

// This file holds the decisions of the "seen and unanswered" policy as
// pure functions of a conversation, its messages, the policy and the time:
// no I/O, so every rule is a table test and the timer worker only carries
// them out.

// clock is what a conversation's messages say about waiting: computed from
// the messages each time (compute-on-read), so a late status webhook, a
// failed reply or a redelivered message can never leave a stored counter
// wrong.
type clock struct {
	lastInbound   time.Time
	lastInboundID string
	pendingSince  time.Time
	pendingMsg    string
	lastAnswer    time.Time
	unsettled     int
}

// derive computes the clock of msgs. A customer message is answered once an
// agent's reply written after it (AnswersSeq) was accepted by WhatsApp, or
// once the cycle it belongs to was resolved (closedSeq). A reply that
// WhatsApp later reports failed answers nothing. Automatic messages
// (templates the bridge sent, surveys) never answer.
func derive(msgs []*Message, closedSeq int64) clock {
	var c clock
	through := closedSeq
	for _, m := range msgs {
		switch {
		case m.Direction == In:
			if !m.Time.Before(c.lastInbound) {
				c.lastInbound, c.lastInboundID = m.Time, m.ID
			}
		case m.answers():
			through = max(through, m.AnswersSeq)
			if m.AcceptedAt.After(c.lastAnswer) {
				c.lastAnswer = m.AcceptedAt
			}
		}
		if m.Direction == Out && m.State == StateQueued {
			c.unsettled++
		}
	}
	for _, m := range msgs {
		if m.needsAnswer() && m.Seq > through && (c.pendingSince.IsZero() || m.Time.Before(c.pendingSince)) {
			c.pendingSince, c.pendingMsg = m.Time, m.ID
		}
	}
	return c
}

// sortMessages orders messages by their time, then by arrival: WhatsApp's
// webhooks come in any order, and the customer's timestamps are the truth.
func sortMessages(msgs []*Message) {
	slices.SortStableFunc(msgs, func(a, b *Message) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
}

// Hours is business time: deflect/rules' time intervals provide it
// (rules.Interval), so that the inbox and the bridge share one calendar.
type Hours interface {
	// Active returns the business time in [from, to).
	Active(from, to time.Time) time.Duration
	// AddActive returns when d of business time will have passed since
	// from, or the zero time if never.
	AddActive(from time.Time, d time.Duration) time.Time
}

// wallClock counts every second: the hours of a team without business
// hours.
type wallClock struct{}

func (wallClock) Active(from, to time.Time) time.Duration {
	if to.Before(from) {
		return 0
	}
	return to.Sub(from)
}
func (wallClock) AddActive(from time.Time, d time.Duration) time.Time { return from.Add(max(d, 0)) }

// OnEscalate values: what happens besides notifying supervisors.
const (
	EscalateNotify   = "notify"
	EscalateUnassign = "unassign"
)

// Policy is the "seen and unanswered" policy of one team and priority.
type Policy struct {
	// CriticalAfter is the business time a message may wait before the
	// chat turns critical and its owner is alerted (default 5 min);
	// EscalateAfter before it escalates and supervisors are notified
	// (default 15 min).
	CriticalAfter, EscalateAfter time.Duration
	// OnEscalate is EscalateNotify or EscalateUnassign (the chat also goes
	// back to the team's Unassigned).
	OnEscalate string
	// ClaimTimeout is how long a taken chat may go unanswered before it
	// returns to Unassigned; 0 disables it.
	ClaimTimeout time.Duration
	// WindowMargin escalates a pending chat at once when the 24-hour
	// window closes within it (default 2 h).
	WindowMargin time.Duration
	// LostAfter is how long an escalated chat may stay unanswered before
	// it counts as lost; 0 disables it (a window closing unanswered is
	// always lost).
	LostAfter time.Duration
	// OfflineGrace is how long an owner may be offline before their
	// pending chats escalate and go back to Unassigned.
	OfflineGrace time.Duration
	// Hours counts business time only; nil counts every second.
	Hours Hours
}

func (p Policy) hours() Hours {
	if p.Hours == nil {
		return wallClock{}
	}
	return p.Hours
}

// Level reasons and unassign reasons.
const (
	ReasonThreshold    = "threshold"
	ReasonWindow       = "window"
	ReasonOffline      = "offline"
	ReasonClaimTimeout = "claim_timeout"
	ReasonEscalated    = "escalated"
	ReasonEscalatedOld = "escalated_unanswered"
)

// Assessment is what the policy says about a conversation at one moment,
// relative to what was already applied to it.
type Assessment struct {
	// Level is the level the chat is at now (never below the one already
	// applied in this pending episode); Reason why it reached it.
	Level  Level
	Reason string
	// Waited is the business time the oldest unanswered message waited.
	Waited time.Duration
	// Unassign, when set, is why the chat must go back to Unassigned now.
	Unassign string
	// WindowExpired: the window just closed on an unanswered message.
	WindowExpired bool
	// Lost, when set, is why the chat just became lost (window or
	// escalated_unanswered); it happens once per pending episode.
	Lost string
	// Next is the next moment the assessment can change; zero if none.
	Next time.Time
}

// Raised reports whether the assessment takes the chat to a higher level
// than the one applied.
func (a Assessment) Raised(c *Conversation) bool { return a.Level > c.Level }

// Assess applies the policy to c at now. owner is the presence of c's
// owner (ignored without one).
func Assess(c *Conversation, p Policy, owner Presence, now time.Time) Assessment {
	if !c.Pending() {
		return Assessment{Level: LevelNone}
	}
	h := p.hours()
	a := Assessment{Level: max(c.Level, LevelNormal), Reason: c.LevelReason, Waited: h.Active(c.PendingSince, now)}
	if a.Reason == "" {
		a.Reason = ReasonThreshold
	}
	raise := func(l Level, reason string) {
		if l > a.Level {
			a.Level, a.Reason = l, reason
		}
	}
	var next time.Time
	soon := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}

	if p.CriticalAfter > 0 {
		if at := h.AddActive(c.PendingSince, p.CriticalAfter); !at.IsZero() && !now.Before(at) {
			raise(LevelCritical, ReasonThreshold)
		} else if a.Level < LevelCritical {
			soon(at)
		}
	}
	if p.EscalateAfter > 0 {
		if at := h.AddActive(c.PendingSince, p.EscalateAfter); !at.IsZero() && !now.Before(at) {
			raise(LevelEscalated, ReasonThreshold)
		} else if a.Level < LevelEscalated {
			soon(at)
		}
	}
	// The window is a hard deadline in wall-clock time: business hours do
	// not stop WhatsApp's clock.
	if exp := c.WindowExpires(); !exp.IsZero() {
		if warn := exp.Add(-p.WindowMargin); !now.Before(warn) {
			raise(LevelEscalated, ReasonWindow)
		} else if a.Level < LevelEscalated {
			soon(warn)
		}
		if !now.Before(exp) {
			if !c.WindowExpired {
				a.WindowExpired = true
			}
		} else {
			soon(exp)
		}
	}

	offline := c.Owner != "" && owner.Status == Offline
	if offline {
		if at := owner.Since.Add(p.OfflineGrace); !now.Before(at) {
			raise(LevelEscalated, ReasonOffline)
			a.Unassign = ReasonOffline
		} else {
			soon(at)
		}
	}
	if a.Unassign == "" && c.Owner != "" && p.ClaimTimeout > 0 && !c.ClaimedAt.IsZero() && c.LastAnswer.Before(c.ClaimedAt) {
		if at := h.AddActive(c.ClaimedAt, p.ClaimTimeout); !at.IsZero() && !now.Before(at) {
			a.Unassign = ReasonClaimTimeout
		} else {
			soon(at)
		}
	}
	if a.Unassign == "" && c.Owner != "" && p.OnEscalate == EscalateUnassign && a.Level == LevelEscalated && c.Level < LevelEscalated {
		a.Unassign = ReasonEscalated
	}

	if !c.Lost {
		escalatedAt := c.EscalatedAt
		if escalatedAt.IsZero() && a.Level == LevelEscalated {
			escalatedAt = now
		}
		switch {
		case a.WindowExpired || c.WindowExpired:
			a.Lost = ReasonWindow
		case p.LostAfter > 0 && !escalatedAt.IsZero():
			if at := escalatedAt.Add(p.LostAfter); !now.Before(at) {
				a.Lost = ReasonEscalatedOld
			} else {
				soon(at)
			}
		}
	}
	a.Next = next
	return a
}
