package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis layout. Every key of one conversation shares the hash tag
// {c:<id>}, and every shared index shares {inbox}, so each Lua script
// touches one slot and the layout works unchanged on a Redis Cluster:
//
//	<p>inbox:{c:<id>}:conv      hash: ver, doc (the Conversation as JSON)
//	<p>inbox:{c:<id>}:msgs      hash: message id → Message JSON
//	<p>inbox:{c:<id>}:history   stream: the conversation's events, append-only
//	<p>inbox:{inbox}:idx:<view> sorted sets: each view's members (see indexes)
//	<p>inbox:{inbox}:members    hash: id → "<ver>|<views>", the last synced state
//	<p>inbox:{inbox}:search     hash: id → folded name and number
//	<p>inbox:{inbox}:due        sorted set: id → the next due time (ms)
//	<p>inbox:{inbox}:events     stream: every event, for the live stream
//	<p>inbox:{inbox}:presence   hash: agent → Presence JSON
//	<p>inbox:{inbox}:day:<date> hash: today's counters for the dashboard
//
// A change is two steps. The conversation's own keys are updated by a
// compare-and-set on its version (commitScript). Then the shared indexes
// are made to reflect that version (syncScript), which ignores a version
// older than the one already synced, so concurrent changes never leave a
// view behind. A process that dies between the steps leaves the
// conversation due for a repair (markDirty), and the timer worker syncs it.
type store struct {
	rdb redis.UniversalClient
	p   string // key prefix + "inbox:"
	g   string // p + "{inbox}:"
}

func newStore(rdb redis.UniversalClient, prefix string) *store {
	p := prefix + "inbox:"
	return &store{rdb: rdb, p: p, g: p + "{inbox}:"}
}

func (s *store) convKey(id string) string    { return s.p + "{c:" + id + "}:conv" }
func (s *store) msgsKey(id string) string    { return s.p + "{c:" + id + "}:msgs" }
func (s *store) historyKey(id string) string { return s.p + "{c:" + id + "}:history" }
func (s *store) idxKey(view string) string   { return s.g + "idx:" + view }
func (s *store) membersKey() string          { return s.g + "members" }
func (s *store) searchKey() string           { return s.g + "search" }
func (s *store) dueKey() string              { return s.g + "due" }
func (s *store) eventsKey() string           { return s.g + "events" }
func (s *store) presenceKey() string         { return s.g + "presence" }
func (s *store) liveKey() string             { return s.g + "presence-live" }
func (s *store) dayKey(t time.Time) string   { return s.g + "day:" + t.UTC().Format("2006-01-02") }

// errConflict: another change committed first; load again and retry.
var errConflict = errors.New("inbox: conversation changed concurrently")

// loaded is what one read of a conversation returns.
type loaded struct {
	conv     *Conversation // nil: no such conversation
	msgs     []*Message    // sorted; only when asked for
	presence map[string]Presence
}

// load reads a conversation, its messages when withMsgs, and every
// agent's presence, in one round trip. dirty, when not zero, also marks
// the conversation due for a repair by then (see store).
func (s *store) load(ctx context.Context, id string, withMsgs bool, dirty time.Time) (*loaded, error) {
	pipe := s.rdb.Pipeline()
	doc := pipe.HGet(ctx, s.convKey(id), "doc")
	var msgs *redis.MapStringStringCmd
	if withMsgs {
		msgs = pipe.HGetAll(ctx, s.msgsKey(id))
	}
	pres := pipe.HGetAll(ctx, s.presenceKey())
	if !dirty.IsZero() {
		pipe.ZAddLT(ctx, s.dueKey(), redis.Z{Score: float64(dirty.UnixMilli()), Member: id})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("inbox: reading conversation %s: %w", id, err)
	}
	l := &loaded{presence: parsePresence(pres.Val())}
	if doc.Err() == nil {
		var c Conversation
		if err := json.Unmarshal([]byte(doc.Val()), &c); err != nil {
			return nil, fmt.Errorf("inbox: conversation %s is corrupt: %w", id, err)
		}
		l.conv = &c
	}
	if msgs != nil {
		for mid, raw := range msgs.Val() {
			var m Message
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				return nil, fmt.Errorf("inbox: message %s of %s is corrupt: %w", mid, id, err)
			}
			l.msgs = append(l.msgs, &m)
		}
		sortMessages(l.msgs)
	}
	return l, nil
}

