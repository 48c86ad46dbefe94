package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/redis/go-redis/v9"
)

// Record is what the outbox knows of one job.
type Record struct {
	Key, Kind, To, Template string
	// State is queued, sending, retry, indoubt, sent or failed.
	State    string
	Attempts int
	WAMID    string
	// Status is the furthest status Meta reported: sent, delivered, read
	// or failed.
	Status string
	// StatusAt is when Meta saw Status; StatusErrorCode and StatusError
	// are the code and title of a failed status.
	StatusAt        time.Time
	StatusErrorCode int
	StatusError     string
	// ErrorCode and ErrorReason are those of the last refused attempt.
	ErrorCode    int
	ErrorReason  string
	Created      time.Time
	Sent         time.Time
	Converted    time.Time
	ConvertedVia string
	// ResolvedBy is "webhook" when a status webhook, not the send's own
	// answer, settled a send in doubt.
	ResolvedBy string
	Meta       map[string]string
}

// ErrNotFound: no job has that key (or its record expired).
var ErrNotFound = errors.New("outbox: no such job")

// Get returns the record of a job.
func (o *Outbox) Get(ctx context.Context, key string) (*Record, error) {
	f, err := o.rdb.HGetAll(ctx, o.jobKey(key)).Result()
	if err != nil {
		o.metrics.redisErrors.Inc()
		return nil, fmt.Errorf("outbox: reading job %s: %w", key, err)
	}
	if len(f) == 0 {
		return nil, ErrNotFound
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	at := func(k string) time.Time {
		if n := num(k); n > 0 {
			return time.UnixMilli(n)
		}
		return time.Time{}
	}
	r := &Record{
		Key: f["key"], Kind: f["kind"], To: f["to"], Template: f["template"], State: f["state"],
		Attempts: int(num("attempts")), WAMID: f["wamid"], Status: f["status"],
		ErrorCode: int(num("error_code")), ErrorReason: f["error_reason"],
		Created: at("created_ms"), Sent: at("sent_ms"), Converted: at("converted_ms"),
		ConvertedVia: f["converted_via"], ResolvedBy: f["resolved_by"],
		StatusAt: at("status_ms"), StatusErrorCode: int(num("status_error_code")), StatusError: f["status_error"],
	}
	if f["meta"] != "" && f["meta"] != "null" {
		_ = json.Unmarshal([]byte(f["meta"]), &r.Meta)
	}
	return r, nil
}

// KeyForWAMID returns the job key of a sent message's wamid.
func (o *Outbox) KeyForWAMID(ctx context.Context, wamid string) (string, error) {
	key, err := o.rdb.Get(ctx, o.p+"wamid:"+wamid).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	return key, err
}

// Origin returns the deflection message (offer, perform or recover) a
// customer's message answers: the job a tap's payload names, else the job
// whose wamid the message quotes, else the last deflection message sent to
// the sender's number. It returns ErrNotFound when there is none; the
// caller decides whether the record is recent enough to matter.
func (o *Outbox) Origin(ctx context.Context, in whatsapp.Inbound) (*Record, error) {
	var keys []string
	if key, ok := whatsapp.ParsePayload(in.ButtonPayload); ok {
		keys = append(keys, key)
	}
	if in.ContextID != "" {
		key, err := o.KeyForWAMID(ctx, in.ContextID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			o.metrics.redisErrors.Inc()
			return nil, fmt.Errorf("outbox: origin of %s: %w", in.ID, err)
		}
		if key != "" {
			keys = append(keys, key)
		}
	}
	if n := whatsapp.NormalizeNumber(in.From); n != "" {
		key, err := o.rdb.Get(ctx, o.p+"lastdfl:"+n).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			o.metrics.redisErrors.Inc()
			return nil, fmt.Errorf("outbox: origin of %s: %w", in.ID, err)
		}
		if key != "" {
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		r, err := o.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if IsDeflection(r.Kind) && r.State == "sent" {
			return r, nil
		}
	}
	return nil, ErrNotFound
}

// ApplyStatus applies a status webhook. The job is found by the
// biz_opaque_callback_data the message carried, or by its wamid. A status
// applies only if it is further than the recorded one, so replays and
// out-of-order deliveries end at the furthest state; any status settles a
// send that was in doubt. applied reports whether anything changed.
func (o *Outbox) ApplyStatus(ctx context.Context, s whatsapp.Status) (bool, error) {
	rank := whatsapp.StatusRank(s.Status)
	if rank == 0 || s.WAMID == "" {
		// A status Meta added after this code was written, or a broken
		// one: nothing to apply, and retrying would not change that.
		o.metrics.statuses.WithLabelValues("other", "other", "unknown").Inc()
		return false, nil
	}
	key := s.BizOpaqueCallbackData
	if key == "" {
		k, err := o.KeyForWAMID(ctx, s.WAMID)
		if errors.Is(err, ErrNotFound) {
			o.metrics.statuses.WithLabelValues(statusLabel(s.Status), "other", "unknown").Inc()
			return false, nil // not ours (sent by another tool on the number)
		}
		if err != nil {
			o.metrics.redisErrors.Inc()
			return false, fmt.Errorf("outbox: looking up %s: %w", s.WAMID, err)
		}
		key = k
	}
	code, title := "", ""
	if len(s.Errors) > 0 {
		code, title = strconv.Itoa(s.Errors[0].Code), s.Errors[0].Title
	}
	at := s.Timestamp
	if at.IsZero() {
		at = o.opts.Now()
	}
	out, err := statusScript.Run(ctx, o.rdb, nil, o.p, key, s.WAMID, s.Status, rank, ms(at),
		o.opts.RecordTTL.Milliseconds(), ms(o.opts.Now()), code, title).StringSlice()
	if err != nil {
		o.metrics.redisErrors.Inc()
		return false, fmt.Errorf("outbox: applying %s to %s: %w", s.Status, key, err)
	}
	res, kind := out[0], out[1]
	o.metrics.statuses.WithLabelValues(statusLabel(s.Status), kindLabel(kind), res).Inc()
	return res == "applied" || res == "resolved", nil
}

// Convert ties a customer's message to the deflection it answers: a tap on
// the template's button (its payload "dfl:<key>", or the template's wamid
// as context), or any message from the number the last job went to, within
// ConversionWindow. The payload is whatsapp.PayloadPrefix and the job key,
// as the catalog's .Payload writes it. It returns nil when the message converts nothing, or
// when the job was already converted.
func (o *Outbox) Convert(ctx context.Context, in whatsapp.Inbound) (*whatsapp.Conversion, error) {
	key, _ := whatsapp.ParsePayload(in.ButtonPayload)
	via := "reply"
	if in.Type == whatsapp.InboundButton || in.Type == whatsapp.InboundInteractive {
		via = "tap"
	}
	now := in.Timestamp
	if now.IsZero() {
		now = o.opts.Now()
	}
	res, err := convertScript.Run(ctx, o.rdb, nil, o.p, key, in.ContextID, whatsapp.NormalizeNumber(in.From),
		ms(now), o.opts.ConversionWindow.Milliseconds(), via).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		o.metrics.redisErrors.Inc()
		return nil, fmt.Errorf("outbox: converting %s: %w", in.ID, err)
	}
	sent, _ := strconv.ParseInt(res[3], 10, 64)
	return &whatsapp.Conversion{Key: res[0], Kind: res[1], Template: res[2], SentAt: time.UnixMilli(sent), At: now, Via: via}, nil
}

