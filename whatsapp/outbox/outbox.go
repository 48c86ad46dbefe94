package outbox

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deflectd/deflectd/internal/retry"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Sender sends one message; *whatsapp.Client is one. Failures must be
// *whatsapp.Error so the outbox can tell what to do.
type Sender interface {
	Send(ctx context.Context, m *whatsapp.Message) (*whatsapp.SendResult, error)
}

// Validator checks a message before it is stored; *whatsapp.Catalog is one.
// A message it refuses never reaches Meta, so template errors (132000 and
// kin) are caught where they can be fixed.
type Validator interface {
	Validate(m *whatsapp.Message) error
}

// Options configures an Outbox. Redis, Sender and PhoneNumberID are
// required.
type Options struct {
	Redis redis.UniversalClient
	// Prefix starts every key the outbox writes. Default "deflectd:".
	Prefix string
	Sender Sender
	// Validator, when set, checks every template message at Enqueue.
	Validator Validator
	// PhoneNumberID is the business number the messages go from: the rate
	// limit and the tier budget are per number.
	PhoneNumberID string

	// MPS is the number's throughput limit, messages per second. Default 80.
	MPS int
	// RateMargin widens the one-second window of the rate limit, so that
	// the jitter between taking a slot and the request reaching Meta never
	// puts more than MPS requests in one second. Default 100 ms.
	RateMargin time.Duration
	// PairInterval is the least time between two messages to the same
	// recipient (Meta's pair rate limit). Default 6 s.
	PairInterval time.Duration
	// TierLimit is the messaging-tier budget: unique recipients in any
	// rolling 24 hours. When it is spent, Enqueue refuses new recipients
	// with ErrBudgetExhausted (callers stay in the queue). 0 means no limit.
	TierLimit int

	// Workers is how many messages this instance sends at once. Default 4.
	Workers int
	// Consumer names this instance in the consumer group. Default:
	// hostname, pid and a random suffix; with the default, Run takes over
	// at once the entries of this host's earlier processes that are gone
	// (see Run).
	Consumer string
	host     string // set with the default Consumer
	// ClaimAfter is how long a stream entry may stay unacknowledged before
	// another instance takes it over. Default 30 s.
	ClaimAfter time.Duration
	// InDoubtGrace is how long a send whose outcome is unknown waits for a
	// status webhook before it is sent again. Default 2 min.
	InDoubtGrace time.Duration
	// MaxAttempts bounds the sends of one job. Default 8. A request that
	// never left (no connection to the API: refused, DNS) does not count:
	// the API being down for longer than the backoff series must not fail
	// messages; they wait at MaxBackoff intervals until it is back.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound retry delays. Defaults 1 s, 5 min.
	MinBackoff, MaxBackoff time.Duration
	// BreakerCooldown is how long every send stops after a breaker error.
	// Default 5 min.
	BreakerCooldown time.Duration
	// PollInterval is how often delayed jobs are checked. Default 200 ms.
	PollInterval time.Duration
	// ReadBlock is how long a worker's stream read waits for an entry; it
	// also bounds how long Run takes to return after ctx ends, as a
	// blocked read is not interrupted. Default 1 s.
	ReadBlock time.Duration
	// RecordTTL is how long job records (and idempotency) last. Default
	// 7 days.
	RecordTTL time.Duration
	// ConversionWindow is how long after a message a reply or tap counts
	// as a conversion. Default 24 h.
	ConversionWindow time.Duration

	// Results, when set, is told the settled outcome of every attempt
	// recorded as sent or failed, with the wamid or Meta's code, in the
	// worker that made it, after the record is written. It must be short
	// and must not block for long. A call missed because the process died
	// is made up by the message's status webhooks and by Get; the inbox
	// uses it to show an agent's reply as sent, or failed, at once.
	Results func(ctx context.Context, r Result)

	// Observe, when set, is told each step a job takes: the recorded state
	// after an attempt (sent, retry, indoubt, failed), "postponed" when a
	// job waits for a breaker or an outcome, and "done" when an entry of a
	// finished job is dropped. It must not block. Tests and the demo's
	// progress display wait on it.
	Observe func(key, step string)

	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger and Registerer: defaults are none and a private registry.
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

const group = "senders"

func (o *Options) setDefaults() error {
	if o.Redis == nil || o.Sender == nil || o.PhoneNumberID == "" {
		return errors.New("outbox: Options.Redis, Sender and PhoneNumberID are required")
	}
	if o.Prefix == "" {
		o.Prefix = "deflectd:"
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	num(&o.MPS, 80)
	dur(&o.RateMargin, 100*time.Millisecond)
	dur(&o.PairInterval, 6*time.Second)
	num(&o.Workers, 4)
	dur(&o.ClaimAfter, 30*time.Second)
	dur(&o.InDoubtGrace, 2*time.Minute)
	num(&o.MaxAttempts, 8)
	dur(&o.MinBackoff, time.Second)
	dur(&o.MaxBackoff, 5*time.Minute)
	dur(&o.BreakerCooldown, 5*time.Minute)
	dur(&o.PollInterval, 200*time.Millisecond)
	dur(&o.ReadBlock, time.Second)
	dur(&o.RecordTTL, 7*24*time.Hour)
	dur(&o.ConversionWindow, 24*time.Hour)
	if o.TierLimit < 0 {
		return errors.New("outbox: Options.TierLimit must not be negative")
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		o.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(3))
		o.host = host
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return nil
}

// Outbox is the durable, shared send queue. Enqueue from anywhere; Run the
// workers in every instance.
type Outbox struct {
	opts    Options
	rdb     redis.UniversalClient
	p       string // key prefix + "wa:"
	log     *zap.Logger
	metrics *metrics

	// unreached is set when a retry is waiting because the API could not
	// be reached; the next send that gets through brings those retries
	// forward (resumeUnreached).
	unreached atomic.Bool
}

// New validates opts and returns an Outbox. It starts nothing.
func New(opts Options) (*Outbox, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("outbox: registering metrics: %w", err)
	}
	return &Outbox{opts: opts, rdb: opts.Redis, p: opts.Prefix + "wa:", log: opts.Logger, metrics: m}, nil
}

// Errors of Enqueue that are decisions, not failures.
var (
	// ErrOptedOut: the recipient asked for no more messages.
	ErrOptedOut = errors.New("outbox: recipient opted out")
	// ErrBudgetExhausted: the messaging tier's unique-recipient budget for
	// the rolling 24 hours is spent; keep the caller on the phone.
	ErrBudgetExhausted = errors.New("outbox: messaging-tier budget exhausted")
)

// Job is a message to send once.
type Job struct {
	// Key makes the job idempotent: the call id and the message kind, e.g.
	// "1795234870.2:offer". Enqueueing a key again sends nothing more.
	Key string
	// Kind is the message's purpose: offer, perform, recover or agent. It
	// labels metrics and conversions.
	Kind string
	// Message is what to send. Its BizOpaqueCallbackData is set to Key.
	Message *whatsapp.Message
	// Meta is context stored with the record (queue, option, reason,
	// wait) so that replies can be tied to the call.
	Meta map[string]string
}

// Message kinds, the bounded values of the "kind" label. Offer, perform
// and recover are deflection messages: a customer's answer to one converts
// it and carries the call's context into the inbox. Agent is a reply an
// agent wrote in the inbox; survey is the post-chat CSAT template.
const (
	KindOffer   = "offer"
	KindPerform = "perform"
	KindRecover = "recover"
	KindAgent   = "agent"
	KindSurvey  = "survey"
)

// Kinds returns every message kind, in label order.
func Kinds() []string {
	return []string{KindOffer, KindPerform, KindRecover, KindAgent, KindSurvey}
}

func knownKind(k string) bool {
	switch k {
	case KindOffer, KindPerform, KindRecover, KindAgent, KindSurvey:
		return true
	}
	return false
}

// IsDeflection reports whether kind is a message the bridge sent for a
// call (offer, perform or recover), as opposed to an inbox message.
func IsDeflection(kind string) bool {
	switch kind {
	case KindOffer, KindPerform, KindRecover:
		return true
	}
	return false
}

// Result is the settled outcome of one send attempt (Options.Results).
type Result struct {
	Key, Kind string
	// State is "sent" (Meta accepted the message: WAMID is its id) or
	// "failed" (Meta refused it for good: Code and Reason say why).
	State  string
	WAMID  string
	Code   int
	Reason string
	At     time.Time
}

// Enqueued says what Enqueue did.
type Enqueued int

const (
	// Queued: the job is new and will be sent.
	Queued Enqueued = iota + 1
	// Duplicate: a job with that key exists; nothing was added.
	Duplicate
)

// Enqueue adds a job unless its key is known. It returns ErrOptedOut or
// ErrBudgetExhausted when the message must not go, and an error when Redis
// cannot be reached (the caller keeps the customer on the phone).
func (o *Outbox) Enqueue(ctx context.Context, j Job) (Enqueued, error) {
	if j.Key == "" || strings.ContainsAny(j.Key, " \n") {
		return 0, fmt.Errorf("outbox: job key %q: want a non-empty key without spaces", j.Key)
	}
	if !knownKind(j.Kind) {
		return 0, fmt.Errorf("outbox: job %s: unknown kind %q", j.Key, j.Kind)
	}
	if j.Message == nil || j.Message.To == "" {
		return 0, fmt.Errorf("outbox: job %s: no message or recipient", j.Key)
	}
	if o.opts.Validator != nil && j.Message.Type == whatsapp.TypeTemplate {
		if err := o.opts.Validator.Validate(j.Message); err != nil {
			o.metrics.enqueued.WithLabelValues(kindLabel(j.Kind), "invalid").Inc()
			return 0, fmt.Errorf("outbox: job %s: %w", j.Key, err)
		}
	}
	m := *j.Message
	m.To = whatsapp.NormalizeNumber(m.To)
	if m.To == "" {
		return 0, fmt.Errorf("outbox: job %s: recipient %q has no digits", j.Key, j.Message.To)
	}
	m.BizOpaqueCallbackData = j.Key
	body, err := json.Marshal(&m)
	if err != nil {
		return 0, fmt.Errorf("outbox: job %s: encoding: %w", j.Key, err)
	}
	meta, _ := json.Marshal(j.Meta)
	template := ""
	if m.Template != nil {
		template = m.Template.Name
	}
	now := o.opts.Now()
	// The tier counts recipients of business-initiated conversations. An
	// agent's free-form reply can only go inside the customer-service
	// window the customer opened, so it spends none of it.
	tierLimit := o.opts.TierLimit
	if j.Kind == KindAgent && m.Type == whatsapp.TypeText {
		tierLimit = 0
	}
	res, err := enqueueScript.Run(ctx, o.rdb, nil,
		o.p, j.Key, ms(now), m.To, o.tierKey(), tierLimit, (24 * time.Hour).Milliseconds(), o.opts.RecordTTL.Milliseconds(),
		"key", j.Key, "kind", j.Kind, "to", m.To, "template", template, "msg", body, "meta", meta,
		"state", "queued", "attempts", 0, "created_ms", ms(now)).Text()
	if err != nil {
		o.metrics.redisErrors.Inc()
		return 0, fmt.Errorf("outbox: enqueue %s: %w", j.Key, err)
	}
	o.metrics.enqueued.WithLabelValues(j.Kind, res).Inc()
	switch res {
	case "queued":
		return Queued, nil
	case "duplicate":
		return Duplicate, nil
	case "opted_out":
		return 0, ErrOptedOut
	case "budget_exhausted":
		return 0, ErrBudgetExhausted
	}
	return 0, fmt.Errorf("outbox: enqueue %s: unexpected answer %q", j.Key, res)
}

// Run sends until ctx ends: Workers senders, the mover of delayed jobs and
// the claimer of abandoned ones. A send in flight when ctx ends is finished
// and recorded before Run returns.
func (o *Outbox) Run(ctx context.Context) error {
	err := o.rdb.XGroupCreateMkStream(ctx, o.p+"outbox", group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("outbox: creating the consumer group: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { o.takeOverPredecessors(ctx); return nil })
	for range o.opts.Workers {
		g.Go(func() error { o.work(ctx); return nil })
	}
	g.Go(func() error { o.every(ctx, o.opts.PollInterval, o.promote); return nil })
	g.Go(func() error { o.every(ctx, o.opts.ClaimAfter/2, o.claim); return nil })
	g.Go(func() error { o.every(ctx, 2*time.Second, o.refreshGauges); return nil })
	return g.Wait()
}

// every runs f every d until ctx ends.
func (o *Outbox) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// work reads new stream entries and processes them one at a time.
func (o *Outbox) work(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		streams, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: o.opts.Consumer, Streams: []string{o.p + "outbox", ">"},
			Count: 1, Block: o.opts.ReadBlock,
		}).Result()
		if errors.Is(err, redis.Nil) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			o.metrics.redisErrors.Inc()
			if !failing {
				o.log.Error("outbox: reading the stream; retrying", zap.Error(err))
				failing = true
			}
			retry.Sleep(ctx, time.Second)
			continue
		}
		failing = false
		for _, s := range streams {
			for _, msg := range s.Messages {
				key, _ := msg.Values["key"].(string)
				o.process(ctx, msg.ID, key)
			}
		}
	}
}

