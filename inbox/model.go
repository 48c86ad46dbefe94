package inbox

import (
	"encoding/json"
	"time"
)

// Status is a conversation's lifecycle state.
type Status string

// Conversation statuses. A resolved conversation comes back open when the
// customer writes again (a returning customer) or an agent reopens it.
const (
	StatusOpen     Status = "open"
	StatusResolved Status = "resolved"
)

// Priority orders work and selects a team's thresholds.
type Priority string

// Priorities, as a handoff sets them.
const (
	PriorityHigh   Priority = "high"
	PriorityMedium Priority = "medium"
	PriorityLow    Priority = "low"
)

// Priorities returns every priority, most urgent first.
func Priorities() []Priority { return []Priority{PriorityHigh, PriorityMedium, PriorityLow} }

func (p Priority) valid() bool { return p == PriorityHigh || p == PriorityMedium || p == PriorityLow }

// Level is how urgent a pending conversation has become under the "seen
// and unanswered" policy: normal, then critical (the owner is alerted),
// then escalated (supervisors are notified). LevelNone means nothing waits
// for an answer.
type Level int

// Levels, in order.
const (
	LevelNone Level = iota
	LevelNormal
	LevelCritical
	LevelEscalated
)

// String returns the level's name, as metrics and the API show it.
func (l Level) String() string {
	switch l {
	case LevelNormal:
		return "normal"
	case LevelCritical:
		return "critical"
	case LevelEscalated:
		return "escalated"
	}
	return "none"
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "normal":
		*l = LevelNormal
	case "critical":
		*l = LevelCritical
	case "escalated":
		*l = LevelEscalated
	default:
		*l = LevelNone
	}
	return nil
}

// PendingLevels returns the levels a pending conversation can be at.
func PendingLevels() []Level { return []Level{LevelNormal, LevelCritical, LevelEscalated} }