func parsePresence(m map[string]string) map[string]Presence {
	out := make(map[string]Presence, len(m))
	for id, raw := range m {
		var p Presence
		if json.Unmarshal([]byte(raw), &p) == nil {
			out[id] = p
		}
	}
	return out
}

// commitScript writes a conversation if its version is still the one it
// was read at: the compare-and-set that makes every change atomic, and
// exactly one of concurrent claims win.
// KEYS: conv, msgs, history. ARGV: expected version, doc, message count,
// then id/json pairs, then event JSONs for the history.
var commitScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if cur ~= tonumber(ARGV[1]) then return {'conflict', tostring(cur)} end
redis.call('HSET', KEYS[1], 'ver', cur + 1, 'doc', ARGV[2])
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[i])
  i = i + 1
end
return {'ok', tostring(cur + 1)}
`)

// commit writes c (at c.Ver, which becomes c.Ver+1), the changed
// messages and the events, or returns errConflict.
func (s *store) commit(ctx context.Context, c *Conversation, msgs []*Message, events []Event) error {
	expected := c.Ver
	c.Ver++
	doc, err := json.Marshal(c)
	if err != nil {
		c.Ver = expected
		return fmt.Errorf("inbox: encoding conversation %s: %w", c.ID, err)
	}
	args := []any{expected, doc, len(msgs)}
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			c.Ver = expected
			return fmt.Errorf("inbox: encoding message %s: %w", m.ID, err)
		}
		args = append(args, m.ID, b)
	}
	for _, e := range events {
		// The history keeps what happened, not the row the live lists
		// redraw from: State is most of an event's size.
		e.State = nil
		b, _ := json.Marshal(e)
		args = append(args, b)
	}
	res, err := commitScript.Run(ctx, s.rdb, []string{s.convKey(c.ID), s.msgsKey(c.ID), s.historyKey(c.ID)}, args...).StringSlice()
	if err != nil {
		c.Ver = expected
		return fmt.Errorf("inbox: writing conversation %s: %w", c.ID, err)
	}
	if res[0] == "conflict" {
		c.Ver = expected
		return errConflict
	}
	return nil
}

// syncScript makes the shared indexes reflect one version of a
// conversation: the views it is in, with their scores, its due time and
// its search text. A version older than the one already synced changes
// nothing, so a slow writer never undoes a newer change; the same version
// again is a no-op, so repairs are safe. The events are appended to the
// live stream and the day's counters incremented either way: they
// happened, once, in the commit before.
// KEYS: members, due, events, search, day. ARGV: index key prefix, id,
// version, due ms (0: none), max stream length, search text, view count,
// view/score pairs, event count, event JSONs, then counter/amount pairs.
var syncScript = redis.NewScript(`
local pfx, id, ver = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[1], id)
local curver, had = 0, {}
if cur then
  local sep = string.find(cur, '|', 1, true)
  curver = tonumber(string.sub(cur, 1, sep - 1))
  for v in string.gmatch(string.sub(cur, sep + 1), '[^,]+') do had[v] = true end