// claim takes over entries another consumer left unacknowledged for
// ClaimAfter (it died, or hangs), and processes them.
func (o *Outbox) claim(ctx context.Context) {
	start := "0-0"
	for ctx.Err() == nil {
		msgs, next, err := o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: o.p + "outbox", Group: group, Consumer: o.opts.Consumer,
			MinIdle: o.opts.ClaimAfter, Start: start, Count: 50,
		}).Result()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, redis.Nil) {
				o.metrics.redisErrors.Inc()
				o.log.Warn("outbox: claiming abandoned entries", zap.Error(err))
			}
			return
		}
		for _, msg := range msgs {
			key, _ := msg.Values["key"].(string)
			o.metrics.claimed.Inc()
			o.log.Info("outbox: took over an abandoned send", zap.String("key", key), zap.String("entry", msg.ID))
			o.process(ctx, msg.ID, key)
		}
		if next == "0-0" || len(msgs) == 0 {
			return
		}
		start = next
	}
}

// takeOverPredecessors claims, without waiting ClaimAfter, the entries of
// the consumers that were earlier processes on this host and are gone: a
// crash or a kill left them read and unsent, and a restart should not add
// ClaimAfter to those messages' delay (the chaos suite's SIGKILL after the
// enqueue measured 30 s). Each such consumer is then removed from the
// group, so that restarts do not pile consumers up in Redis. A consumer of
// another host, or of a process still alive here, is left to claim.
func (o *Outbox) takeOverPredecessors(ctx context.Context) {
	if o.opts.host == "" {
		return // a Consumer of the caller's naming: nothing to go by
	}
	stream := o.p + "outbox"
	consumers, err := o.rdb.XInfoConsumers(ctx, stream, group).Result()
	if err != nil {
		if ctx.Err() == nil {
			o.metrics.redisErrors.Inc()
			o.log.Warn("outbox: listing the consumers to take over; ClaimAfter will", zap.Error(err))
		}
		return
	}
	for _, c := range consumers {
		if c.Name == o.opts.Consumer || !predecessor(c.Name, o.opts.host, os.Getpid(), c.Idle >= 3*o.opts.ReadBlock, processAlive) {
			continue
		}
		// Its entries become this consumer's first, then it is removed
		// (it owns nothing by then), then they are sent.
		var taken []redis.XMessage
		complete := false
		for ctx.Err() == nil {
			pending, err := o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 50, Consumer: c.Name}).Result()
			if err != nil {
				break
			}
			if len(pending) == 0 {
				complete = true
				break
			}
			ids := make([]string, len(pending))
			for i, p := range pending {
				ids[i] = p.ID
			}
			msgs, err := o.rdb.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: group, Consumer: o.opts.Consumer, Messages: ids}).Result()
			if err != nil {
				break
			}
			if len(msgs) < len(ids) { // some entries were trimmed or deleted meanwhile
				got := map[string]bool{}
				for _, m := range msgs {
					got[m.ID] = true
				}
				for _, id := range ids {
					if !got[id] {
						o.rdb.XAck(ctx, stream, group, id)
					}
				}
			}
			taken = append(taken, msgs...)
		}
		if complete {
			o.rdb.XGroupDelConsumer(ctx, stream, group, c.Name)
		}
		for _, msg := range taken {
			key, _ := msg.Values["key"].(string)
			o.metrics.claimed.Inc()
			o.log.Info("outbox: took over a send of a process that is gone", zap.String("key", key), zap.String("consumer", c.Name))
			o.process(ctx, msg.ID, key)
		}
	}
}