// Conversation is one customer's WhatsApp thread with the business. There
// is one per customer: resolving closes a cycle, and the next customer
// message opens the next one on the same conversation, so the history
// stays in one place.
type Conversation struct {
	ID string `json:"id"`
	// Contact is the customer's wa_id (digits), the number replies go to;
	// UserID is the business-scoped user id when Meta sends one.
	Contact       string `json:"contact"`
	UserID        string `json:"user_id,omitempty"`
	Name          string `json:"name,omitempty"`
	PhoneNumberID string `json:"phone_number_id,omitempty"`

	Status   Status   `json:"status"`
	Team     string   `json:"team"`
	Owner    string   `json:"owner,omitempty"`
	Priority Priority `json:"priority"`
	Tags     []string `json:"tags,omitempty"`
	// LastOwner is the owner of the previous cycle, for sticky_owner.
	LastOwner string `json:"last_owner,omitempty"`
	// ClaimedAt is when Owner took the chat (claim, handoff or
	// reassignment): the start of claim_timeout.
	ClaimedAt time.Time `json:"claimed_at,omitzero"`

	Cycle   int       `json:"cycle"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Ver counts commits; every change is a compare-and-set on it.
	Ver int64 `json:"ver"`

	// Seq numbers the conversation's messages in arrival order; InSeq is
	// the Seq of the last customer message, ClosedSeq the InSeq at the
	// last resolve (messages up to it need no answer any more).
	Seq       int64 `json:"seq"`
	InSeq     int64 `json:"in_seq"`
	ClosedSeq int64 `json:"closed_seq"`

	// LastInbound is the time of the customer's last message: the 24-hour
	// customer-service window runs from it.
	LastInbound time.Time `json:"last_inbound,omitzero"`
	// LastInboundID is that message's wamid, the one a read receipt names.
	LastInboundID string `json:"last_inbound_id,omitempty"`
	// PendingSince is the time of the oldest customer message no agent
	// answered yet, zero when nothing waits. PendingMsg is its id.
	PendingSince time.Time `json:"pending_since,omitzero"`
	PendingMsg   string    `json:"pending_msg,omitempty"`
	// LastAnswer is when an agent's reply was last accepted by WhatsApp.
	LastAnswer time.Time `json:"last_answer,omitzero"`
	// SeenAt is when an agent last opened the chat; SeenBy who.
	SeenAt time.Time `json:"seen_at,omitzero"`
	SeenBy string    `json:"seen_by,omitempty"`

	// Level is the highest level the current pending episode reached;
	// LevelAt when, EscalatedAt when it escalated. They are the record
	// that makes each alert and escalation happen once.
	Level         Level     `json:"level"`
	LevelReason   string    `json:"level_reason,omitempty"`
	LevelAt       time.Time `json:"level_at,omitzero"`
	EscalatedAt   time.Time `json:"escalated_at,omitzero"`
	WindowExpired bool      `json:"window_expired,omitempty"`
	Lost          bool      `json:"lost,omitempty"`

	// FirstInbound is the cycle's first customer message, FirstResponse
	// the first agent answer after it: first response time is the
	// difference (the clock starts at the customer's first WhatsApp
	// message, not when the conversation was made).
	FirstInbound  time.Time `json:"first_inbound,omitzero"`
	FirstResponse time.Time `json:"first_response,omitzero"`

	Handoffs    int      `json:"handoffs"`
	PingPong    bool     `json:"ping_pong,omitempty"`
	LastHandoff *Handoff `json:"last_handoff,omitempty"`
	// Failure is the last agent reply WhatsApp refused, shown on the
	// conversation until an answer goes through.
	Failure *Failure `json:"failure,omitempty"`
	// Context is the call the customer came from, when they answered a
	// deflection, recovery or perform message.
	Context    *Context    `json:"context,omitempty"`
	Resolution *Resolution `json:"resolution,omitempty"`
	CSAT       int         `json:"csat,omitempty"`
	// Unsettled counts agent messages whose fate WhatsApp has not told
	// yet (queued in the outbox); the timer checks on them.
	Unsettled int `json:"unsettled,omitempty"`
	// ReadMarked is the last customer message marked read on WhatsApp.
	ReadMarked string `json:"read_marked,omitempty"`
	// Preview is the start of the last message, for lists.
	Preview   string    `json:"preview,omitempty"`
	LastMsgAt time.Time `json:"last_msg_at,omitzero"`
}

// Pending reports whether a customer message waits for an answer.
func (c *Conversation) Pending() bool { return c.Status == StatusOpen && !c.PendingSince.IsZero() }

// Seen reports whether an agent opened the chat after the customer's last
// message: "seen and unanswered". A message after the opening makes it
// unseen again: nobody has read it.
func (c *Conversation) Seen() bool {
	return c.Pending() && !c.SeenAt.Before(c.PendingSince) && !c.SeenAt.Before(c.LastInbound)
}

// WindowExpires is when the 24-hour customer-service window closes; after
// it only a template reaches the customer. Zero when the customer never
// wrote.
func (c *Conversation) WindowExpires() time.Time {
	if c.LastInbound.IsZero() {
		return time.Time{}
	}
	return c.LastInbound.Add(ServiceWindow)
}

// WindowOpen reports whether free text can reach the customer at now.
func (c *Conversation) WindowOpen(now time.Time) bool {
	e := c.WindowExpires()
	return !e.IsZero() && now.Before(e)
}

// ServiceWindow is WhatsApp's customer-service window: free-form messages
// are allowed for 24 hours after the customer's last message.
const ServiceWindow = 24 * time.Hour

// Direction says who sent a message.
type Direction string

// Directions.
const (
	In  Direction = "in"
	Out Direction = "out"
)

// Message is one message of a conversation: what a customer sent (any
// type, stored as received), an agent's reply or template, or an automatic
// message (the deflection template the customer answered, a survey).
type Message struct {
	// ID is the wamid of an inbound message, or the inbox's own id of an
	// outbound one ("o" and a random suffix, or "o" and the client's id).
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Direction Direction `json:"direction"`
	// Author is the agent who wrote an outbound message; empty for the
	// customer and for automatic messages.
	Author string `json:"author,omitempty"`
	// Automatic marks messages no person wrote: they never answer.
	Automatic bool `json:"automatic,omitempty"`
	// Type is WhatsApp's type (text, button, image, reaction, template,
	// ...). A type the inbox does not render keeps its Raw body.
	Type string    `json:"type"`
	Time time.Time `json:"time"`

	Text          string          `json:"text,omitempty"`
	ButtonPayload string          `json:"button_payload,omitempty"`
	ContextID     string          `json:"context_id,omitempty"`
	Media         *Media          `json:"media,omitempty"`
	Reaction      *Reaction       `json:"reaction,omitempty"`
	Location      *Location       `json:"location,omitempty"`
	Contacts      []string        `json:"contacts,omitempty"`
	Raw           json.RawMessage `json:"raw,omitempty"`
	Template      *TemplateRef    `json:"template,omitempty"`

	// Outbound delivery: State is queued until the outbox settles it,
	// then sent, delivered, read or failed.
	State      string    `json:"state,omitempty"`
	WAMID      string    `json:"wamid,omitempty"`
	StatusAt   time.Time `json:"status_at,omitzero"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	Error      *Failure  `json:"error,omitempty"`
	OutboxKey  string    `json:"outbox_key,omitempty"`
	// AnswersSeq is the InSeq when the agent wrote the reply: once
	// WhatsApp accepts it, customer messages up to it are answered.
	// Messages that arrived while it was being sent still wait.
	AnswersSeq int64 `json:"answers_seq,omitempty"`
}