end
local n = tonumber(ARGV[7])
local i = 8
local result = 'stale'
if ver >= curver then
  local want, list = {}, {}
  for _ = 1, n do
    want[ARGV[i]] = ARGV[i + 1]
    list[#list + 1] = ARGV[i]
    i = i + 2
  end
  for v in pairs(had) do
    if not want[v] then redis.call('ZREM', pfx .. v, id) end
  end
  for v, score in pairs(want) do redis.call('ZADD', pfx .. v, score, id) end
  redis.call('HSET', KEYS[1], id, ver .. '|' .. table.concat(list, ','))
  if ARGV[4] ~= '0' then
    redis.call('ZADD', KEYS[2], ARGV[4], id)
  else
    redis.call('ZREM', KEYS[2], id)
  end
  redis.call('HSET', KEYS[4], id, ARGV[6])
  result = 'ok'
else
  i = i + 2 * n
end
local ids = {result}
local ne = tonumber(ARGV[i])
i = i + 1
for _ = 1, ne do
  ids[#ids + 1] = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[i])
  i = i + 1
end
if i <= #ARGV then
  while i <= #ARGV do
    redis.call('HINCRBYFLOAT', KEYS[5], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[5], 8 * 86400)
end
return ids
`)

// view is one index entry: a view's name and the conversation's score in
// it.
type view struct {
	name  string
	score float64
}

// maxEvents bounds the live stream; a client that fell further behind
// reloads (Last-Event-ID older than the stream).
const maxEvents = 20000

// sync updates the shared indexes for c at its version, sets its due time
// (zero: none), appends events to the live stream and adds counters to
// the day's (of now), returning the events' ids.
func (s *store) sync(ctx context.Context, c *Conversation, due time.Time, events []Event, counters map[string]float64, now time.Time) ([]string, error) {
	views := indexes(c)
	args := []any{s.g + "idx:", c.ID, c.Ver, ms(due), maxEvents, searchText(c), len(views)}
	for _, v := range views {
		args = append(args, v.name, v.score)
	}
	args = append(args, len(events))
	for _, e := range events {
		b, _ := json.Marshal(e)
		args = append(args, b)
	}
	for k, v := range counters {
		args = append(args, k, v)
	}
	keys := []string{s.membersKey(), s.dueKey(), s.eventsKey(), s.searchKey(), s.dayKey(now)}
	res, err := syncScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("inbox: updating the views of %s: %w", c.ID, err)
	}
	return res[1:], nil
}

// publish appends events that belong to no conversation (availability)
// to the live stream.
func (s *store) publish(ctx context.Context, events ...Event) error {
	pipe := s.rdb.Pipeline()
	for _, e := range events {
		b, _ := json.Marshal(e)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.eventsKey(), MaxLen: maxEvents, Approx: true, Values: []any{"e", b}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("inbox: publishing: %w", err)
	}
	return nil
}

// Scores: views sort ascending. Mine puts pending chats first, oldest
// first, then the others by last activity.
const notPendingBase = 4e12

// indexes returns the views c belongs to. Unassigned and the pending
// views list the oldest waiting customer first.
func indexes(c *Conversation) []view {
	last := float64(ms(c.LastMsgAt))
	// All and resolved list the newest first: their scores are negated.
	out := []view{{"all", -last}}
	if c.Status == StatusResolved {
		at := -last
		if c.Resolution != nil {
			at = -float64(ms(c.Resolution.At))
		}
		out = append(out, view{"resolved", at}, view{"resolved:" + c.Team, at})
		if c.Owner != "" {
			out = append(out, view{"resolved-by:" + c.Owner, at})
		}
		return out
	}
	waiting := last
	if c.Pending() {
		waiting = float64(ms(c.PendingSince))
	}
	out = append(out, view{"open:" + c.Team, last})
	if c.Owner == "" {
		out = append(out, view{"unassigned", waiting}, view{"unassigned:" + c.Team, waiting})
		if c.Pending() {
			out = append(out, view{"unassigned-pending:" + c.Team, waiting})
		}
	} else {
		score := waiting
		if !c.Pending() {
			score = notPendingBase + last
		}
		out = append(out, view{"mine:" + c.Owner, score})
		if c.Pending() {
			out = append(out, view{"mine-pending:" + c.Owner, waiting})
		}
	}
	if c.Pending() {
		seen := "unseen"
		if c.Seen() {
			seen = "seen"
		}
		lvl := max(c.Level, LevelNormal).String()
		out = append(out, view{"pending", waiting}, view{"pending:" + c.Team, waiting},
			view{"pending:" + c.Team + ":" + lvl, waiting}, view{seen + ":" + c.Team, waiting})
	}
	return out
}

// searchText is what the search box matches: the folded profile name and
// the number.
func searchText(c *Conversation) string {
	return fold(c.Name) + " " + c.Contact
}

// dueItem is a conversation whose due time came.
type dueItem struct {
	id  string
	due time.Time
}

// claimDueScript hands due conversations to one worker: each is pushed
// lease into the future, so no other worker takes it meanwhile, and a
// worker that dies leaves it due again when the lease ends.
// KEYS: due. ARGV: now ms, lease ms, max.
var claimDueScript = redis.NewScript(`
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]), 'WITHSCORES')
local out = {}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), due[i])
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
end
return out
`)

func (s *store) claimDue(ctx context.Context, now time.Time, lease time.Duration, n int) ([]dueItem, error) {
	res, err := claimDueScript.Run(ctx, s.rdb, []string{s.dueKey()}, ms(now), lease.Milliseconds(), n).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("inbox: taking due conversations: %w", err)
	}
	out := make([]dueItem, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		score, _ := strconv.ParseFloat(res[i+1], 64)
		out = append(out, dueItem{id: res[i], due: time.UnixMilli(int64(score))})
	}
	return out, nil
}

// history returns the last n events of a conversation, oldest first.
func (s *store) history(ctx context.Context, id string, n int64) ([]Event, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.historyKey(id), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("inbox: reading the history of %s: %w", id, err)
	}
	out := make([]Event, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		if e, ok := decodeEvent(msgs[i]); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func decodeEvent(m redis.XMessage) (Event, bool) {
	raw, _ := m.Values["e"].(string)
	var e Event
	if json.Unmarshal([]byte(raw), &e) != nil {
		return Event{}, false
	}
	e.ID = m.ID
	return e, true
}

// docs reads many conversations in one round trip; missing ones are nil.
func (s *store) docs(ctx context.Context, ids []string) ([]*Conversation, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.convKey(id), "doc")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("inbox: reading conversations: %w", err)
	}
	out := make([]*Conversation, len(ids))
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			continue
		}
		var c Conversation
		if json.Unmarshal([]byte(cmd.Val()), &c) == nil {
			out[i] = &c
		}
	}
	return out, nil
}

// page reads up to limit+1 members of the views keys merged by score,
// starting after the cursor (score, id), in ascending order.
func (s *store) page(ctx context.Context, keys []string, after cursor, limit int) ([]redis.Z, error) {
	min := "-inf"
	if after.set {
		min = strconv.FormatFloat(after.score, 'f', -1, 64)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(keys))
	// Members tied on the cursor's score come again; a few extra cover them.
	n := int64(limit + 1 + 16)
	for i, k := range keys {
		cmds[i] = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: k, Start: min, Stop: "+inf", ByScore: true, Count: n})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("inbox: reading a view: %w", err)
	}
	var all []redis.Z
	seen := map[string]bool{}
	for i, c := range cmds {
		zs, offset := c.Val(), int64(0)
		for {
			kept := 0
			for _, z := range zs {
				id, _ := z.Member.(string)
				if seen[id] || (after.set && (z.Score < after.score || z.Score == after.score && id <= after.id)) {
					continue
				}
				seen[id] = true
				kept++
				all = append(all, z)
			}
			// A full read that was all ties on the cursor's score: read
			// on, or the page would stall on them.
			if int64(len(zs)) < n || kept > 0 {
				break
			}
			offset += n
			var err error
			zs, err = s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: keys[i], Start: min, Stop: "+inf", ByScore: true, Offset: offset, Count: n}).Result()
			if err != nil {
				return nil, fmt.Errorf("inbox: reading a view: %w", err)
			}
		}
	}
	sortZ(all)
	if len(all) > limit+1 {
		all = all[:limit+1]
	}
	return all, nil
}

// cursor is a position in a view: the last item's score and id.
type cursor struct {
	set   bool
	score float64
	id    string
}

func (c cursor) String() string {
	if !c.set {
		return ""
	}
	return strconv.FormatFloat(c.score, 'f', -1, 64) + "_" + c.id
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	score, id, ok := strings.Cut(s, "_")
	f, err := strconv.ParseFloat(score, 64)
	if !ok || err != nil || id == "" {
		return cursor{}, fmt.Errorf("cursor %.40q: want a cursor from a previous page", s)
	}
	return cursor{set: true, score: f, id: id}, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func sortZ(zs []redis.Z) {
	slices.SortFunc(zs, func(a, b redis.Z) int {
		switch {
		case a.Score < b.Score:
			return -1
		case a.Score > b.Score:
			return 1
		}
		return strings.Compare(a.Member.(string), b.Member.(string))
	})
}
