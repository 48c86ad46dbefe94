package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
)

// Outbox is the durable send queue as the inbox uses it: agent replies
// and surveys are jobs (kinds agent and survey), and the records tell how
// a send ended. *outbox.Outbox is one.
type Outbox interface {
	Enqueue(ctx context.Context, j outbox.Job) (outbox.Enqueued, error)
	Get(ctx context.Context, key string) (*outbox.Record, error)
	KeyForWAMID(ctx context.Context, wamid string) (string, error)
	// Origin finds the deflection message an inbound message answers
	// (outbox.ErrNotFound when none).
	Origin(ctx context.Context, in whatsapp.Inbound) (*outbox.Record, error)
}

// ReadMarker sends read receipts (and typing indicators) to WhatsApp;
// *whatsapp.Client is one.
type ReadMarker interface {
	MarkRead(ctx context.Context, messageID string, typing bool) error
}

// Renderer fills a template of the catalog for a conversation; the app's
// catalog is one.
type Renderer interface {
	Render(name, language, to string, cc whatsapp.CallContext) (*whatsapp.Message, error)
}

// Options configures an Inbox. Redis, Config, Users and Outbox are
// required.
type Options struct {
	Redis redis.UniversalClient
	// Prefix starts every key, as the rest of deflectd's. Default
	// "deflectd:".
	Prefix string
	Config *Config
	Users  *Directory
	Outbox Outbox
	// Reader sends read receipts when Config.MarkRead; nil sends none.
	Reader ReadMarker
	// Renderer renders the templates agents send outside the window and
	// the survey; nil disables both.
	Renderer Renderer
	// Hours returns the time interval a team's business_hours names, from
	// the rules in force (they may be reloaded). Nil: every hour counts.
	Hours func(name string) (Hours, bool)

	// PollInterval is how often the timer worker looks for due chats.
	// Default 100 ms: the policy acts within it.
	PollInterval time.Duration
	// Lease is how long a worker holds a due chat before another may take
	// it. Default 30 s.
	Lease time.Duration
	// Workers is how many due chats one instance handles at once. Default 8.
	Workers int
	// Batch is how many due chats a worker takes at once. Default 256.
	Batch int
	// RepairAfter is when a change that may have been cut short is
	// checked by the timer. Default 30 s.
	RepairAfter time.Duration
	// SettleAfter is how often a reply whose fate WhatsApp has not told
	// yet is checked against the outbox. Default 2 min.
	SettleAfter time.Duration

	// Now is the clock. Default time.Now.
	Now        func() time.Time
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Inbox is the WhatsApp team inbox: conversations with owners, handoffs,
// the "seen and unanswered" policy and its timers, stored in Redis and
// shared by every deflectd instance.
type Inbox struct {
	opts    Options
	cfg     *Config
	users   *Directory
	st      *store
	log     *zap.Logger
	m       *metrics
	now     func() time.Time
	replies map[string]*quickReply

	gaugeMu sync.Mutex
}

type quickReply struct {
	cfg QuickReplyConfig
	tpl *template.Template
}

// New validates opts and returns an Inbox. It starts nothing: call Run.
func New(opts Options) (*Inbox, error) {
	switch {
	case opts.Redis == nil:
		return nil, errors.New("inbox: Options.Redis is required")
	case opts.Config == nil:
		return nil, errors.New("inbox: Options.Config is required")
	case opts.Users == nil:
		return nil, errors.New("inbox: Options.Users is required")
	case opts.Outbox == nil:
		return nil, errors.New("inbox: Options.Outbox is required")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Users.CheckTeams(opts.Config.TeamNames()); err != nil {
		return nil, fmt.Errorf("inbox: users file: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "deflectd:"
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&opts.PollInterval, 100*time.Millisecond)
	dur(&opts.Lease, 30*time.Second)
	dur(&opts.RepairAfter, 30*time.Second)
	dur(&opts.SettleAfter, 2*time.Minute)
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	var agents []string
	for _, u := range opts.Users.Users() {
		agents = append(agents, u.ID)
	}
	m, err := newMetrics(opts.Registerer, opts.Config.TeamNames(), agents)
	if err != nil {
		return nil, fmt.Errorf("inbox: registering metrics: %w", err)
	}
	x := &Inbox{opts: opts, cfg: opts.Config, users: opts.Users, st: newStore(opts.Redis, opts.Prefix),
		log: opts.Logger, m: m, now: opts.Now, replies: map[string]*quickReply{}}
	for _, q := range opts.Config.quickReplies() {
		t, err := parseQuickReply(q)
		if err != nil {
			return nil, fmt.Errorf("inbox: quick reply %s: %w", q.ID, err)
		}
		x.replies[q.ID] = &quickReply{cfg: q, tpl: t}
	}
	return x, nil
}

// Users returns the directory of agents and supervisors.
func (x *Inbox) Users() *Directory { return x.users }

// Config returns the inbox configuration.
func (x *Inbox) Config() *Config { return x.cfg }

// policy returns the policy in force for a team and priority.
func (x *Inbox) policy(team string, pr Priority) Policy {
	var h Hours
	if t := x.cfg.team(team); t != nil && t.BusinessHours != "" && x.opts.Hours != nil {
		if iv, ok := x.opts.Hours(t.BusinessHours); ok {
			h = iv
		}
	}
	return x.cfg.policy(team, pr, h)
}

// Run runs the timer worker and the gauges until ctx ends.
func (x *Inbox) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		t := time.NewTicker(x.opts.PollInterval)
		defer t.Stop()
		failing := false
		for {
			_, err := x.ProcessDue(ctx)
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				x.log.Error("inbox: the timer worker cannot reach Redis; retrying", zap.Error(err))
				failing = true
			case err == nil && failing:
				x.log.Info("inbox: the timer worker reaches Redis again")
				failing = false
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			x.RefreshGauges(ctx)
			if _, err := x.SweepAbsent(ctx); err != nil && ctx.Err() == nil {
				x.log.Warn("inbox: looking for users who closed the page", zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return g.Wait()
}

// Heartbeat records that the user has the web UI open until until: the
// page's live stream calls it as it pings. Users of the API alone (an
// integration with a token) never call it, and their availability is
// what they set.
func (x *Inbox) Heartbeat(ctx context.Context, userID string, until time.Time) error {
	if err := x.st.rdb.ZAdd(ctx, x.st.liveKey(), redis.Z{Score: float64(ms(until)), Member: userID}).Err(); err != nil {
		x.m.redisErrors.Inc()
		return fmt.Errorf("inbox: recording that %s has a page open: %w", userID, err)
	}
	// A page that was only cut off (a network blip, a laptop lid, Redis
	// away for a while) gets back what the sweep took; a user who chose
	// offline stays offline.
	p, err := x.Presence(ctx, userID)
	if err != nil || !p.Absent || p.Status != Offline || p.Was == "" {
		return err
	}
	u, ok := x.users.User(userID)
	if !ok {
		return nil
	}
	if _, err := x.setAvailability(ctx, u, userID, p.Was, ""); err != nil {
		return err
	}
	x.log.Info("inbox: the page is back; availability restored", zap.String("user", userID), zap.String("status", string(p.Was)))
	return nil
}

// lapseScript removes a user's heartbeat only if it lapsed: a page that
// pinged meanwhile keeps it. Of several instances sweeping at once, one
// removes it, and only that one acts.
// KEYS: live. ARGV: user, now ms.
var lapseScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// SweepAbsent sets offline the users whose last page closed: their
// heartbeat lapsed and they are not offline already. A browser closed
// without signing out must not leave chats waiting on someone who is not
// there; once offline, the owner's pending chats follow the offline path
// of the policy. It returns who was set offline.
func (x *Inbox) SweepAbsent(ctx context.Context) ([]string, error) {
	now := ms(x.now())
	ids, err := x.st.rdb.ZRangeByScore(ctx, x.st.liveKey(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now, 10)}).Result()
	if err != nil {
		x.m.redisErrors.Inc()
		return nil, fmt.Errorf("inbox: reading the open pages: %w", err)
	}
	var gone []string
	for _, id := range ids {
		n, err := lapseScript.Run(ctx, x.st.rdb, []string{x.st.liveKey()}, id, now).Int()
		if err != nil {
			x.m.redisErrors.Inc()
			return gone, fmt.Errorf("inbox: clearing %s's page: %w", id, err)
		}
		u, ok := x.users.User(id)
		if n == 0 || !ok {
			continue
		}
		p, err := x.Presence(ctx, id)
		if err != nil {
			return gone, err
		}
		if p.Status == Offline {
			continue
		}
		if _, err := x.setAvailability(ctx, u, id, Offline, p.Status); err != nil {
			return gone, err
		}
		x.log.Info("inbox: no page open any more; set offline", zap.String("user", id), zap.String("was", string(p.Status)))
		gone = append(gone, id)
	}
	return gone, nil
}

// change is one attempt at a change of a conversation: what the
// operation did, the events to record and the metrics to count once the
// commit succeeds.
type change struct {
	x        *Inbox
	c        *Conversation
	prev     Conversation
	msgs     []*Message // every message, sorted, when loaded
	loaded   bool
	dirty    []*Message
	events   []Event
	effects  []func()
	counters map[string]float64
	presence map[string]Presence
	now      time.Time
	isNew    bool
	// sync forces the views to be synced even without a change (repairs).
	sync bool
}

// errNoChange: the operation found nothing to do; nothing is written.
var errNoChange = errors.New("inbox: no change")

func (ch *change) emit(typ, by string, data map[string]any) *Event {
	ch.events = append(ch.events, Event{Type: typ, Conv: ch.c.ID, At: ch.now, By: by, Data: data})
	return &ch.events[len(ch.events)-1]
}

func (ch *change) effect(f func()) { ch.effects = append(ch.effects, f) }

func (ch *change) count(field string, v float64) {
	if ch.counters == nil {
		ch.counters = map[string]float64{}
	}
	ch.counters[field] += v
}

// put adds or replaces a message.
func (ch *change) put(m *Message) {
	ch.dirty = append(ch.dirty, m)
	for i, old := range ch.msgs {
		if old.ID == m.ID {
			ch.msgs[i] = m
			sortMessages(ch.msgs)
			return
		}
	}
	ch.msgs = append(ch.msgs, m)
	sortMessages(ch.msgs)
}

func (ch *change) message(id string) *Message {
	for _, m := range ch.msgs {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (ch *change) newMessage(m *Message) *Message {
	ch.c.Seq++
	m.Seq = ch.c.Seq
	if m.Direction == In && m.needsAnswer() {
		ch.c.InSeq = m.Seq
	}
	ch.put(m)
	return m
}

func (ch *change) online(agent string) bool {
	return agent != "" && ch.presence[agent].Status == Online
}

// maxAttempts bounds the retries of a change that keeps losing the
// compare-and-set; at 50 concurrent claims each retry round has a winner.
const maxAttempts = 64

// update runs f on conversation id and commits what it changed, retrying
// from a fresh read when another change committed first. create, when
// set, makes the conversation if it does not exist. The policy is applied
// after f, so each change also carries out whatever alerts, escalations
// and reassignments are due at its moment (exactly once: they are part of
// the compare-and-set).
func (x *Inbox) update(ctx context.Context, id string, withMsgs bool, create func(now time.Time) *Conversation, f func(ch *change) error) (*Conversation, error) {
	for range maxAttempts {
		now := x.now()
		l, err := x.st.load(ctx, id, withMsgs, now.Add(x.opts.RepairAfter))
		if err != nil {
			x.m.redisErrors.Inc()
			return nil, unavailable("the inbox store cannot be reached", err)
		}
		ch := &change{x: x, c: l.conv, msgs: l.msgs, loaded: withMsgs, presence: l.presence, now: now}
		if ch.c == nil {
			if create == nil {
				return nil, notFound(id)
			}
			ch.c, ch.isNew = create(now), true
		}
		ch.prev = *ch.c
		before, _ := json.Marshal(ch.c)
		if err := f(ch); errors.Is(err, errNoChange) && !ch.sync {
			return ch.c, nil
		} else if err != nil && !errors.Is(err, errNoChange) {
			return ch.c, err
		}
		due := x.settle(ch)
		after, _ := json.Marshal(ch.c)
		changed := ch.isNew || len(ch.dirty) > 0 || len(ch.events) > 0 || string(before) != string(after)
		// The events say where the conversation is after them, in the
		// history as in the live stream.
		for i := range ch.events {
			e := &ch.events[i]
			e.Team, e.Owner = ch.c.Team, ch.c.Owner
			if !ch.isNew && (ch.prev.Team != ch.c.Team || ch.prev.Owner != ch.c.Owner) {
				e.Prev = &Holder{Team: ch.prev.Team, Owner: ch.prev.Owner}
			}
			e.State = summaryOf(ch.c, now)
		}
		if changed {
			ch.c.Updated = now
			if err := x.st.commit(ctx, ch.c, ch.dirty, ch.events); errors.Is(err, errConflict) {
				continue
			} else if err != nil {
				x.m.redisErrors.Inc()
				return nil, unavailable("the inbox store cannot be reached", err)
			}
		}
		if !changed && !ch.sync {
			return ch.c, nil
		}
		ids, err := x.st.sync(ctx, ch.c, due, ch.events, ch.counters, now)
		if err != nil {
			// The commit stands; the repair mark makes the timer sync
			// the views within RepairAfter.
			x.m.redisErrors.Inc()
			x.log.Warn("inbox: a change is stored but its views lag until the repair", zap.String("conversation", id), zap.Error(err))
		}
		for i := range ids {
			if i < len(ch.events) {
				ch.events[i].ID = ids[i]
			}
		}
		if changed {
			for _, e := range ch.effects {
				e()
			}
		}
		return ch.c, nil
	}
	return nil, unavailable("the conversation changes too often to update", errConflict)
}

// settle recomputes the conversation's clocks from its messages (when
// loaded), applies the policy, and returns the next due time.
func (x *Inbox) settle(ch *change) time.Time {
	c, now := ch.c, ch.now
	if ch.loaded {
		k := derive(ch.msgs, c.ClosedSeq)
		c.LastInbound, c.LastInboundID, c.LastAnswer, c.Unsettled = k.lastInbound, k.lastInboundID, k.lastAnswer, k.unsettled
		pending := c.Status == StatusOpen && !k.pendingSince.IsZero()
		switch {
		case !pending:
			c.PendingSince, c.PendingMsg = time.Time{}, ""
			c.Level, c.LevelReason, c.LevelAt, c.EscalatedAt = LevelNone, "", time.Time{}, time.Time{}
			c.WindowExpired, c.Lost = false, false
			if c.Failure != nil && !k.lastAnswer.Before(c.Failure.At) {
				c.Failure = nil
			}
		case c.PendingSince.IsZero():
			c.PendingSince, c.PendingMsg = k.pendingSince, k.pendingMsg
			c.Level, c.LevelReason, c.LevelAt = LevelNormal, ReasonThreshold, now
		default:
			c.PendingSince, c.PendingMsg = k.pendingSince, k.pendingMsg
		}
		if c.FirstResponse.IsZero() && !c.FirstInbound.IsZero() && k.lastAnswer.After(c.FirstInbound) {
			c.FirstResponse = k.lastAnswer
			team, d := c.Team, c.FirstResponse.Sub(c.FirstInbound)
			ch.effect(func() { x.m.firstResponse.WithLabelValues(x.m.team(team)).Observe(d.Seconds()) })
			ch.count("first_response_sum", d.Seconds())
			ch.count("first_response_count", 1)
		}
	}
	if c.Status != StatusOpen {
		return time.Time{}
	}
	p := x.policy(c.Team, c.Priority)
	a := Assess(c, p, ch.presence[c.Owner], now)
	team := c.Team
	if a.Level > c.Level && c.Pending() {
		for l := c.Level + 1; l <= a.Level; l++ {
			if l <= LevelNormal {
				continue
			}
			lvl, reason := l, a.Reason
			ch.emit(EvLevel, "", map[string]any{"level": lvl.String(), "reason": reason, "waited_s": int(a.Waited.Seconds())})
			switch lvl {
			case LevelCritical:
				to := []string{c.Owner}
				if c.Owner == "" {
					to = x.onlineMembers(ch, c.Team)
				}
				e := ch.emit(EvAlert, "", map[string]any{"level": lvl.String(), "reason": reason})
				e.To = to
			case LevelEscalated:
				e := ch.emit(EvEscalation, "", map[string]any{"level": lvl.String(), "reason": reason, "owner": c.Owner})
				e.To = x.users.Supervisors(c.Team)
				c.EscalatedAt = now
				ch.count("escalated", 1)
			}
			ch.effect(func() { x.m.escalations.WithLabelValues(x.m.team(team), lvl.String(), reason).Inc() })
		}
		c.Level, c.LevelReason, c.LevelAt = a.Level, a.Reason, now
	}
	if a.Unassign != "" && c.Owner != "" {
		reason, prev := a.Unassign, c.Owner
		c.Owner, c.ClaimedAt = "", time.Time{}
		ch.emit(EvUnassigned, "", map[string]any{"reason": reason, "from": prev})
		ch.effect(func() { x.m.unassigned.WithLabelValues(x.m.team(team), reason).Inc() })
	}
	if a.WindowExpired {
		c.WindowExpired = true
		ch.emit(EvWindowExpired, "", nil)
		ch.effect(func() { x.m.windowExpired.WithLabelValues(x.m.team(team)).Inc() })
	}
	if a.Lost != "" {
		c.Lost = true
		reason := a.Lost
		e := ch.emit(EvLost, "", map[string]any{"reason": reason})
		e.To = x.users.Supervisors(c.Team)
		ch.effect(func() { x.m.lost.WithLabelValues(x.m.team(team), reason).Inc() })
		ch.count("lost", 1)
	}
	next := Assess(c, p, ch.presence[c.Owner], now).Next
	if c.Unsettled > 0 {
		if t := now.Add(x.opts.SettleAfter); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func (x *Inbox) onlineMembers(ch *change, team string) []string {
	var out []string
	for _, u := range x.users.TeamMembers(team) {
		if ch.online(u.ID) {
			out = append(out, u.ID)
		}
	}
	return out
}

// Summary is a conversation as lists show it, with what its clocks say
// now.
type Summary struct {
	Status        Status    `json:"status"`
	Team          string    `json:"team"`
	Owner         string    `json:"owner,omitempty"`
	Priority      Priority  `json:"priority"`
	Level         Level     `json:"level"`
	Pending       bool      `json:"pending"`
	Seen          bool      `json:"seen"`
	PendingSince  time.Time `json:"pending_since,omitzero"`
	WindowExpires time.Time `json:"window_expires,omitzero"`
	Preview       string    `json:"preview,omitempty"`
}

func summaryOf(c *Conversation, now time.Time) *Summary {
	return &Summary{Status: c.Status, Team: c.Team, Owner: c.Owner, Priority: c.Priority, Level: c.Level,
		Pending: c.Pending(), Seen: c.Seen(), PendingSince: c.PendingSince, WindowExpires: c.WindowExpires(), Preview: c.Preview}
}

// ---- inbound messages, statuses and send results ----

// ConversationID returns the conversation of a customer: "wa" and the
// wa_id, or "u" and the business-scoped user id when Meta withholds the
// number.
func ConversationID(waID, userID string) string {
	if n := whatsapp.NormalizeNumber(waID); n != "" {
		return "wa" + n
	}
	var b strings.Builder
	for _, r := range userID {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "u" + b.String()
}

// Ingest stores a customer's message in its conversation, creating or
// reopening the conversation as the operating model says: a new chat is
// routed to a team's Unassigned (by the call it came from, keywords or the
// default team); a returning customer's chat goes to Unassigned too, or
// back to its last owner with sticky_owner when that owner is online. It
// is the webhook processor's subscriber: an error leaves the webhook
// pending for a retry, and a message already stored is not stored again.
func (x *Inbox) Ingest(ctx context.Context, in whatsapp.Inbound) error {
	id := ConversationID(in.From, in.UserID)
	if id == "" {
		x.log.Warn("inbox: a message without a sender is not stored", zap.String("message", in.ID))
		return nil
	}
	var origin *outbox.Record
	if in.Type != whatsapp.InboundReaction {
		r, err := x.opts.Outbox.Origin(ctx, in)
		switch {
		case errors.Is(err, outbox.ErrNotFound):
		case err != nil:
			return fmt.Errorf("inbox: finding the call of %s: %w", in.ID, err)
		default:
			at := in.Timestamp
			if at.IsZero() {
				at = x.now()
			}
			if lb := x.lookback(); !r.Sent.IsZero() && at.Sub(r.Sent) <= lb {
				origin = r
			}
		}
	}
	csat, isCSAT := csatScore(in)
	_, err := x.update(ctx, id, true, func(now time.Time) *Conversation {
		return &Conversation{ID: id, Contact: whatsapp.NormalizeNumber(in.From), Status: StatusOpen, Priority: PriorityMedium, Created: now}
	}, func(ch *change) error {
		c := ch.c
		if ch.message(in.ID) != nil {
			return errNoChange
		}
		if in.ProfileName != "" {
			c.Name = in.ProfileName
		}
		if in.UserID != "" {
			c.UserID = in.UserID
		}
		if in.PhoneNumberID != "" {
			c.PhoneNumberID = in.PhoneNumberID
		}
		m := inboundMessage(in, ch.now)
		if isCSAT && !ch.isNew {
			m.Type, m.Text = "csat", strconv.Itoa(csat)
			c.CSAT = csat
			team := c.Team
			ch.emit(EvCSAT, "", map[string]any{"score": csat})
			ch.effect(func() { x.m.csat.WithLabelValues(x.m.team(team), strconv.Itoa(csat)).Inc() })
			ch.count("csat_sum", float64(csat))
			ch.count("csat_count", 1)
			ch.newMessage(m)
			ch.effect(func() { x.m.messages.WithLabelValues("in", "button").Inc() })
			return nil
		}
		ctxCard := contextOf(origin, in)
		switch {
		case ch.isNew:
			c.Cycle = 1
			team, rule := x.cfg.Route(ctxCard, in.Text)
			c.Team, c.Context = team, ctxCard
			if origin != nil {
				ch.newMessage(automaticMessage(origin))
			}
			kind := "direct"
			if ctxCard != nil {
				kind = "deflection"
			}
			ch.emit(EvCreated, "", map[string]any{"route": rule, "origin": kind})
			ch.effect(func() { x.m.created.WithLabelValues(x.m.team(team), kind).Inc() })
		case c.Status == StatusResolved && m.needsAnswer():
			x.reopen(ch, "", ctxCard, origin)
		case ctxCard != nil && (c.Context == nil || ctxCard.SentAt.After(c.Context.SentAt)):
			c.Context = ctxCard
		}
		if c.FirstInbound.IsZero() && m.needsAnswer() {
			c.FirstInbound = m.Time
		}
		ch.newMessage(m)
		c.Preview, c.LastMsgAt = preview(m), maxTime(c.LastMsgAt, m.Time)
		ch.emit(EvMessageIn, "", map[string]any{"message": m.ID, "type": m.Type})
		kind := inKind(m.Type)
		ch.effect(func() { x.m.messages.WithLabelValues("in", kind).Inc() })
		return nil
	})
	return err
}

func (x *Inbox) lookback() time.Duration {
	if x.cfg.ContextLookback > 0 {
		return x.cfg.ContextLookback
	}
	return DefaultContextLookback
}

// reopen opens a resolved conversation for a new cycle. by is the agent
// who reopened it, empty for a returning customer.
func (x *Inbox) reopen(ch *change, by string, ctxCard *Context, origin *outbox.Record) {
	c := ch.c
	c.Status, c.Cycle = StatusOpen, c.Cycle+1
	c.LastOwner = c.Owner
	c.Owner, c.ClaimedAt = "", time.Time{}
	c.Resolution = nil
	c.FirstInbound, c.FirstResponse = time.Time{}, time.Time{}
	c.Handoffs, c.PingPong, c.LastHandoff, c.CSAT = 0, false, nil, 0
	switch {
	case by != "":
		c.Owner, c.ClaimedAt = by, ch.now
	case x.cfg.StickyOwner && ch.online(c.LastOwner):
		c.Owner, c.ClaimedAt = c.LastOwner, ch.now
	}
	if ctxCard != nil && (c.Context == nil || ctxCard.SentAt.After(c.Context.SentAt)) {
		// The customer comes back from a new call: the new call's
		// context and its team.
		c.Context = ctxCard
		c.Team, _ = x.cfg.Route(ctxCard, "")
		if origin != nil && ch.message(automaticID(origin)) == nil {
			ch.newMessage(automaticMessage(origin))
		}
	}
	who := "customer"
	if by != "" {
		who = "agent"
	}
	ch.emit(EvReopened, by, map[string]any{"by": who, "cycle": c.Cycle, "sticky": by == "" && c.Owner != ""})
	team := c.Team
	ch.effect(func() { x.m.reopens.WithLabelValues(x.m.team(team), who).Inc() })
}

func inboundMessage(in whatsapp.Inbound, now time.Time) *Message {
	at := in.Timestamp
	if at.IsZero() || at.After(now) {
		// A clock ahead of ours must not make a message wait less.
		at = now
	}
	m := &Message{ID: in.ID, Direction: In, Type: in.Type, Time: at, Text: in.Text, ContextID: in.ContextID, Contacts: in.Contacts}
	if in.Type == whatsapp.InboundButton || in.Type == whatsapp.InboundInteractive {
		m.Text, m.ButtonPayload = in.ButtonText, in.ButtonPayload
	}
	if md := in.Media; md != nil {
		m.Media = &Media{ID: md.ID, MimeType: md.MimeType, SHA256: md.SHA256, Caption: md.Caption, Filename: md.Filename, Voice: md.Voice}
		m.Text = md.Caption
	}
	if r := in.Reaction; r != nil {
		m.Reaction = &Reaction{MessageID: r.MessageID, Emoji: r.Emoji}
	}
	if l := in.Location; l != nil {
		m.Location = &Location{Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address}
	}
	if !rendered(in.Type) && len(in.Raw) > 0 && json.Valid(in.Raw) {
		m.Raw = json.RawMessage(in.Raw)
	}
	return m
}

// rendered reports whether the inbox shows a type as such; any other is
// kept raw and shown as "unsupported message (type)".
func rendered(t string) bool {
	switch t {
	case "text", "button", "interactive", "image", "audio", "video", "document", "sticker", "reaction", "location", "contacts":
		return true
	}
	return false
}

func contextOf(r *outbox.Record, in whatsapp.Inbound) *Context {
	if r == nil {
		return nil
	}
	num := func(k string) int { n, _ := strconv.Atoi(r.Meta[k]); return n }
	c := &Context{CallID: r.Meta["call_id"], Queue: r.Meta["queue"], Option: r.Meta["option"], Reason: r.Meta["reason"],
		Language: r.Meta["lang"], Waited: time.Duration(num("wait_s")) * time.Second, EWT: time.Duration(num("ewt_s")) * time.Second,
		Position: num("position"), Kind: r.Kind, Template: r.Template, WAMID: r.WAMID, Key: r.Key, SentAt: r.Sent}
	if c.CallID == "" {
		c.CallID, _, _ = strings.Cut(r.Key, ":")
	}
	if in.Type == whatsapp.InboundButton || in.Type == whatsapp.InboundInteractive {
		c.Button = in.ButtonText
	}
	return c
}

func automaticID(r *outbox.Record) string { return "a" + strings.ReplaceAll(r.Key, ":", "-") }

// automaticMessage is the deflection template the customer answered, shown
// at the top of the conversation. It never answers anything.
func automaticMessage(r *outbox.Record) *Message {
	state := StateSent
	if whatsapp.StatusRank(r.Status) > 0 {
		state = r.Status
	}
	return &Message{ID: automaticID(r), Direction: Out, Automatic: true, Type: "template", Time: r.Sent, State: state,
		WAMID: r.WAMID, OutboxKey: r.Key, StatusAt: r.StatusAt, AcceptedAt: r.Sent,
		Template: &TemplateRef{Name: r.Template, Kind: r.Kind}}
}

// csatScore reads a tap on the survey's buttons: payload
// "dfl:survey:<conversation>:<cycle>:<score>".
func csatScore(in whatsapp.Inbound) (int, bool) {
	key, ok := whatsapp.ParsePayload(in.ButtonPayload)
	if !ok || !strings.HasPrefix(key, "survey:") {
		return 0, false
	}
	i := strings.LastIndexByte(key, ':')
	n, err := strconv.Atoi(key[i+1:])
	if err != nil || n < 1 || n > 5 {
		return 0, false
	}
	return n, true
}

func preview(m *Message) string {
	s := m.Text
	switch {
	case m.Reaction != nil:
		s = m.Reaction.Emoji
	case s == "" && m.Media != nil:
		s = "[" + m.Type + "]"
	case s == "" && m.Location != nil:
		s = "[location]"
	case s == "" && m.Template != nil:
		s = "[template " + m.Template.Name + "]"
	case s == "":
		s = "[" + m.Type + "]"
	}
	if utf8.RuneCountInString(s) > 80 {
		r := []rune(s)
		s = string(r[:80]) + "…"
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// parseKey splits an inbox outbox key, "inbox:<conversation>:<message>"
// or "survey:<conversation>:<cycle>".
func parseKey(key string) (conv, msg string, ok bool) {
	kind, rest, ok := strings.Cut(key, ":")
	if !ok || (kind != "inbox" && kind != "survey") {
		return "", "", false
	}
	conv, msg, ok = strings.Cut(rest, ":")
	if !ok || conv == "" || msg == "" {
		return "", "", false
	}
	if kind == "survey" {
		msg = "s" + msg
	}
	return conv, msg, true
}

// ApplyStatus records a status webhook on the agent message or survey it
// is about: the ticks the agent sees, and, for "failed", the failure on
// the conversation (the chat stays pending: a failed reply answers
// nothing). It is the webhook processor's status subscriber; statuses of
// other messages are ignored. Applying a status twice, or an older one,
// changes nothing.
func (x *Inbox) ApplyStatus(ctx context.Context, s whatsapp.Status) error {
	key := s.BizOpaqueCallbackData
	if key == "" && s.WAMID != "" {
		k, err := x.opts.Outbox.KeyForWAMID(ctx, s.WAMID)
		if err != nil && !errors.Is(err, outbox.ErrNotFound) {
			return err
		}
		key = k
	}
	conv, msg, ok := parseKey(key)
	if !ok {
		return nil
	}
	d := delivery{state: s.Status, wamid: s.WAMID, at: s.Timestamp}
	if len(s.Errors) > 0 {
		d.code, d.title = s.Errors[0].Code, s.Errors[0].Title
	}
	return x.deliver(ctx, conv, msg, d)
}

// OutboxResult records the outbox's own outcome of a send (Meta's answer
// to the POST), which comes before any status webhook: an agent's reply
// stops the clock as soon as WhatsApp accepted it. Use it as
// outbox.Options.Results.
func (x *Inbox) OutboxResult(ctx context.Context, r outbox.Result) {
	conv, msg, ok := parseKey(r.Key)
	if !ok {
		return
	}
	d := delivery{state: r.State, wamid: r.WAMID, at: r.At, code: r.Code, title: r.Reason}
	if err := x.deliver(ctx, conv, msg, d); err != nil {
		// The status webhooks and the timer's settle check record it.
		x.log.Warn("inbox: recording a send result; the status webhook will", zap.String("key", r.Key), zap.Error(err))
	}
}

type delivery struct {
	state, wamid string
	at           time.Time
	code         int
	title        string
}

func (x *Inbox) deliver(ctx context.Context, conv, msg string, d delivery) error {
	_, err := x.update(ctx, conv, true, nil, func(ch *change) error {
		m := ch.message(msg)
		if m == nil {
			return errNoChange
		}
		if !applyDelivery(ch, m, d) {
			return errNoChange
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrNotFound {
		return nil
	}
	return err
}

// applyDelivery moves a message's state forward, never back, and records
// a failure on the conversation.
func applyDelivery(ch *change, m *Message, d delivery) bool {
	rank := whatsapp.StatusRank(d.state)
	if rank == 0 || rank <= whatsapp.StatusRank(m.State) {
		if d.wamid == "" || m.WAMID != "" {
			return false
		}
		// Only the wamid is new (the outbox's answer after a webhook).
		nm := *m
		nm.WAMID = d.wamid
		ch.put(&nm)
		return true
	}
	nm := *m
	nm.State = d.state
	if d.wamid != "" {
		nm.WAMID = d.wamid
	}
	at := d.at
	if at.IsZero() {
		at = ch.now
	}
	nm.StatusAt = at
	if d.state != StateFailed && nm.AcceptedAt.IsZero() {
		nm.AcceptedAt = maxTime(at, ch.now.Add(-time.Minute))
		// Statuses carry whole seconds; the reply was accepted no earlier
		// than it was written.
		nm.AcceptedAt = maxTime(nm.AcceptedAt, nm.Time)
	}
	if d.state == StateFailed {
		nm.Error = &Failure{Code: d.code, Title: d.title, Message: m.ID, At: at}
		if !nm.Automatic {
			ch.c.Failure = nm.Error
		}
		team, code := ch.c.Team, d.code
		ch.effect(func() { ch.x.m.replyFailures.WithLabelValues(ch.x.m.team(team), codeLabel(code)).Inc() })
	}
	ch.put(&nm)
	ch.emit(EvMessageStatus, "", map[string]any{"message": m.ID, "state": d.state, "code": d.code, "title": d.title})
	return true
}

// ---- agent operations ----

// Claim makes u the owner of a chat of its team's Unassigned. Of several
// concurrent claims exactly one wins; the others get a conflict naming the
// winner.
func (x *Inbox) Claim(ctx context.Context, u *User, id string) (*Conversation, error) {
	return x.update(ctx, id, false, nil, func(ch *change) error {
		c := ch.c
		if err := Can(u, ActClaim, c); err != nil {
			return forbidden(err)
		}
		if c.Owner == u.ID {
			return errNoChange
		}
		if c.Owner != "" {
			team := c.Team
			x.m.claims.WithLabelValues(x.m.team(team), "conflict").Inc()
			e := conflict("already_claimed", "conversation %s was taken by %s", c.ID, c.Owner)
			return e
		}
		c.Owner, c.ClaimedAt = u.ID, ch.now
		ch.emit(EvClaimed, u.ID, nil)
		team := c.Team
		ch.effect(func() { x.m.claims.WithLabelValues(x.m.team(team), "won").Inc() })
		return nil
	})
}

// ReplyRequest is an agent's free-text reply.
type ReplyRequest struct {
	Text string `json:"text"`
	// Quote is the id of a message of the conversation this one replies
	// to (shown quoted on WhatsApp).
	Quote string `json:"quote,omitempty"`
	// ClientID makes the request idempotent: the same id sends once.
	ClientID string `json:"client_id,omitempty"`
}

// maxText is WhatsApp's limit on a text message body.
const maxText = 4096

// Reply sends an agent's text. The first reply to an Unassigned chat takes
// it. It returns once the message is durable in the outbox (queued), so an
// acknowledged reply is never lost; its ticks follow as WhatsApp reports
// them. Outside the 24-hour window it is refused: only a template reaches
// the customer then.
func (x *Inbox) Reply(ctx context.Context, u *User, id string, r ReplyRequest) (*Message, error) {
	text := strings.TrimSpace(r.Text)
	switch {
	case text == "":
		return nil, invalid("text", "required")
	case utf8.RuneCountInString(text) > maxText:
		return nil, invalid("text", "%d characters; WhatsApp takes at most %d", utf8.RuneCountInString(text), maxText)
	case !utf8.ValidString(text):
		return nil, invalid("text", "not valid UTF-8")
	}
	msgID, err := messageID(r.ClientID)
	if err != nil {
		return nil, err
	}
	return x.send(ctx, u, id, msgID, false, func(ch *change, m *Message) (*whatsapp.Message, error) {
		c := ch.c
		if !c.WindowOpen(ch.now) {
			return nil, conflict("window_closed", "the 24-hour window closed at %s: only a template reaches the customer", c.WindowExpires().Format(time.RFC3339))
		}
		m.Type, m.Text = "text", text
		wm := whatsapp.NewTextMessage(c.Contact, text)
		if r.Quote != "" {
			q := ch.message(r.Quote)
			if q == nil {
				return nil, invalid("quote", "no message %q in this conversation", r.Quote)
			}
			wamid := q.WAMID
			if q.Direction == In {
				wamid = q.ID
			}
			if wamid == "" {
				return nil, invalid("quote", "message %q has no WhatsApp id yet", r.Quote)
			}
			m.ContextID = r.Quote
			wm.Context = &whatsapp.ReplyContext{MessageID: wamid}
		}
		return wm, nil
	})
}

// TemplateRequest is an agent's template send, filled from the
// conversation's context.
type TemplateRequest struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	ClientID string `json:"client_id,omitempty"`
}

// SendTemplate sends a template of the catalog, with its parameters filled
// from the call the customer came from: the only way to reach a customer
// after the 24-hour window. An agent chose it, so it answers.
func (x *Inbox) SendTemplate(ctx context.Context, u *User, id string, r TemplateRequest) (*Message, error) {
	if x.opts.Renderer == nil {
		return nil, &Error{Kind: ErrUnavailable, Code: "no_templates", Message: "no template catalog is configured"}
	}
	switch {
	case r.Name == "":
		return nil, invalid("name", "required")
	case r.Language == "":
		return nil, invalid("language", "required")
	}
	msgID, err := messageID(r.ClientID)
	if err != nil {
		return nil, err
	}
	return x.send(ctx, u, id, msgID, false, func(ch *change, m *Message) (*whatsapp.Message, error) {
		wm, err := x.opts.Renderer.Render(r.Name, r.Language, ch.c.Contact, callContext(ch.c, m.OutboxKey))
		if err != nil {
			return nil, invalid("name", "%v", err)
		}
		m.Type, m.Template = "template", templateRef(wm, outbox.KindAgent)
		return wm, nil
	})
}

func callContext(c *Conversation, key string) whatsapp.CallContext {
	cc := whatsapp.CallContext{CallerNumber: c.Contact, Key: key}
	if x := c.Context; x != nil {
		cc.CallID, cc.Queue, cc.MenuOption, cc.Reason, cc.Language, cc.Wait = x.CallID, x.Queue, x.Option, x.Reason, x.Language, x.Waited
	}
	return cc
}

func templateRef(wm *whatsapp.Message, kind string) *TemplateRef {
	t := &TemplateRef{Kind: kind}
	if wm.Template != nil {
		t.Name, t.Language = wm.Template.Name, wm.Template.Language.Code
		for _, comp := range wm.Template.Components {
			for _, p := range comp.Parameters {
				if p.Type == whatsapp.ParamText {
					t.Params = append(t.Params, p.Text)
				}
			}
		}
	}
	return t
}

func messageID(client string) (string, error) {
	if client == "" {
		var b [9]byte
		rand.Read(b[:])
		return "o" + hex.EncodeToString(b[:]), nil
	}
	if !validName(client) {
		return "", invalid("client_id", "%q: want up to 64 letters, digits, '-', '_' or '.'", client)
	}
	return "o" + client, nil
}

// sameOutbound reports whether two outbound messages say the same: the
// same type, text, quote and template.
func sameOutbound(a, b *Message) bool {
	if a.Type != b.Type || a.Text != b.Text || a.ContextID != b.ContextID {
		return false
	}
	if (a.Template == nil) != (b.Template == nil) {
		return false
	}
	return a.Template == nil || a.Template.Name == b.Template.Name && a.Template.Language == b.Template.Language
}

// send is the common path of a reply and a template: the message is
// stored in the conversation (taking an Unassigned chat), then enqueued;
// it is acknowledged only once the outbox holds it.
func (x *Inbox) send(ctx context.Context, u *User, id, msgID string, automatic bool,
	build func(ch *change, m *Message) (*whatsapp.Message, error)) (*Message, error) {
	var (
		out   *Message
		wm    *whatsapp.Message
		again bool
	)
	c, err := x.update(ctx, id, true, nil, func(ch *change) error {
		c := ch.c
		out, wm, again = nil, nil, false
		if err := Can(u, ActReply, c); err != nil {
			return forbidden(err)
		}
		if old := ch.message(msgID); old != nil {
			// The same client id again: its message exists; enqueue it
			// again (the outbox ignores a key it holds) so that a
			// request cut off before the enqueue still goes out once.
			// The request builds what it would send, on a copy: the
			// stored message keeps what the first request made of it.
			out, again = old, true
			scratch := *old
			if m, err := build(ch, &scratch); err == nil {
				// The same id must mean the same message: a retry
				// sends what the first request stored, never a new
				// text under its id.
				if !sameOutbound(&scratch, old) {
					return conflict("client_id_reused", "client_id %q was used for another message in this conversation", strings.TrimPrefix(msgID, "o"))
				}
				wm = m
			}
			return errNoChange
		}
		if c.Status != StatusOpen {
			return conflict("not_open", "conversation %s is resolved: reopen it first", c.ID)
		}
		m := &Message{ID: msgID, Direction: Out, Author: u.ID, Automatic: automatic, Time: ch.now, State: StateQueued,
			OutboxKey: "inbox:" + c.ID + ":" + msgID, AnswersSeq: c.InSeq}
		var err error
		if wm, err = build(ch, m); err != nil {
			return err
		}
		if c.Owner == "" {
			c.Owner, c.ClaimedAt = u.ID, ch.now
			ch.emit(EvClaimed, u.ID, map[string]any{"by_reply": true})
			team := c.Team
			ch.effect(func() { x.m.claims.WithLabelValues(x.m.team(team), "won").Inc() })
		}
		ch.newMessage(m)
		c.Preview, c.LastMsgAt = preview(m), maxTime(c.LastMsgAt, m.Time)
		ch.emit(EvMessageOut, u.ID, map[string]any{"message": m.ID, "type": m.Type})
		kind := "agent"
		if m.Type == "template" {
			kind = "template"
		}
		ch.effect(func() { x.m.messages.WithLabelValues("out", kind).Inc() })
		out = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	if again {
		if out.State != StateQueued || out.Error != nil {
			return out, nil
		}
		rec, err := x.opts.Outbox.Get(ctx, out.OutboxKey)
		if err == nil && rec != nil {
			return out, nil
		}
		if wm == nil && out.Type == "text" {
			// The request no longer builds (the window closed since):
			// what the agent wrote still goes out.
			wm = whatsapp.NewTextMessage(c.Contact, out.Text)
		}
		if wm == nil {
			return out, nil
		}
	}
	_, err = x.opts.Outbox.Enqueue(ctx, outbox.Job{Key: out.OutboxKey, Kind: outbox.KindAgent, Message: wm,
		Meta: map[string]string{"conversation": id, "message": out.ID, "agent": u.ID}})
	if err != nil {
		code, title := 0, "not queued: "+err.Error()
		e := unavailable("the reply could not be queued; it was not sent", err)
		if errors.Is(err, outbox.ErrOptedOut) {
			e = conflict("opted_out", "the customer opted out of WhatsApp messages")
			title = "the customer opted out"
		} else if errors.Is(err, outbox.ErrBudgetExhausted) {
			e = conflict("budget_exhausted", "the messaging tier's daily budget is spent")
			title = "messaging budget spent"
		}
		// Mark it failed so the agent is never unsure; if even that
		// fails, the timer's settle check finds it missing from the
		// outbox and marks it.
		if ferr := x.deliver(context.WithoutCancel(ctx), id, out.ID, delivery{state: StateFailed, code: code, title: title}); ferr != nil {
			x.log.Warn("inbox: marking an unqueued reply failed", zap.String("conversation", id), zap.Error(ferr))
		}
		return nil, e
	}
	return out, nil
}

// Seen records that u opened the chat, so a pending chat is "seen and
// unanswered" from now on, and sends WhatsApp's read receipt (blue ticks)
// for the customer's last message when mark_read is on.
func (x *Inbox) Seen(ctx context.Context, u *User, id string) (*Conversation, error) {
	var mark string
	c, err := x.update(ctx, id, false, nil, func(ch *change) error {
		c := ch.c
		mark = ""
		if err := Can(u, ActView, c); err != nil {
			return forbidden(err)
		}
		c.SeenAt, c.SeenBy = ch.now, u.ID
		if c.Pending() {
			ch.emit(EvSeen, u.ID, nil)
		}
		if x.cfg.markRead() && x.opts.Reader != nil && c.LastInboundID != "" && c.ReadMarked != c.LastInboundID && c.WindowOpen(ch.now) {
			mark = c.LastInboundID
			c.ReadMarked = mark
		}
		return nil
	})
	if err != nil || mark == "" {
		return c, err
	}
	if err := x.opts.Reader.MarkRead(ctx, mark, false); err != nil {
		// Blue ticks are a courtesy: the next open tries again.
		x.log.Info("inbox: marking a message read on WhatsApp failed", zap.String("message", mark), zap.Error(err))
		_, _ = x.update(context.WithoutCancel(ctx), id, false, nil, func(ch *change) error {
			if ch.c.ReadMarked != mark {
				return errNoChange
			}
			ch.c.ReadMarked = ""
			return nil
		})
	}
	return c, nil
}

// Typing shows the customer a typing indicator while u writes a reply.
// WhatsApp sends it only with a read receipt, so with mark_read off there
// is none.
func (x *Inbox) Typing(ctx context.Context, u *User, id string) error {
	l, err := x.st.load(ctx, id, false, time.Time{})
	if err != nil {
		return unavailable("the inbox store cannot be reached", err)
	}
	if l.conv == nil {
		return notFound(id)
	}
	if err := Can(u, ActReply, l.conv); err != nil {
		return forbidden(err)
	}
	if x.opts.Reader == nil || !x.cfg.markRead() || l.conv.LastInboundID == "" || !l.conv.WindowOpen(x.now()) {
		return nil
	}
	if err := x.opts.Reader.MarkRead(ctx, l.conv.LastInboundID, true); err != nil {
		return unavailable("WhatsApp refused the typing indicator", err)
	}
	return nil
}

// HandoffRequest passes a chat to a team or an agent. Reason, Priority,
// NextStep and Tag are required.
type HandoffRequest struct {
	ToTeam   string   `json:"to_team,omitempty"`
	ToAgent  string   `json:"to_agent,omitempty"`
	Reason   string   `json:"reason"`
	Priority Priority `json:"priority"`
	NextStep string   `json:"next_step"`
	Tag      string   `json:"tag"`
}

func (r *HandoffRequest) validate() error {
	sentence := func(field, v string, max int) error {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			return invalid(field, "required")
		case utf8.RuneCountInString(v) > max:
			return invalid(field, "at most %d characters", max)
		}
		return nil
	}
	if err := sentence("reason", r.Reason, 280); err != nil {
		return err
	}
	if r.Priority == "" {
		return invalid("priority", "required: high, medium or low")
	}
	if !r.Priority.valid() {
		return invalid("priority", "%q: want high, medium or low", r.Priority)
	}
	if err := sentence("next_step", r.NextStep, 280); err != nil {
		return err
	}
	if err := sentence("tag", r.Tag, 40); err != nil {
		return err
	}
	if r.ToTeam == "" && r.ToAgent == "" {
		return invalid("to_team", "to_team or to_agent is required")
	}
	return nil
}

// Handoff passes the chat with its context: who takes over, why, how
// urgent, what to do next, and a tag. A handoff to an agent needs an
// online agent (nothing waits on someone who is not there); a handoff to a
// team lands in its Unassigned. A handoff back to where the chat came from
// within the ping-pong window is flagged.
func (x *Inbox) Handoff(ctx context.Context, u *User, id string, r HandoffRequest) (*Conversation, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	return x.move(ctx, u, id, r.ToTeam, r.ToAgent, ActHandoff, func(ch *change, toTeam, toAgent string) {
		c := ch.c
		h := &Handoff{FromTeam: c.Team, FromAgent: c.Owner, ToTeam: toTeam, ToAgent: toAgent, Reason: strings.TrimSpace(r.Reason),
			Priority: r.Priority, NextStep: strings.TrimSpace(r.NextStep), Tag: strings.TrimSpace(r.Tag), By: u.ID, At: ch.now}
		if p := c.LastHandoff; p != nil && ch.now.Sub(p.At) <= x.pingPongWindow() && pingPong(p, c, toTeam, toAgent) {
			h.PingPong, c.PingPong = true, true
			ch.effect(func() { x.m.pingpongs.WithLabelValues(x.m.team(toTeam)).Inc() })
		}
		c.Handoffs++
		c.LastHandoff = h
		c.Priority = r.Priority
		if !slices.Contains(c.Tags, h.Tag) {
			c.Tags = append(c.Tags, h.Tag)
		}
		e := ch.emit(EvHandoff, u.ID, map[string]any{"handoff": h})
		if toAgent != "" {
			e.To = []string{toAgent}
		} else {
			e.To = x.onlineMembers(ch, toTeam)
		}
		ch.effect(func() { x.m.handoffs.WithLabelValues(x.m.team(toTeam)).Inc() })
	})
}

// pingPong reports whether a handoff to toTeam/toAgent sends c back
// where the previous handoff p took it from (A→B→A). When p crossed
// teams, A and B are the teams, whoever in them holds the chat: billing
// hands to support, an agent of support takes it and hands it back to
// billing. Within one team, A and B are who held it: an agent or the
// team's Unassigned.
func pingPong(p *Handoff, c *Conversation, toTeam, toAgent string) bool {
	if p.FromTeam != p.ToTeam {
		return c.Team == p.ToTeam && toTeam == p.FromTeam
	}
	return holder(p.ToTeam, p.ToAgent) == holder(c.Team, c.Owner) && holder(toTeam, toAgent) == holder(p.FromTeam, p.FromAgent)
}

func holder(team, agent string) string {
	if agent != "" {
		return "agent:" + agent
	}
	return "team:" + team
}

func (x *Inbox) pingPongWindow() time.Duration {
	if x.cfg.PingPongWindow > 0 {
		return x.cfg.PingPongWindow
	}
	return DefaultPingPongWindow
}

// ReassignRequest is a supervisor's reassignment.
type ReassignRequest struct {
	ToTeam  string `json:"to_team,omitempty"`
	ToAgent string `json:"to_agent,omitempty"`
}

// Reassign moves a chat to another agent or team, as only a supervisor
// may.
func (x *Inbox) Reassign(ctx context.Context, u *User, id string, r ReassignRequest) (*Conversation, error) {
	if r.ToTeam == "" && r.ToAgent == "" {
		return nil, invalid("to_agent", "to_agent or to_team is required")
	}
	return x.move(ctx, u, id, r.ToTeam, r.ToAgent, ActReassign, func(ch *change, toTeam, toAgent string) {
		e := ch.emit(EvReassigned, u.ID, map[string]any{"from_agent": ch.c.Owner, "from_team": ch.c.Team})
		if toAgent != "" {
			e.To = []string{toAgent}
		}
	})
}

// move is the common part of a handoff and a reassignment.
func (x *Inbox) move(ctx context.Context, u *User, id, toTeam, toAgent string, act Action, record func(ch *change, toTeam, toAgent string)) (*Conversation, error) {
	if toTeam != "" && x.cfg.team(toTeam) == nil {
		return nil, invalid("to_team", "%q is not a team (teams: %s)", toTeam, strings.Join(x.cfg.TeamNames(), ", "))
	}
	var agent *User
	if toAgent != "" {
		a, ok := x.users.User(toAgent)
		if !ok {
			return nil, invalid("to_agent", "%q is not a user", toAgent)
		}
		if toTeam != "" && !a.InTeam(toTeam) && !a.Supervisor() {
			return nil, invalid("to_agent", "%s is not in team %s", toAgent, toTeam)
		}
		agent = a
	}
	return x.update(ctx, id, false, nil, func(ch *change) error {
		c := ch.c
		if err := Can(u, act, c); err != nil {
			return forbidden(err)
		}
		if c.Status != StatusOpen {
			return conflict("not_open", "conversation %s is resolved", c.ID)
		}
		team := toTeam
		if team == "" {
			team = c.Team
			if agent != nil && !agent.InTeam(team) && len(agent.Teams) > 0 {
				team = agent.Teams[0]
			}
		}
		if agent != nil && !ch.online(agent.ID) {
			return conflict("agent_unavailable", "%s is %s: hand off to an online agent or to the team", agent.ID, orOffline(ch.presence[agent.ID].Status))
		}
		if agent != nil && agent.ID == c.Owner && team == c.Team {
			return conflict("same_owner", "%s already has conversation %s", agent.ID, c.ID)
		}
		record(ch, team, toAgent)
		c.Team = team
		c.Owner, c.ClaimedAt = "", time.Time{}
		if agent != nil {
			c.Owner, c.ClaimedAt = agent.ID, ch.now
		}
		return nil
	})
}

func orOffline(a Availability) Availability {
	if a == "" {
		return Offline
	}
	return a
}

// ResolveRequest closes a chat with a clear action.
type ResolveRequest struct {
	Note string      `json:"note"`
	Kind ClosingKind `json:"kind"`
}

// Resolve closes the current cycle with a closing note and a closing kind.
// With a survey configured and the window open, the CSAT survey goes out.
// A later customer message reopens the chat.
func (x *Inbox) Resolve(ctx context.Context, u *User, id string, r ResolveRequest) (*Conversation, error) {
	note := strings.TrimSpace(r.Note)
	switch {
	case note == "":
		return nil, invalid("note", "required: the closing note says what was done or agreed")
	case utf8.RuneCountInString(note) > 1000:
		return nil, invalid("note", "at most 1000 characters")
	case r.Kind == "":
		return nil, invalid("kind", "required: next_step, question or confirmation")
	case !slices.Contains(ClosingKinds(), r.Kind):
		return nil, invalid("kind", "%q: want next_step, question or confirmation", r.Kind)
	}
	var survey *Message
	var surveyMsg *whatsapp.Message
	c, err := x.update(ctx, id, true, nil, func(ch *change) error {
		c := ch.c
		survey, surveyMsg = nil, nil
		if err := Can(u, ActResolve, c); err != nil {
			return forbidden(err)
		}
		if c.Status != StatusOpen {
			return conflict("not_open", "conversation %s is already resolved", c.ID)
		}
		c.Resolution = &Resolution{Note: note, Kind: r.Kind, By: u.ID, At: ch.now, Unanswered: c.Pending()}
		c.Status, c.ClosedSeq = StatusResolved, c.InSeq
		if c.Owner == "" {
			c.Owner = u.ID
		}
		ch.emit(EvResolved, u.ID, map[string]any{"kind": r.Kind, "note": note, "unanswered": c.Resolution.Unanswered})
		agent, kind := u.ID, r.Kind
		ch.effect(func() { x.m.resolved.WithLabelValues(x.m.agent(agent), string(kind)).Inc() })
		ch.count("resolved:"+agent, 1)
		if s := x.cfg.Survey; s.Template != "" && x.opts.Renderer != nil && c.WindowOpen(ch.now) {
			key := fmt.Sprintf("survey:%s:%d", c.ID, c.Cycle)
			wm, err := x.opts.Renderer.Render(s.Template, s.Language, c.Contact, callContext(c, key))
			if err != nil {
				x.log.Warn("inbox: the survey template does not render; no survey", zap.Error(err))
				return nil
			}
			survey = &Message{ID: "s" + strconv.Itoa(c.Cycle), Direction: Out, Automatic: true, Type: "template", Time: ch.now,
				State: StateQueued, OutboxKey: key, Template: templateRef(wm, outbox.KindSurvey)}
			surveyMsg = wm
			ch.newMessage(survey)
			ch.effect(func() { x.m.messages.WithLabelValues("out", "survey").Inc() })
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if survey != nil {
		if _, err := x.opts.Outbox.Enqueue(ctx, outbox.Job{Key: survey.OutboxKey, Kind: outbox.KindSurvey, Message: surveyMsg,
			Meta: map[string]string{"conversation": id}}); err != nil {
			x.log.Warn("inbox: the survey could not be queued", zap.String("conversation", id), zap.Error(err))
			_ = x.deliver(context.WithoutCancel(ctx), id, survey.ID, delivery{state: StateFailed, title: "not queued"})
		}
	}
	return c, nil
}

// Reopen opens a resolved chat again, owned by u.
func (x *Inbox) Reopen(ctx context.Context, u *User, id string) (*Conversation, error) {
	return x.update(ctx, id, true, nil, func(ch *change) error {
		if err := Can(u, ActReopen, ch.c); err != nil {
			return forbidden(err)
		}
		if ch.c.Status != StatusResolved {
			return conflict("not_resolved", "conversation %s is open", ch.c.ID)
		}
		x.reopen(ch, u.ID, nil, nil)
		return nil
	})
}

// SetAvailability sets an agent's presence; a user sets its own, a
// supervisor anyone's. When an agent goes offline, its pending chats are
// checked by the timer at once and follow the escalation path after
// offline_grace.
func (x *Inbox) SetAvailability(ctx context.Context, u *User, agent string, a Availability) (Presence, error) {
	return x.setAvailability(ctx, u, agent, a, "")
}

// setAvailability sets agent's availability; absentFrom, when set, is the
// availability of a user the sweep found gone (Presence.Absent).
func (x *Inbox) setAvailability(ctx context.Context, u *User, agent string, a, absentFrom Availability) (Presence, error) {
	if !a.valid() {
		return Presence{}, invalid("status", "%q: want online, away or offline", a)
	}
	if agent == "" {
		agent = u.ID
	}
	if agent != u.ID && !u.Supervisor() {
		return Presence{}, forbidden(fmt.Errorf("%w: only a supervisor sets another user's availability", ErrForbidden))
	}
	if _, ok := x.users.User(agent); !ok {
		return Presence{}, &Error{Kind: ErrNotFound, Code: "not_found", Message: fmt.Sprintf("no user %q", agent)}
	}
	now := x.now()
	old, err := x.st.rdb.HGet(ctx, x.st.presenceKey(), agent).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Presence{}, unavailable("the inbox store cannot be reached", err)
	}
	var prev Presence
	_ = json.Unmarshal([]byte(old), &prev)
	p := Presence{Status: a, Since: now}
	if prev.Status == a {
		p.Since = prev.Since
	}
	if absentFrom != "" {
		p.Absent, p.Was = true, absentFrom
	}
	b, _ := json.Marshal(p)
	pipe := x.st.rdb.TxPipeline()
	pipe.HSet(ctx, x.st.presenceKey(), agent, b)
	if a == Offline && prev.Status != Offline {
		// Due at once: the timer sees the owner offline and schedules
		// the grace period.
		ids, err := x.st.rdb.ZRange(ctx, x.st.idxKey("mine-pending:"+agent), 0, -1).Result()
		if err != nil {
			return Presence{}, unavailable("the inbox store cannot be reached", err)
		}
		for _, id := range ids {
			pipe.ZAddLT(ctx, x.st.dueKey(), redis.Z{Score: float64(ms(now)), Member: id})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		x.m.redisErrors.Inc()
		return Presence{}, unavailable("the inbox store cannot be reached", err)
	}
	if prev.Status != a {
		if err := x.st.publish(ctx, Event{Type: EvAvailability, At: now, By: u.ID, Data: map[string]any{"agent": agent, "status": a}}); err != nil {
			x.log.Warn("inbox: publishing an availability change", zap.Error(err))
		}
	}
	return p, nil
}

// ---- the timer ----

// ProcessDue carries out the policy for every conversation due now:
// alerts, escalations, reassignments, window deadlines, repairs of cut
// short changes and checks of replies whose fate is not known. Each due
// conversation goes to one worker of one instance at a time, and every
// action is part of a compare-and-set, so each happens exactly once
// across workers, instances and restarts. It returns how many it handled.
func (x *Inbox) ProcessDue(ctx context.Context) (int, error) {
	total := 0
	for {
		now := x.now()
		items, err := x.st.claimDue(ctx, now, x.opts.Lease, x.opts.Batch)
		if err != nil {
			x.m.redisErrors.Inc()
			return total, err
		}
		if len(items) == 0 {
			return total, nil
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(x.opts.Workers)
		for _, it := range items {
			x.m.lateness.Observe(max(0, now.Sub(it.due).Seconds()))
			g.Go(func() error {
				if err := x.evaluate(gctx, it.id); err != nil && gctx.Err() == nil {
					// The lease ends and it comes due again.
					x.log.Warn("inbox: a due conversation failed; it comes due again after the lease",
						zap.String("conversation", it.id), zap.Error(err))
				}
				return nil
			})
		}
		g.Wait()
		total += len(items)
		if len(items) < x.opts.Batch {
			return total, nil
		}
	}
}

// evaluate applies the policy to one conversation, settles its unsettled
// replies from the outbox's records, and syncs its views and due time.
func (x *Inbox) evaluate(ctx context.Context, id string) error {
	var settle []*Message
	_, err := x.update(ctx, id, true, nil, func(ch *change) error {
		ch.sync = true
		settle = settle[:0]
		for _, m := range ch.msgs {
			if m.Direction == Out && m.State == StateQueued && m.OutboxKey != "" && ch.now.Sub(m.Time) >= x.opts.SettleAfter/2 {
				settle = append(settle, m)
			}
		}
		if len(settle) == 0 {
			return errNoChange
		}
		changed := false
		for _, m := range settle {
			rec, err := x.opts.Outbox.Get(ctx, m.OutboxKey)
			switch {
			case errors.Is(err, outbox.ErrNotFound):
				if ch.now.Sub(m.Time) >= x.opts.SettleAfter {
					changed = applyDelivery(ch, m, delivery{state: StateFailed, title: "never queued"}) || changed
				}
			case err != nil:
				return err
			case rec.State == "sent":
				st := rec.Status
				if whatsapp.StatusRank(st) == 0 || st == StateFailed && rec.StatusErrorCode == 0 {
					st = StateSent
				}
				d := delivery{state: st, wamid: rec.WAMID, at: rec.Sent}
				if st == StateFailed {
					d.code, d.title, d.at = rec.StatusErrorCode, rec.StatusError, rec.StatusAt
				}
				changed = applyDelivery(ch, m, d) || changed
			case rec.State == "failed":
				changed = applyDelivery(ch, m, delivery{state: StateFailed, code: rec.ErrorCode, title: rec.ErrorReason}) || changed
			}
		}
		if !changed {
			return errNoChange
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrNotFound {
		return x.st.rdb.ZRem(ctx, x.st.dueKey(), id).Err()
	}
	return err
}

// RefreshGauges sets the pending, open and availability gauges from the
// shared indexes: every instance reports the same numbers.
func (x *Inbox) RefreshGauges(ctx context.Context) {
	x.gaugeMu.Lock()
	defer x.gaugeMu.Unlock()
	pipe := x.st.rdb.Pipeline()
	type g struct {
		cmd *redis.IntCmd
		set func(float64)
	}
	var gs []g
	for _, t := range x.cfg.TeamNames() {
		for _, l := range PendingLevels() {
			gs = append(gs, g{pipe.ZCard(ctx, x.st.idxKey("pending:"+t+":"+l.String())), x.m.pending.WithLabelValues(t, l.String()).Set})
		}
		gs = append(gs, g{pipe.ZCard(ctx, x.st.idxKey("seen:"+t)), x.m.pendingSeen.WithLabelValues(t, "true").Set},
			g{pipe.ZCard(ctx, x.st.idxKey("unseen:"+t)), x.m.pendingSeen.WithLabelValues(t, "false").Set})
		open := pipe.ZCard(ctx, x.st.idxKey("open:"+t))
		un := pipe.ZCard(ctx, x.st.idxKey("unassigned:"+t))
		gs = append(gs, g{un, x.m.open.WithLabelValues(t, "false").Set})
		defer func() { x.m.open.WithLabelValues(t, "true").Set(float64(open.Val() - un.Val())) }()
	}
	pres := pipe.HGetAll(ctx, x.st.presenceKey())
	if _, err := pipe.Exec(ctx); err != nil {
		if ctx.Err() == nil {
			x.m.redisErrors.Inc()
		}
		return
	}
	for _, g := range gs {
		g.set(float64(g.cmd.Val()))
	}
	counts := map[Availability]int{}
	p := parsePresence(pres.Val())
	for _, u := range x.users.Users() {
		counts[orOffline(p[u.ID].Status)]++
	}
	for _, a := range []Availability{Online, Away, Offline} {
		x.m.agents.WithLabelValues(string(a)).Set(float64(counts[a]))
	}
}