// predecessor reports whether a consumer name of the default form
// (host-pid-suffix) is an earlier process of this host that is gone: its
// pid is not alive, or it is this process's own pid (a restarted
// container keeps its pid, often 1) and the consumer has been idle for
// several reads (quiet), which a live outbox of this process never is.
func predecessor(name, host string, self int, quiet bool, alive func(pid int) bool) bool {
	rest, ok := strings.CutPrefix(name, host+"-")
	if !ok || host == "" {
		return false
	}
	pidStr, suffix, ok := strings.Cut(rest, "-")
	if !ok || len(suffix) != 6 || strings.Trim(suffix, "0123456789abcdef") != "" {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == self {
		return quiet
	}
	return !alive(pid)
}

// processAlive reports whether a process with that pid exists here.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// promote moves due delayed jobs back to the stream.
func (o *Outbox) promote(ctx context.Context) {
	if err := promoteScript.Run(ctx, o.rdb, nil, o.p, ms(o.opts.Now()), 100).Err(); err != nil && ctx.Err() == nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: moving due retries", zap.Error(err))
	}
}

// process takes one job as far as it can go now.
func (o *Outbox) process(ctx context.Context, entry, key string) {
	if key == "" {
		o.ack(ctx, entry)
		return
	}
	f, err := o.rdb.HMGet(ctx, o.jobKey(key), "state", "sending_ms", "to", "kind").Result()
	if err != nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: reading a job; it stays pending", zap.String("key", key), zap.Error(err))
		return
	}
	state, _ := f[0].(string)
	to, _ := f[2].(string)
	kind, _ := f[3].(string)
	now := o.opts.Now()
	switch state {
	case "", "sent", "failed": // gone (expired) or done
		o.ack(ctx, entry)
		o.observe(key, "done")
		return
	case "sending", "indoubt":
		since, _ := strconv.ParseInt(str(f[1]), 10, 64)
		if due := since + o.opts.InDoubtGrace.Milliseconds(); ms(now) < due {
			o.delay(ctx, key, entry, due)
			return
		}
	}

	if until, reason := o.breakerOpen(ctx); !until.IsZero() {
		o.log.Debug("outbox: breaker open; send postponed", zap.String("key", key), zap.String("reason", reason))
		o.delay(ctx, key, entry, ms(until)+rand.Int64N(1000))
		return
	}
	if err := o.acquirePair(ctx, to); err != nil {
		return // ctx ended or Redis failed: the entry stays pending
	}

	res, err := startScript.Run(ctx, o.rdb, nil, o.p, key, ms(o.opts.Now()), o.opts.Consumer, o.opts.InDoubtGrace.Milliseconds()).StringSlice()
	if err != nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: starting a send; it stays pending", zap.String("key", key), zap.Error(err))
		return
	}
	switch res[0] {
	case "done":
		o.ack(ctx, entry)
		o.observe(key, "done")
		return
	case "wait":
		due, _ := strconv.ParseInt(res[1], 10, 64)
		o.delay(ctx, key, entry, due)
		return
	}
	var m whatsapp.Message
	if err := json.Unmarshal([]byte(res[1]), &m); err != nil {
		o.record(ctx, key, entry, res[2], to, kind, outcome{state: "failed", reason: "corrupt", err: err})
		return
	}
	if res[3] == "1" {
		o.metrics.indoubtResends.Inc()
		o.log.Warn("outbox: no webhook settled an earlier send in time; sending again", zap.String("key", key))
	}

	// The rate slot is the last thing taken before the POST, so the time
	// between the slot and the request reaching Meta is as short as it can
	// be. The job is "sending" meanwhile; the wait is short (under a
	// second), and a crash in it only costs the in-doubt grace, never a
	// duplicate.
	if err := o.acquireRate(context.WithoutCancel(ctx)); err != nil {
		o.record(context.WithoutCancel(ctx), key, entry, res[2], to, kind, outcome{state: "retry", due: o.opts.Now().Add(o.opts.MinBackoff), reason: "redis", err: err})
		return
	}
	// The POST is not cut short by ctx: a shutdown waits for its answer
	// (the client's own timeout bounds it), so it creates no doubt.
	sendCtx := context.WithoutCancel(ctx)
	start := time.Now()
	r, err := o.opts.Sender.Send(sendCtx, &m)
	o.metrics.sendDuration.Observe(time.Since(start).Seconds())
	o.record(sendCtx, key, entry, res[2], to, kind, o.outcomeOf(r, err, res[2]))
}