// Outbound message states.
const (
	StateQueued    = "queued"
	StateSent      = "sent"
	StateDelivered = "delivered"
	StateRead      = "read"
	StateFailed    = "failed"
)

// accepted reports whether WhatsApp took an outbound message and has not
// reported it failed.
func (m *Message) accepted() bool {
	return m.Direction == Out && (m.State == StateSent || m.State == StateDelivered || m.State == StateRead)
}

// answers reports whether m counts as an agent's answer: a person wrote
// it and WhatsApp accepted it.
func (m *Message) answers() bool { return m.accepted() && !m.Automatic && m.Author != "" }

// needsAnswer reports whether an inbound message puts the chat in
// pending: a reaction is an acknowledgement and a survey score a rating,
// not a question.
func (m *Message) needsAnswer() bool {
	return m.Direction == In && m.Type != "reaction" && m.Type != "csat"
}

// Media is an attachment reference: WhatsApp's media id and type. The
// record never depends on downloading it.
type Media struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
	Voice    bool   `json:"voice,omitempty"`
}

// Reaction is an emoji on a message.
type Reaction struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji"`
}

// Location is a shared place.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// TemplateRef names a template message and its parameters.
type TemplateRef struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params,omitempty"`
	Kind     string   `json:"kind,omitempty"`
}

// Failure is a send WhatsApp refused, with Meta's code and title.
type Failure struct {
	Code    int       `json:"code"`
	Title   string    `json:"title"`
	Message string    `json:"message_id,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// Context is the call a customer came from: what the bridge knew when it
// sent the WhatsApp message they answered. It travels with the chat so
// that the agent does not ask again.
type Context struct {
	CallID   string        `json:"call_id,omitempty"`
	Queue    string        `json:"queue,omitempty"`
	Option   string        `json:"option,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Language string        `json:"language,omitempty"`
	Waited   time.Duration `json:"waited_ns"`
	EWT      time.Duration `json:"ewt_ns"`
	Position int           `json:"position,omitempty"`
	// Kind is the message answered: offer, perform or recover.
	Kind     string    `json:"kind"`
	Template string    `json:"template,omitempty"`
	WAMID    string    `json:"wamid,omitempty"`
	Key      string    `json:"key,omitempty"`
	SentAt   time.Time `json:"sent_at,omitzero"`
	// Button is the text of the button the customer tapped, if any.
	Button string `json:"button,omitempty"`
}

