package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
)

// Views: the three of the operating model, and two for looking back.
const (
	ViewUnassigned = "unassigned"
	ViewMine       = "mine"
	ViewPending    = "pending"
	ViewResolved   = "resolved"
	ViewAll        = "all"
)

// Query selects a page of a view.
type Query struct {
	View string
	// Team narrows any view to one team (an agent's to one of its
	// own); Agent picks whose Mine a supervisor looks at.
	Team, Agent string
	// Tag, Priority and Level filter the page.
	Tag      string
	Priority Priority
	Level    string
	// Search matches the customer's name or number; it searches every
	// conversation of the view the user may see, newest first.
	Search string
	Cursor string
	Limit  int
}

// Item is a conversation in a list, with what its clocks say now.
type Item struct {
	*Conversation
	Pending       bool      `json:"pending"`
	Seen          bool      `json:"seen"`
	WindowExpires time.Time `json:"window_expires,omitzero"`
	WindowOpen    bool      `json:"window_open"`
	// Waited is the business time the oldest unanswered message waited,
	// in seconds, by the team's policy.
	Waited float64 `json:"waited_s"`
}

// Page is one page of a view.
type Page struct {
	View  string `json:"view"`
	Items []Item `json:"items"`
	// Next is the cursor of the next page, empty at the end.
	Next string `json:"next,omitempty"`
	// Total is the number of conversations in the view (before filters).
	Total int64 `json:"total"`
}

func (x *Inbox) item(c *Conversation, now time.Time) Item {
	it := Item{Conversation: c, Pending: c.Pending(), Seen: c.Seen(), WindowExpires: c.WindowExpires(), WindowOpen: c.WindowOpen(now)}
	if it.Pending {
		it.Waited = x.policy(c.Team, c.Priority).hours().Active(c.PendingSince, now).Seconds()
	}
	return it
}

// viewKeys returns the indexes that make up a view for u. Agents see the
// Unassigned of their teams and their own chats, never more.
func (x *Inbox) viewKeys(u *User, q Query) ([]string, error) {
	teams := u.Teams
	if q.Team != "" {
		if x.cfg.team(q.Team) == nil {
			return nil, invalid("team", "%q is not a team", q.Team)
		}
		if !u.Supervisor() && !u.InTeam(q.Team) {
			return nil, forbidden(fmt.Errorf("%w: %s is not in team %s", ErrForbidden, u.ID, q.Team))
		}
		teams = []string{q.Team}
	}
	each := func(prefix string) []string {
		var out []string
		for _, t := range teams {
			out = append(out, x.st.idxKey(prefix+t))
		}
		return out
	}
	switch q.View {
	case ViewUnassigned:
		if u.Supervisor() && q.Team == "" {
			return []string{x.st.idxKey("unassigned")}, nil
		}
		return each("unassigned:"), nil
	case ViewMine:
		agent := u.ID
		if q.Agent != "" && q.Agent != u.ID {
			if !u.Supervisor() {
				return nil, forbidden(fmt.Errorf("%w: only a supervisor looks at another agent's chats", ErrForbidden))
			}
			if _, ok := x.users.User(q.Agent); !ok {
				return nil, invalid("agent", "%q is not a user", q.Agent)
			}
			agent = q.Agent
		}
		return []string{x.st.idxKey("mine:" + agent)}, nil
	case ViewPending:
		if u.Supervisor() {
			if q.Team == "" {
				return []string{x.st.idxKey("pending")}, nil
			}
			return []string{x.st.idxKey("pending:" + q.Team)}, nil
		}
		return append(each("unassigned-pending:"), x.st.idxKey("mine-pending:"+u.ID)), nil
	case ViewResolved:
		if !u.Supervisor() {
			return []string{x.st.idxKey("resolved-by:" + u.ID)}, nil
		}
		if q.Team == "" {
			return []string{x.st.idxKey("resolved")}, nil
		}
		return []string{x.st.idxKey("resolved:" + q.Team)}, nil
	case ViewAll:
		if !u.Supervisor() {
			return nil, forbidden(fmt.Errorf("%w: only a supervisor lists every conversation", ErrForbidden))
		}
		return []string{x.st.idxKey("all")}, nil
	case "":
		return nil, invalid("view", "required: unassigned, mine, pending, resolved or all")
	}
	return nil, invalid("view", "%q: want unassigned, mine, pending, resolved or all", q.View)
}