// outcome is what to record after an attempt.
type outcome struct {
	state  string // sent, retry, indoubt, failed
	wamid  string
	due    time.Time
	reason string
	code   int
	err    error
	werr   *whatsapp.Error
}

func (o *Outbox) outcomeOf(r *whatsapp.SendResult, err error, attemptStr string) outcome {
	if err == nil {
		return outcome{state: "sent", wamid: r.WAMID()}
	}
	var we *whatsapp.Error
	if !errors.As(err, &we) {
		we = &whatsapp.Error{Class: whatsapp.Retry, Reason: "unknown", InDoubt: true, Err: err}
	}
	oc := outcome{reason: we.Reason, code: we.Code, err: err, werr: we}
	attempt, _ := strconv.Atoi(attemptStr)
	now := o.opts.Now()
	switch {
	case we.InDoubt:
		oc.state = "indoubt"
		oc.due = now.Add(o.opts.InDoubtGrace)
	case we.Class == whatsapp.Breaker:
		o.openBreaker(we)
		oc.state, oc.due = "retry", now.Add(o.opts.BreakerCooldown)
	case we.Class == whatsapp.Retry && (attempt < o.opts.MaxAttempts || neverSent(we)):
		d := retry.Delay(attempt-1, o.opts.MinBackoff, o.opts.MaxBackoff, rand.Float64())
		if neverSent(we) {
			d = min(d, unreachedRetryMax)
		}
		if we.Reason == "pair_rate" && d < o.opts.PairInterval {
			d = o.opts.PairInterval
		}
		oc.state, oc.due = "retry", now.Add(d)
	case we.Class == whatsapp.Retry:
		oc.state, oc.reason = "failed", "retries_exhausted"
	default:
		oc.state = "failed"
	}
	return oc
}

