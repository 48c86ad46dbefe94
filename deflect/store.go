package deflect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// store keeps call records and cooldowns in Redis, shared by every
// instance: a restarted or other instance adopts a call from its record,
// so timers resume where they were and nothing is offered or sent twice.
type store struct {
	rdb redis.UniversalClient
	p   string // prefix + "call:"
	ttl time.Duration
}

// record is the durable part of a call. Times are Unix milliseconds, 0 when
// the moment has not happened.
type record struct {
	ID, Queue, Option, Reason, Lang, Number string
	Eligible                                bool
	State                                   State
	Entered, LastOffer, Accepted, Deflected int64
	Answered, Ended                         int64
	Offers                                  int
	Declined, Performed                     bool
	Outcome                                 string
	// Template is the template of the offer made, so an acceptance adopted
	// after a restart sends what was offered.
	Template string
}

func (r *record) fields() []any {
	b := func(v bool) string { return strconv.FormatBool(v) }
	return []any{
		"id", r.ID, "queue", r.Queue, "option", r.Option, "reason", r.Reason, "lang", r.Lang,
		"number", r.Number, "eligible", b(r.Eligible), "state", string(r.State),
		"entered_ms", r.Entered, "last_offer_ms", r.LastOffer, "accepted_ms", r.Accepted,
		"deflected_ms", r.Deflected, "answered_ms", r.Answered, "ended_ms", r.Ended,
		"offers", r.Offers, "declined", b(r.Declined), "performed", b(r.Performed), "outcome", r.Outcome,
		"template", r.Template,
	}
}

func parseRecord(f map[string]string) *record {
	i := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	b := func(k string) bool { v, _ := strconv.ParseBool(f[k]); return v }
	return &record{
		ID: f["id"], Queue: f["queue"], Option: f["option"], Reason: f["reason"], Lang: f["lang"],
		Number: f["number"], Eligible: b("eligible"), State: State(f["state"]),
		Entered: i("entered_ms"), LastOffer: i("last_offer_ms"), Accepted: i("accepted_ms"),
		Deflected: i("deflected_ms"), Answered: i("answered_ms"), Ended: i("ended_ms"),
		Offers: int(i("offers")), Declined: b("declined"), Performed: b("performed"), Outcome: f["outcome"],
		Template: f["template"],
	}
}

// save writes the whole record and appends the transition to the call's
// log, in one transaction.
func (s *store) save(ctx context.Context, r *record, transition string, at time.Time) error {
	pipe := s.rdb.TxPipeline()
	key := s.p + r.ID
	pipe.HSet(ctx, key, r.fields()...)
	pipe.PExpire(ctx, key, s.ttl)
	if transition != "" {
		pipe.RPush(ctx, key+":log", transition+"@"+strconv.FormatInt(at.UnixMilli(), 10))
		pipe.PExpire(ctx, key+":log", s.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("saving call %s: %w", r.ID, err)
	}
	return nil
}

// errNoRecord: the call has no record (new, expired, or Redis lost it).
var errNoRecord = errors.New("no call record")

func (s *store) load(ctx context.Context, id string) (*record, error) {
	f, err := s.rdb.HGetAll(ctx, s.p+id).Result()
	if err != nil {
		return nil, fmt.Errorf("loading call %s: %w", id, err)
	}
	if len(f) == 0 {
		return nil, errNoRecord
	}
	return parseRecord(f), nil
}

// transitions returns the call's timestamped transitions, oldest first.
func (s *store) transitions(ctx context.Context, id string) ([]string, error) {
	return s.rdb.LRange(ctx, s.p+id+":log", 0, -1).Result()
}

// takeCooldown claims the number's cooldown (one WhatsApp per number per
// window); false when another call holds it.
func (s *store) takeCooldown(ctx context.Context, number string, window time.Duration, now time.Time) (bool, error) {
	if window <= 0 {
		return true, nil
	}
	return s.rdb.SetNX(ctx, s.p+"cooldown:"+number, now.UTC().Format(time.RFC3339), window).Result()
}

// inCooldown reports whether the number had a WhatsApp within the window.
func (s *store) inCooldown(ctx context.Context, number string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.p+"cooldown:"+number).Result()
	return n > 0, err
}