// inView reports whether c belongs to the view for u (the search's test).
func inView(u *User, q Query, c *Conversation) bool {
	if Can(u, ActView, c) != nil {
		return false
	}
	if q.Team != "" && c.Team != q.Team {
		return false
	}
	switch q.View {
	case ViewUnassigned:
		return c.Status == StatusOpen && c.Owner == ""
	case ViewMine:
		agent := u.ID
		if q.Agent != "" {
			agent = q.Agent
		}
		return c.Status == StatusOpen && c.Owner == agent
	case ViewPending:
		return c.Pending()
	case ViewResolved:
		return c.Status == StatusResolved
	}
	return true
}

func (q *Query) matches(c *Conversation) bool {
	switch {
	case q.Team != "" && c.Team != q.Team:
		// The views whose index spans teams (Mine, All, an agent's
		// Resolved) narrow here.
		return false
	case q.Tag != "" && !slices.Contains(c.Tags, q.Tag):
		return false
	case q.Priority != "" && c.Priority != q.Priority:
		return false
	case q.Level != "" && max(c.Level, LevelNormal).String() != q.Level:
		return false
	}
	return true
}

// maxLimit bounds a page.
const maxLimit = 200

// List returns a page of a view, in the view's order: Unassigned and
// Pending oldest waiting customer first, Mine pending chats first,
// Resolved and All newest first.
func (x *Inbox) List(ctx context.Context, u *User, q Query) (*Page, error) {
	switch {
	case q.Limit == 0:
		q.Limit = 50
	case q.Limit < 0 || q.Limit > maxLimit:
		return nil, invalid("limit", "%d: want 1 to %d", q.Limit, maxLimit)
	}
	if q.Priority != "" && !q.Priority.valid() {
		return nil, invalid("priority", "%q: want high, medium or low", q.Priority)
	}
	if q.Level != "" && !slices.Contains([]string{"normal", "critical", "escalated"}, q.Level) {
		return nil, invalid("level", "%q: want normal, critical or escalated", q.Level)
	}
	keys, err := x.viewKeys(u, q)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(q.Search) != "" {
		return x.search(ctx, u, q)
	}
	cur, err := parseCursor(q.Cursor)
	if err != nil {
		return nil, invalid("cursor", "%v", err)
	}
	now := x.now()
	page := &Page{View: q.View, Items: []Item{}}
	pipe := x.st.rdb.Pipeline()
	cards := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cards[i] = pipe.ZCard(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	for _, c := range cards {
		page.Total += c.Val()
	}
	// Filters may drop members: read on until the page is full, within a
	// bound, and hand back a cursor where the reading stopped.
	for scanned := 0; len(page.Items) < q.Limit && scanned < 10*q.Limit+maxLimit; {
		zs, err := x.st.page(ctx, keys, cur, q.Limit)
		if err != nil {
			x.m.redisErrors.Inc()
			return nil, unavailable("the inbox store cannot be reached", err)
		}
		if len(zs) == 0 {
			cur = cursor{}
			break
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
		}
		docs, err := x.st.docs(ctx, ids)
		if err != nil {
			x.m.redisErrors.Inc()
			return nil, unavailable("the inbox store cannot be reached", err)
		}
		more := len(zs) > q.Limit
		for i, c := range docs {
			if len(page.Items) == q.Limit {
				more = true
				break
			}
			cur = cursor{set: true, score: zs[i].Score, id: ids[i]}
			scanned++
			if c == nil || !q.matches(c) || Can(u, ActView, c) != nil {
				continue
			}
			page.Items = append(page.Items, x.item(c, now))
		}
		if !more {
			cur = cursor{}
			break
		}
	}
	page.Next = cur.String()
	return page, nil
}

// search scans the search index for a name or number.
func (x *Inbox) search(ctx context.Context, u *User, q Query) (*Page, error) {
	term := fold(q.Search)
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, q.Search)
	if term == "" && digits == "" {
		return nil, invalid("q", "%q has nothing to search for", q.Search)
	}
	if digits != "" && !strings.ContainsFunc(term, unicode.IsLetter) {
		// A number as typed ("+54 9 11 5555-0001") is its digits.
		term = digits
	}
	// HSCAN's MATCH tests the fields (the ids), not the search text in
	// the values: the values are matched here.
	var ids []string
	var cur uint64
	for {
		kv, next, err := x.st.rdb.HScan(ctx, x.st.searchKey(), cur, "", 2000).Result()
		if err != nil {
			x.m.redisErrors.Inc()
			return nil, unavailable("the inbox store cannot be reached", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if strings.Contains(kv[i+1], term) {
				ids = append(ids, kv[i])
			}
		}
		if cur = next; cur == 0 || len(ids) > 5000 {
			break
		}
	}
	docs, err := x.st.docs(ctx, ids)
	if err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	now := x.now()
	page := &Page{View: q.View, Items: []Item{}}
	for _, c := range docs {
		if c != nil && inView(u, q, c) && q.matches(c) {
			page.Items = append(page.Items, x.item(c, now))
		}
	}
	slices.SortFunc(page.Items, func(a, b Item) int { return b.LastMsgAt.Compare(a.LastMsgAt) })
	page.Total = int64(len(page.Items))
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
	}
	return page, nil
}