// unreachedRetryMax bounds the backoff of a job that could not reach the
// API: such a try costs nothing at the API, and once one gets through the
// others follow at once (resumeUnreached), so the backlog of an outage
// drains within this long of the API's return rather than MaxBackoff.
const unreachedRetryMax = 30 * time.Second

// neverSent reports whether a failed request certainly did not reach the
// API, so that retrying it can neither send twice nor use up an attempt.
func neverSent(e *whatsapp.Error) bool {
	return e.Reason == "network" && !e.InDoubt
}

// record writes an attempt's outcome and acknowledges its entry. It runs
// even when the caller's context has ended, so an answer is not lost.
func (o *Outbox) record(ctx context.Context, key, entry, attempt, to, kind string, oc outcome) {
	now := o.opts.Now()
	fields := []any{}
	switch oc.state {
	case "sent":
		fields = append(fields, "wamid", oc.wamid, "sent_ms", ms(now), "error_code", "", "error_reason", "")
	default:
		msg := ""
		if oc.err != nil {
			msg = oc.err.Error()
		}
		fields = append(fields, "error_code", oc.code, "error_reason", oc.reason, "error", msg)
		if !oc.due.IsZero() {
			fields = append(fields, "next_ms", ms(oc.due))
		}
	}
	unreachable := 0
	if oc.state == "failed" && oc.code == 131026 {
		unreachable = 1
	}
	args := append([]any{o.p, key, entry, group, oc.state, attempt, ms(oc.due), o.opts.RecordTTL.Milliseconds(), to, unreachable, ms(now)}, fields...)
	res, err := recordScript.Run(context.WithoutCancel(ctx), o.rdb, nil, args...).Text()
	if err != nil {
		// The entry stays pending; whoever claims it finds the job
		// "sending" and waits for the webhook before resending.
		o.metrics.redisErrors.Inc()
		o.log.Error("outbox: recording a send failed; its outcome will be settled by webhook or resend",
			zap.String("key", key), zap.String("outcome", oc.state), zap.Error(err))
		return
	}
	if res == "ok" && oc.state == "retry" && oc.werr != nil && neverSent(oc.werr) {
		o.markUnreached(ctx, key, oc.due)
	}
	if res == "ok" && oc.state == "sent" && o.unreached.CompareAndSwap(true, false) {
		o.resumeUnreached(ctx)
	}
	if res == "ok" {
		o.observe(key, oc.state)
		if o.opts.Results != nil && (oc.state == "sent" || oc.state == "failed") {
			o.opts.Results(context.WithoutCancel(ctx), Result{Key: key, Kind: kind, State: oc.state,
				WAMID: oc.wamid, Code: oc.code, Reason: oc.reason, At: now})
		}
	}
	result, reason := oc.state, oc.reason
	if oc.state == "sent" {
		reason = ""
	}
	o.metrics.sends.WithLabelValues(kindLabel(kind), result, reasonLabel(reason)).Inc()
	if oc.werr != nil {
		o.metrics.sendErrors.WithLabelValues(oc.werr.CodeLabel()).Inc()
	}
	logf := o.log.Info
	switch oc.state {
	case "failed":
		logf = o.log.Warn
	case "retry", "indoubt":
		logf = o.log.Debug
	}
	logf("outbox: send "+oc.state, zap.String("key", key), zap.String("wamid", oc.wamid),
		zap.String("reason", oc.reason), zap.Int("code", oc.code), zap.String("record", res), zap.Error(oc.err))
}