// OptOut puts a number on the opt-out list; every later Enqueue to it is
// refused with ErrOptedOut.
func (o *Outbox) OptOut(ctx context.Context, number, reason string) error {
	n := whatsapp.NormalizeNumber(number)
	if n == "" {
		return fmt.Errorf("outbox: opt-out of %q: no digits", number)
	}
	v, _ := json.Marshal(map[string]any{"reason": reason, "at": o.opts.Now().UTC().Format(time.RFC3339)})
	if err := o.rdb.HSet(ctx, o.p+"optout", n, v).Err(); err != nil {
		o.metrics.redisErrors.Inc()
		return fmt.Errorf("outbox: opt-out: %w", err)
	}
	o.metrics.optouts.Inc()
	return nil
}

// OptIn takes a number off the opt-out list (the customer asked again).
func (o *Outbox) OptIn(ctx context.Context, number string) error {
	return o.rdb.HDel(ctx, o.p+"optout", whatsapp.NormalizeNumber(number)).Err()
}

// OptedOut reports whether a number is on the opt-out list.
func (o *Outbox) OptedOut(ctx context.Context, number string) (bool, error) {
	ok, err := o.rdb.HExists(ctx, o.p+"optout", whatsapp.NormalizeNumber(number)).Result()
	if err != nil {
		o.metrics.redisErrors.Inc()
		return false, fmt.Errorf("outbox: reading the opt-out list: %w", err)
	}
	return ok, nil
}

// Unreachable reports whether Meta said the number is not on WhatsApp
// (131026); the bridge stops offering WhatsApp to it.
func (o *Outbox) Unreachable(ctx context.Context, number string) (bool, error) {
	ok, err := o.rdb.HExists(ctx, o.p+"unreachable", whatsapp.NormalizeNumber(number)).Result()
	if err != nil {
		o.metrics.redisErrors.Inc()
		return false, fmt.Errorf("outbox: reading unreachable numbers: %w", err)
	}
	return ok, nil
}