// Handoff is a structured pass of a chat to another team or agent: the
// receiver gets the why, how urgent, what to do next and a tag, not a
// bare reassignment.
type Handoff struct {
	FromTeam  string    `json:"from_team"`
	FromAgent string    `json:"from_agent,omitempty"`
	ToTeam    string    `json:"to_team"`
	ToAgent   string    `json:"to_agent,omitempty"`
	Reason    string    `json:"reason"`
	Priority  Priority  `json:"priority"`
	NextStep  string    `json:"next_step"`
	Tag       string    `json:"tag"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	PingPong  bool      `json:"ping_pong,omitempty"`
}

// ClosingKind is the clear action a chat ends with.
type ClosingKind string

// Closing kinds: a next step for the customer, a question left with them,
// or a confirmation that the matter is resolved.
const (
	ClosingNextStep     ClosingKind = "next_step"
	ClosingQuestion     ClosingKind = "question"
	ClosingConfirmation ClosingKind = "confirmation"
)

// ClosingKinds returns every closing kind.
func ClosingKinds() []ClosingKind {
	return []ClosingKind{ClosingNextStep, ClosingQuestion, ClosingConfirmation}
}

// Resolution is how a cycle ended.
type Resolution struct {
	Note       string      `json:"note"`
	Kind       ClosingKind `json:"kind"`
	By         string      `json:"by"`
	At         time.Time   `json:"at"`
	Unanswered bool        `json:"unanswered,omitempty"`
}

// Availability is an agent's presence.
type Availability string

// Availabilities. Only online agents receive sticky chats and handoffs;
// the pending chats of an offline agent follow the escalation path.
const (
	Online  Availability = "online"
	Away    Availability = "away"
	Offline Availability = "offline"
)

func (a Availability) valid() bool { return a == Online || a == Away || a == Offline }

// Presence is an agent's availability and since when.
type Presence struct {
	Status Availability `json:"status"`
	Since  time.Time    `json:"since,omitzero"`
	// Absent: the inbox set the user offline because their page closed
	// (its heartbeat lapsed); Was is what they were. A heartbeat that
	// comes back (the page was only cut off) restores Was.
	Absent bool         `json:"absent,omitempty"`
	Was    Availability `json:"was,omitempty"`
}

// Event is one thing that happened to a conversation, as the history
// keeps it and the live stream sends it.
type Event struct {
	// ID is the live stream's id (a Redis stream id), the SSE event id.
	ID   string    `json:"id,omitempty"`
	Type string    `json:"type"`
	Conv string    `json:"conversation,omitempty"`
	At   time.Time `json:"at"`
	By   string    `json:"by,omitempty"`
	// Team and Owner are the conversation's after the event; Prev, set
	// when the change moved it, where it was before, so that a list can
	// drop a chat that left it.
	Team  string  `json:"team,omitempty"`
	Owner string  `json:"owner,omitempty"`
	Prev  *Holder `json:"prev,omitempty"`
	// To names the users an alert is for.
	To   []string       `json:"to,omitempty"`
	Data map[string]any `json:"data,omitempty"`
	// State is the conversation after the event, for lists to update
	// their row without a reload.
	State *Summary `json:"state,omitempty"`
}

// Holder is where a conversation is: a team, and an owner or none.
type Holder struct {
	Team  string `json:"team"`
	Owner string `json:"owner,omitempty"`
}

// Event types.
const (
	EvCreated       = "conversation.created"
	EvMessageIn     = "message.in"
	EvMessageOut    = "message.out"
	EvMessageStatus = "message.status"
	EvClaimed       = "claimed"
	EvUnassigned    = "unassigned"
	EvHandoff       = "handoff"
	EvReassigned    = "reassigned"
	EvResolved      = "resolved"
	EvReopened      = "reopened"
	EvSeen          = "seen"
	EvLevel         = "level"
	EvAlert         = "alert"
	EvEscalation    = "escalation"
	EvWindowExpired = "window.expired"
	EvLost          = "lost"
	EvAvailability  = "availability"
	EvCSAT          = "csat"
	EvUpdated       = "updated"
)