// markUnreached notes a job that waits because the API could not be
// reached. The set expires on its own when the API never answers again.
func (o *Outbox) markUnreached(ctx context.Context, key string, due time.Time) {
	ctx = context.WithoutCancel(ctx)
	pipe := o.rdb.TxPipeline()
	pipe.ZAdd(ctx, o.p+"unreached", redis.Z{Score: float64(ms(due)), Member: key})
	pipe.PExpire(ctx, o.p+"unreached", 2*o.opts.MaxBackoff)
	if _, err := pipe.Exec(ctx); err != nil {
		o.metrics.redisErrors.Inc() // the retry still comes, at its backoff
		return
	}
	o.unreached.Store(true)
}

// resumeUnreached brings forward, to now, the retries that wait because
// the API could not be reached: a send just got through, so the API is
// back, and the backlog of an outage should not wait out each job's
// backoff, which reaches MaxBackoff (the chaos suite's 60 s Cloud API
// outage measured 60 s from the API's return to the last message). The
// rate limit still paces them.
func (o *Outbox) resumeUnreached(ctx context.Context) {
	n, err := resumeScript.Run(context.WithoutCancel(ctx), o.rdb, nil, o.p, ms(o.opts.Now())).Int()
	if err != nil {
		o.metrics.redisErrors.Inc()
		o.unreached.Store(true) // try again at the next send
		return
	}
	if n > 0 {
		o.log.Info("outbox: the API answers again; retries waiting for it are due now", zap.Int("jobs", n))
	}
}