// Counts are the live counts of the views a user has.
type Counts struct {
	Unassigned int64 `json:"unassigned"`
	Mine       int64 `json:"mine"`
	Pending    int64 `json:"pending"`
	// ByTeam, for supervisors: each team's Unassigned, pending by level,
	// and seen-and-unanswered.
	ByTeam map[string]TeamCounts `json:"by_team,omitempty"`
}

// TeamCounts are one team's counts.
type TeamCounts struct {
	Unassigned int64 `json:"unassigned"`
	Normal     int64 `json:"normal"`
	Critical   int64 `json:"critical"`
	Escalated  int64 `json:"escalated"`
	Seen       int64 `json:"seen"`
	Unseen     int64 `json:"unseen"`
}

// Counts returns u's view counts, precomputed in the indexes (one
// round trip, O(1) per view).
func (x *Inbox) Counts(ctx context.Context, u *User) (*Counts, error) {
	pipe := x.st.rdb.Pipeline()
	card := func(v string) *redis.IntCmd { return pipe.ZCard(ctx, x.st.idxKey(v)) }
	var un, pend []*redis.IntCmd
	teams := u.Teams
	if u.Supervisor() {
		teams = x.cfg.TeamNames()
		un, pend = []*redis.IntCmd{card("unassigned")}, []*redis.IntCmd{card("pending")}
	} else {
		for _, t := range teams {
			un = append(un, card("unassigned:"+t))
			pend = append(pend, card("unassigned-pending:"+t))
		}
		pend = append(pend, card("mine-pending:"+u.ID))
	}
	mine := card("mine:" + u.ID)
	type tc struct{ un, n, c, e, s, us *redis.IntCmd }
	byTeam := map[string]tc{}
	if u.Supervisor() {
		for _, t := range teams {
			byTeam[t] = tc{card("unassigned:" + t), card("pending:" + t + ":normal"), card("pending:" + t + ":critical"),
				card("pending:" + t + ":escalated"), card("seen:" + t), card("unseen:" + t)}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	out := &Counts{Mine: mine.Val()}
	for _, c := range un {
		out.Unassigned += c.Val()
	}
	for _, c := range pend {
		out.Pending += c.Val()
	}
	if len(byTeam) > 0 {
		out.ByTeam = map[string]TeamCounts{}
		for t, c := range byTeam {
			out.ByTeam[t] = TeamCounts{c.un.Val(), c.n.Val(), c.c.Val(), c.e.Val(), c.s.Val(), c.us.Val()}
		}
	}
	return out, nil
}

// Detail is one conversation as the conversation pane shows it.
type Detail struct {
	Item
	Messages []*Message `json:"messages"`
	// History is the conversation's events, oldest first.
	History []Event `json:"history"`
	// Handoff is the last handoff, which the receiver reads first.
	Handoff *Handoff `json:"handoff,omitempty"`
	// WindowLeft is how much of the 24-hour window is left, in seconds
	// (0 when closed: only templates).
	WindowLeft float64 `json:"window_left_s"`
	// Critical and Escalate are when the oldest unanswered message turns
	// critical and escalates, by the team's policy (business hours
	// included).
	CriticalAt time.Time `json:"critical_at,omitzero"`
	EscalateAt time.Time `json:"escalate_at,omitzero"`
	// Actions are what the user may do to it now.
	Actions []Action `json:"actions"`
}

// maxHistory bounds the events a detail carries.
const maxHistory = 500

// Get returns a conversation with its messages, history and context, if
// u may see it.
func (x *Inbox) Get(ctx context.Context, u *User, id string) (*Detail, error) {
	l, err := x.st.load(ctx, id, true, time.Time{})
	if err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	if l.conv == nil {
		return nil, notFound(id)
	}
	c := l.conv
	if err := Can(u, ActView, c); err != nil {
		return nil, forbidden(err)
	}
	hist, err := x.st.history(ctx, id, maxHistory)
	if err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	now := x.now()
	d := &Detail{Item: x.item(c, now), Messages: l.msgs, History: hist, Handoff: c.LastHandoff}
	if d.Messages == nil {
		d.Messages = []*Message{}
	}
	if c.WindowOpen(now) {
		d.WindowLeft = c.WindowExpires().Sub(now).Seconds()
	}
	if c.Pending() {
		p := x.policy(c.Team, c.Priority)
		h := p.hours()
		d.CriticalAt, d.EscalateAt = h.AddActive(c.PendingSince, p.CriticalAfter), h.AddActive(c.PendingSince, p.EscalateAfter)
	}
	for _, a := range Actions() {
		if Can(u, a, c) != nil {
			continue
		}
		switch {
		case a == ActClaim && (c.Owner != "" || c.Status != StatusOpen):
		case a == ActReopen && c.Status != StatusResolved:
		case (a == ActResolve || a == ActHandoff || a == ActReassign || a == ActReply) && c.Status != StatusOpen:
		default:
			d.Actions = append(d.Actions, a)
		}
	}
	return d, nil
}

// RenderedReply is a quick reply filled for one conversation.
type RenderedReply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// QuickReplies returns the quick replies filled with the conversation's
// context and the agent's name.
func (x *Inbox) QuickReplies(ctx context.Context, u *User, id string) ([]RenderedReply, error) {
	l, err := x.st.load(ctx, id, false, time.Time{})
	if err != nil {
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	if l.conv == nil {
		return nil, notFound(id)
	}
	c := l.conv
	if err := Can(u, ActView, c); err != nil {
		return nil, forbidden(err)
	}
	p := x.policy(c.Team, c.Priority)
	data := QuickReplyData{Name: firstName(c.Name), Agent: firstName(u.Name), Team: c.Team, ReplyMinutes: int((p.CriticalAfter + time.Minute - 1) / time.Minute)}
	if k := c.Context; k != nil {
		data.Queue, data.Option, data.Reason = k.Queue, k.Option, k.Reason
		data.WaitedMinutes, data.EWTMinutes = int((k.Waited+time.Minute-1)/time.Minute), int((k.EWT+time.Minute-1)/time.Minute)
	}
	var out []RenderedReply
	for _, q := range x.cfg.quickReplies() {
		r := x.replies[q.ID]
		var b strings.Builder
		if err := r.tpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("inbox: quick reply %s: %w", q.ID, err)
		}
		out = append(out, RenderedReply{ID: q.ID, Title: q.Title, Text: b.String()})
	}
	return out, nil
}

func firstName(s string) string {
	f, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	return f
}

// AgentView is an agent as the supervisor sees it.
type AgentView struct {
	*User
	Presence Presence `json:"presence"`
	// Load is the agent's open chats; Pending those waiting for them.
	Load    int64 `json:"load"`
	Pending int64 `json:"pending"`
}

// Agents lists every user with availability and load, for supervisors.
func (x *Inbox) Agents(ctx context.Context, u *User) ([]AgentView, error) {
	if !u.Supervisor() {
		return nil, forbidden(fmt.Errorf("%w: only a supervisor sees every agent", ErrForbidden))
	}
	pipe := x.st.rdb.Pipeline()
	pres := pipe.HGetAll(ctx, x.st.presenceKey())
	users := x.users.Users()
	load := make([]*redis.IntCmd, len(users))
	pend := make([]*redis.IntCmd, len(users))
	for i, a := range users {
		load[i] = pipe.ZCard(ctx, x.st.idxKey("mine:"+a.ID))
		pend[i] = pipe.ZCard(ctx, x.st.idxKey("mine-pending:"+a.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	p := parsePresence(pres.Val())
	out := make([]AgentView, len(users))
	for i, a := range users {
		pr := p[a.ID]
		pr.Status = orOffline(pr.Status)
		out[i] = AgentView{User: a, Presence: pr, Load: load[i].Val(), Pending: pend[i].Val()}
	}
	return out, nil
}

// Presence returns an agent's availability.
func (x *Inbox) Presence(ctx context.Context, agent string) (Presence, error) {
	raw, err := x.st.rdb.HGet(ctx, x.st.presenceKey(), agent).Result()
	if errors.Is(err, redis.Nil) {
		return Presence{Status: Offline}, nil
	}
	if err != nil {
		return Presence{}, unavailable("the inbox store cannot be reached", err)
	}
	p := parsePresence(map[string]string{agent: raw})[agent]
	p.Status = orOffline(p.Status)
	return p, nil
}

// Today is the supervisor's dashboard: the four metrics our users ask for,
// and the chats lost, since midnight UTC.
type Today struct {
	Date string `json:"date"`
	// FirstResponse is the mean first response time of today's answered
	// cycles, in seconds, and how many there were.
	FirstResponse      float64 `json:"first_response_s"`
	FirstResponseCount int64   `json:"first_response_count"`
	// Pending and SeenUnanswered are now; SeenPercent is seen-and-
	// unanswered as a share of pending.
	Pending        int64            `json:"pending"`
	SeenUnanswered int64            `json:"seen_unanswered"`
	SeenPercent    float64          `json:"seen_percent"`
	Resolved       map[string]int64 `json:"resolved_by_agent"`
	Escalated      int64            `json:"escalated"`
	Lost           int64            `json:"lost"`
	CSAT           float64          `json:"csat"`
	CSATCount      int64            `json:"csat_count"`
}

// Today returns today's dashboard, for supervisors.
func (x *Inbox) Today(ctx context.Context, u *User) (*Today, error) {
	if !u.Supervisor() {
		return nil, forbidden(fmt.Errorf("%w: only a supervisor sees the dashboard", ErrForbidden))
	}
	now := x.now()
	pipe := x.st.rdb.Pipeline()
	day := pipe.HGetAll(ctx, x.st.dayKey(now))
	pending := pipe.ZCard(ctx, x.st.idxKey("pending"))
	var seen []*redis.IntCmd
	for _, t := range x.cfg.TeamNames() {
		seen = append(seen, pipe.ZCard(ctx, x.st.idxKey("seen:"+t)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		x.m.redisErrors.Inc()
		return nil, unavailable("the inbox store cannot be reached", err)
	}
	f := func(k string) float64 { v, _ := strconv.ParseFloat(day.Val()[k], 64); return v }
	t := &Today{Date: now.UTC().Format("2006-01-02"), Pending: pending.Val(), Resolved: map[string]int64{},
		Escalated: int64(f("escalated")), Lost: int64(f("lost")), FirstResponseCount: int64(f("first_response_count")),
		CSATCount: int64(f("csat_count"))}
	for _, s := range seen {
		t.SeenUnanswered += s.Val()
	}
	if t.Pending > 0 {
		t.SeenPercent = 100 * float64(t.SeenUnanswered) / float64(t.Pending)
	}
	if t.FirstResponseCount > 0 {
		t.FirstResponse = f("first_response_sum") / float64(t.FirstResponseCount)
	}
	if t.CSATCount > 0 {
		t.CSAT = f("csat_sum") / float64(t.CSATCount)
	}
	for _, a := range x.users.Users() {
		if n := int64(f("resolved:" + a.ID)); n > 0 {
			t.Resolved[a.ID] = n
		}
	}
	return t, nil
}

// ---- the live stream ----

// ErrEventsLost: the events after that id were trimmed from the stream;
// the client reloads everything.
var ErrEventsLost = errors.New("inbox: events were missed; reload")

// Events returns the events after id (exclusive; "" or "$" for only new
// ones), waiting up to block for one when there are none. An id older
// than the stream's first event, once the stream has been trimmed,
// returns ErrEventsLost.
func (x *Inbox) Events(ctx context.Context, after string, block time.Duration) ([]Event, error) {
	if after == "" {
		after = "$"
	}
	if after != "$" {
		first, err := x.st.rdb.XRangeN(ctx, x.st.eventsKey(), "-", "+", 1).Result()
		if err != nil {
			return nil, unavailable("the inbox store cannot be reached", err)
		}
		if len(first) > 0 && streamIDLess(after, first[0].ID) {
			// Older than the first event. If nothing was ever removed
			// from the stream, it missed nothing ("0-0", LastEventID of
			// an empty stream, is older than every event). Otherwise
			// the trim may have taken events after it: Redis records
			// no trace of what MAXLEN trimmed (max-deleted-entry-id
			// follows XDEL only), so the client reloads rather than
			// risk a silent gap.
			info, err := x.st.rdb.XInfoStream(ctx, x.st.eventsKey()).Result()
			if err != nil {
				return nil, unavailable("the inbox store cannot be reached", err)
			}
			if info.EntriesAdded == 0 || info.EntriesAdded > info.Length {
				return nil, ErrEventsLost
			}
		}
	}
	res, err := x.st.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{x.st.eventsKey(), after}, Count: 500, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Event
	for _, s := range res {
		for _, m := range s.Messages {
			if e, ok := decodeEvent(m); ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// LastEventID returns the id of the newest event, for a client that
// starts from a full load.
func (x *Inbox) LastEventID(ctx context.Context) (string, error) {
	m, err := x.st.rdb.XRevRangeN(ctx, x.st.eventsKey(), "+", "-", 1).Result()
	if err != nil {
		return "", unavailable("the inbox store cannot be reached", err)
	}
	if len(m) == 0 {
		return "0-0", nil
	}
	return m[0].ID, nil
}

func streamIDLess(a, b string) bool {
	pa, sa := splitID(a)
	pb, sb := splitID(b)
	return pa < pb || pa == pb && sa < sb
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return a, b
}

// Visible reports whether u may see an event: supervisors see all; an
// agent sees events of its teams' Unassigned, of its own chats, of chats
// that just left either (so its lists drop them), and alerts addressed to
// it.
func Visible(u *User, e Event) bool {
	if u.Supervisor() || e.Type == EvAvailability || slices.Contains(e.To, u.ID) {
		return true
	}
	seen := func(team, owner string) bool { return owner == u.ID || owner == "" && u.InTeam(team) }
	if seen(e.Team, e.Owner) {
		return true
	}
	return e.Prev != nil && seen(e.Prev.Team, e.Prev.Owner)
}