func (o *Outbox) delay(ctx context.Context, key, entry string, due int64) {
	if err := delayScript.Run(ctx, o.rdb, nil, o.p, key, entry, group, due).Err(); err != nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: postponing a job; it stays pending", zap.String("key", key), zap.Error(err))
		return
	}
	o.observe(key, "postponed")
}

func (o *Outbox) observe(key, step string) {
	if o.opts.Observe != nil {
		o.opts.Observe(key, step)
	}
}

func (o *Outbox) ack(ctx context.Context, entry string) {
	if entry == "" {
		return
	}
	if err := ackScript.Run(ctx, o.rdb, nil, o.p, entry, group).Err(); err != nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: acknowledging an entry", zap.String("entry", entry), zap.Error(err))
	}
}

// acquirePair waits for the recipient's pair spacing, shared by every
// instance through Redis.
func (o *Outbox) acquirePair(ctx context.Context, to string) error {
	for {
		ok, err := o.rdb.SetNX(ctx, o.p+"pair:"+o.opts.PhoneNumberID+":"+to, 1, o.opts.PairInterval).Result()
		if err != nil {
			return o.redisFailed(ctx, "pair limit", err)
		}
		if ok {
			break
		}
		ttl, err := o.rdb.PTTL(ctx, o.p+"pair:"+o.opts.PhoneNumberID+":"+to).Result()
		if err != nil {
			return o.redisFailed(ctx, "pair limit", err)
		}
		if !retry.Sleep(ctx, max(ttl, time.Millisecond)) {
			return ctx.Err()
		}
	}
	return nil
}

// acquireRate waits for a slot of the number's rate limit, shared by every
// instance through Redis.
func (o *Outbox) acquireRate(ctx context.Context) error {
	window := time.Second + o.opts.RateMargin
	for {
		wait, err := rateScript.Run(ctx, o.rdb, []string{o.p + "rate:" + o.opts.PhoneNumberID},
			o.opts.MPS, window.Milliseconds(), randomHex(8)).Int64()
		if err != nil {
			return o.redisFailed(ctx, "rate limit", err)
		}
		if wait <= 0 {
			return nil
		}
		o.metrics.rateWaits.Inc()
		if !retry.Sleep(ctx, time.Duration(wait)*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (o *Outbox) redisFailed(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil {
		o.metrics.redisErrors.Inc()
		o.log.Warn("outbox: "+what+": Redis failed; the job stays pending", zap.Error(err))
	}
	return err
}

// breakerOpen returns when the breaker closes (zero when it is closed)
// and why it opened.
func (o *Outbox) breakerOpen(ctx context.Context) (time.Time, string) {
	key := o.p + "breaker:" + o.opts.PhoneNumberID
	pipe := o.rdb.Pipeline()
	get := pipe.Get(ctx, key)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, "" // Redis errors surface elsewhere
	}
	if get.Err() != nil || ttl.Val() <= 0 {
		o.metrics.breakerOpen.Set(0)
		return time.Time{}, ""
	}
	o.metrics.breakerOpen.Set(1)
	return o.opts.Now().Add(ttl.Val()), get.Val()
}

// openBreaker stops every instance's sends for BreakerCooldown. It is an
// alert: a human must fix the token or the account.
func (o *Outbox) openBreaker(e *whatsapp.Error) {
	key := o.p + "breaker:" + o.opts.PhoneNumberID
	reason := fmt.Sprintf("%s (code %d)", e.Reason, e.Code)
	if err := o.rdb.Set(context.Background(), key, reason, o.opts.BreakerCooldown).Err(); err != nil {
		o.metrics.redisErrors.Inc()
	}
	o.metrics.breakerOpen.Set(1)
	o.metrics.breakerTrips.WithLabelValues(reasonLabel(e.Reason)).Inc()
	o.log.Error("outbox: WhatsApp refused the account or token; all sends stopped",
		zap.String("reason", e.Reason), zap.Int("code", e.Code), zap.Duration("for", o.opts.BreakerCooldown), zap.Error(e))
}

// BreakerState reports whether sends are stopped, until when, and why.
func (o *Outbox) BreakerState(ctx context.Context) (open bool, until time.Time, reason string) {
	until, reason = o.breakerOpen(ctx)
	return !until.IsZero(), until, reason
}

// BudgetLeft returns how many new recipients the messaging tier allows in
// the rolling 24 hours, and -1 without a limit. The bridge checks it before
// offering WhatsApp.
func (o *Outbox) BudgetLeft(ctx context.Context) (int, error) {
	if o.opts.TierLimit == 0 {
		return -1, nil
	}
	pipe := o.rdb.TxPipeline()
	pipe.ZRemRangeByScore(ctx, o.tierKey(), "-inf", strconv.FormatInt(ms(o.opts.Now().Add(-24*time.Hour)), 10))
	card := pipe.ZCard(ctx, o.tierKey())
	if _, err := pipe.Exec(ctx); err != nil {
		o.metrics.redisErrors.Inc()
		return 0, fmt.Errorf("outbox: reading the tier budget: %w", err)
	}
	left := o.opts.TierLimit - int(card.Val())
	return max(left, 0), nil
}

// refreshGauges refreshes the gauges of the outbox's depth, age and budget.
func (o *Outbox) refreshGauges(ctx context.Context) {
	pipe := o.rdb.Pipeline()
	xlen := pipe.XLen(ctx, o.p+"outbox")
	delayed := pipe.ZCard(ctx, o.p+"delayed")
	first := pipe.XRangeN(ctx, o.p+"outbox", "-", "+", 1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() == nil {
			o.metrics.redisErrors.Inc()
		}
		return
	}
	o.metrics.depth.Set(float64(xlen.Val()))
	o.metrics.delayed.Set(float64(delayed.Val()))
	age := 0.0
	if msgs := first.Val(); len(msgs) > 0 {
		if t, err := strconv.ParseInt(strings.SplitN(msgs[0].ID, "-", 2)[0], 10, 64); err == nil {
			age = max(0, float64(ms(o.opts.Now())-t)/1000)
		}
	}
	o.metrics.oldestAge.Set(age)
	if left, err := o.BudgetLeft(ctx); err == nil {
		o.metrics.budgetLeft.Set(float64(left))
	}
	o.breakerOpen(ctx)
}

func (o *Outbox) jobKey(key string) string { return o.p + "job:" + key }
func (o *Outbox) tierKey() string          { return o.p + "tier:" + o.opts.PhoneNumberID }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func str(v any) string { s, _ := v.(string); return s }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails on Linux; a weak suffix is harmless
	return hex.EncodeToString(b)
}
