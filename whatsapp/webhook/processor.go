package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/deflectd/deflectd/internal/retry"
	"github.com/deflectd/deflectd/whatsapp"
)

// StatusStore records message statuses. ApplyStatus must be idempotent and
// monotonic (see whatsapp.StatusRank): the Processor passes a status on
// every time Meta delivers it, in whatever order Meta delivers them, and
// applied reports whether this call changed the record.
type StatusStore interface {
	ApplyStatus(ctx context.Context, s whatsapp.Status) (applied bool, err error)
}

// OptOutStore keeps the numbers that asked not to be messaged. number is
// digits only (whatsapp.NormalizeNumber); reason is the keyword the
// customer sent, as configured. OptOut must be idempotent.
type OptOutStore interface {
	OptOut(ctx context.Context, number, reason string) error
}

// ConversionStore decides whether an inbound message converts a message
// deflectd sent (a reply or tap within the conversion window) and records
// it. It returns nil, nil when the message converts nothing.
type ConversionStore interface {
	Convert(ctx context.Context, in whatsapp.Inbound) (*whatsapp.Conversion, error)
}

// ProcessorOptions configures a Processor. Client, Statuses, OptOuts and
// Conversions are required: a Processor that silently dropped opt-outs or
// statuses would be worse than one that does not start.
type ProcessorOptions struct {
	Client redis.UniversalClient
	// Prefix is put before every key; it must be the RedisIntake's.
	Prefix string
	// Group is the consumer group, shared by every instance. Default
	// "deflectd".
	Group string
	// Consumer names this instance in the group; it must be unique among
	// running instances. Default: host name, pid and a random suffix.
	Consumer string
	// ClaimAfter is how long an entry may stay pending before another
	// instance (or this one) takes it over: the failover time after a
	// crash and the retry delay after a store error. It must exceed the
	// longest time one entry takes to process, or an entry still being
	// worked on is processed twice. Default 30 s.
	ClaimAfter time.Duration
	// Block is the longest a read waits for new entries; it bounds how
	// long Run takes to return after its context ends. Default 2 s.
	Block time.Duration
	// BatchSize is the number of entries read at once. Default 64.
	BatchSize int64
	// InboundTTL is how long an inbound message id is remembered, so that
	// Meta's redeliveries are surfaced once. Meta retries for up to 7 days,
	// the default.
	InboundTTL time.Duration
	// StatusTTL is how long an applied (wamid, status) pair is remembered
	// so that exact repeats skip the StatusStore and the status
	// subscribers. Default 24 h; negative passes every repeat on (and a
	// retry after a status subscriber failed calls the store and every
	// status subscriber again).
	StatusTTL time.Duration
	// OptOutKeywords are matched against text messages with IsOptOut.
	// Default DefaultOptOutKeywords(); an empty, non-nil slice disables
	// keyword opt-outs.
	OptOutKeywords []string

	Statuses    StatusStore
	OptOuts     OptOutStore
	Conversions ConversionStore
	// Subscribers receive every inbound message once, opt-outs included
	// (the inbox shows them). A failing subscriber is retried after
	// ClaimAfter without calling the others again.
	Subscribers []func(ctx context.Context, in whatsapp.Inbound) error
	// StatusSubscribers receive every status the StatusStore took without
	// an error, whether it applied it or not, so that a view of its own
	// (the inbox's delivery ticks) follows the same statuses as the
	// store. A (wamid, status) pair is remembered (StatusTTL) only once
	// the store and every status subscriber succeeded: a failing one
	// leaves the webhook entry pending, and it is retried after
	// ClaimAfter without calling the store or the subscribers that
	// succeeded again.
	//
	// Status subscribers must be idempotent and order-independent, like
	// the StatusStore: a status the store did not apply is passed on
	// again each time Meta repeats it, a lost mark repeats a call, and
	// Meta delivers statuses in any order.
	StatusSubscribers []func(ctx context.Context, s whatsapp.Status) error

	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Registerer registers the processor's metrics. Default: a private
	// registry, so that nothing is exported.
	Registerer prometheus.Registerer
}

// Processor reads the webhook stream as one consumer of a group and hands
// statuses and inbound messages to the stores and subscribers. Run it on
// every instance; the group shares the work.
type Processor struct {
	opts       ProcessorOptions
	c          redis.UniversalClient
	log        *zap.Logger
	stream     string
	keywords   []foldedKeyword
	claimEvery time.Duration
	block      time.Duration

	statusUpdates *prometheus.CounterVec
	inbound       *prometheus.CounterVec
	conversions   *prometheus.CounterVec
	optOuts       prometheus.Counter
	errors        *prometheus.CounterVec
}

// Reasons of deflectd_whatsapp_webhook_processing_errors_total: a
// malformed entry is dropped (acknowledged) at once; a sink error leaves
// the entry pending for a retry.
const (
	reasonMalformed = "malformed"
	reasonSink      = "sink"
)

// NewProcessor validates opts and returns a Processor. It starts nothing:
// call Run.
func NewProcessor(opts ProcessorOptions) (*Processor, error) {
	switch {
	case opts.Client == nil:
		return nil, errors.New("webhook: ProcessorOptions.Client is required")
	case opts.Statuses == nil:
		return nil, errors.New("webhook: ProcessorOptions.Statuses is required")
	case opts.OptOuts == nil:
		return nil, errors.New("webhook: ProcessorOptions.OptOuts is required")
	case opts.Conversions == nil:
		return nil, errors.New("webhook: ProcessorOptions.Conversions is required")
	}
	for i, s := range opts.Subscribers {
		if s == nil {
			return nil, fmt.Errorf("webhook: ProcessorOptions.Subscribers[%d] is nil", i)
		}
	}
	for i, s := range opts.StatusSubscribers {
		if s == nil {
			return nil, fmt.Errorf("webhook: ProcessorOptions.StatusSubscribers[%d] is nil", i)
		}
	}
	if opts.Group == "" {
		opts.Group = "deflectd"
	}
	if opts.Consumer == "" {
		opts.Consumer = consumerName()
	}
	if opts.ClaimAfter <= 0 {
		opts.ClaimAfter = 30 * time.Second
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 64
	}
	if opts.InboundTTL <= 0 {
		opts.InboundTTL = 7 * 24 * time.Hour
	}
	if opts.StatusTTL == 0 {
		opts.StatusTTL = 24 * time.Hour
	}
	if opts.OptOutKeywords == nil {
		opts.OptOutKeywords = DefaultOptOutKeywords()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	p := &Processor{
		opts:     opts,
		c:        opts.Client,
		log:      opts.Logger,
		stream:   opts.Prefix + StreamSuffix,
		keywords: foldAll(opts.OptOutKeywords),
		// Claiming twice per ClaimAfter takes an abandoned entry over
		// between ClaimAfter and 1.5 ClaimAfter after its delivery.
		claimEvery: opts.ClaimAfter / 2,
	}
	p.block = min(opts.Block, p.claimEvery)
	if p.block < time.Millisecond {
		p.block = time.Millisecond // Redis blocks in milliseconds; 0 would block forever
	}
	if err := p.registerMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Processor) registerMetrics(reg prometheus.Registerer) error {
	p.statusUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deflectd_whatsapp_status_updates_total",
		Help: "Message statuses from webhooks, by status and whether the store applied them (duplicate: an exact repeat of an applied status, not passed on).",
	}, []string{"status", "applied"})
	p.inbound = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deflectd_whatsapp_inbound_total",
		Help: "Inbound customer messages surfaced, once per message id, by type.",
	}, []string{"type"})
	p.conversions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deflectd_whatsapp_conversions_total",
		Help: "Sent messages converted by a customer's reply or tap, by message kind and how.",
	}, []string{"kind", "via"})
	p.optOuts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deflectd_whatsapp_optouts_total",
		Help: "Opt-out keywords received and recorded.",
	})
	p.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deflectd_whatsapp_webhook_processing_errors_total",
		Help: "Webhook entries that failed processing, by reason (malformed: dropped; sink: left pending for a retry).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{p.statusUpdates, p.inbound, p.conversions, p.optOuts, p.errors} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	for _, s := range []string{whatsapp.StatusSent, whatsapp.StatusDelivered, whatsapp.StatusRead, whatsapp.StatusFailed, "other"} {
		for _, a := range []string{"true", "false", "duplicate"} {
			p.statusUpdates.WithLabelValues(s, a)
		}
	}
	for _, t := range append(inboundTypes(), "other") {
		p.inbound.WithLabelValues(t)
	}
	for _, k := range []string{"offer", "perform", "recover", "other"} {
		for _, v := range []string{"tap", "reply", "other"} {
			p.conversions.WithLabelValues(k, v)
		}
	}
	p.errors.WithLabelValues(reasonMalformed)
	p.errors.WithLabelValues(reasonSink)
	return nil
}

// Consumer returns the name this instance reads under.
func (p *Processor) Consumer() string { return p.opts.Consumer }

// Run processes webhook entries until ctx ends, then returns nil. Redis
// errors do not end it: it logs them and tries again with a backoff, so
// that a Redis restart does not take the app down. It returns within
// Block of ctx ending.
func (p *Processor) Run(ctx context.Context) error {
	defer p.leave(context.WithoutCancel(ctx))
	var (
		groupReady bool
		nextClaim  time.Time
		failures   int
	)
	for ctx.Err() == nil {
		err := func() error {
			if !groupReady {
				if err := p.createGroup(ctx); err != nil {
					return err
				}
				groupReady = true
			}
			if now := time.Now(); !now.Before(nextClaim) {
				if err := p.claim(ctx); err != nil {
					return err
				}
				nextClaim = now.Add(p.claimEvery)
			}
			return p.read(ctx)
		}()
		if err == nil {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		// The stream or the group may be gone (a Redis restarted empty):
		// create the group again before the next read.
		groupReady = false
		failures++
		p.log.Error("reading webhooks from Redis failed; retrying", zap.Int("failures", failures), zap.Error(err))
		if !retry.Sleep(ctx, backoff(failures)) {
			break
		}
	}
	return nil
}

// createGroup creates the group at the start of the stream, so that
// webhooks appended before any processor ever ran are processed too.
func (p *Processor) createGroup(ctx context.Context) error {
	err := p.c.XGroupCreateMkStream(ctx, p.stream, p.opts.Group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("creating group %s on %s: %w", p.opts.Group, p.stream, err)
	}
	return nil
}

func (p *Processor) read(ctx context.Context) error {
	streams, err := p.c.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    p.opts.Group,
		Consumer: p.opts.Consumer,
		Streams:  []string{p.stream, ">"},
		Count:    p.opts.BatchSize,
		Block:    p.block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("XREADGROUP %s: %w", p.stream, err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			p.handle(ctx, m)
		}
	}
	return nil
}

// claim takes over every entry pending for longer than ClaimAfter, in any
// consumer of the group, this one included: entries of a crashed
// instance, and entries left pending after a store error.
func (p *Processor) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := p.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   p.stream,
			Group:    p.opts.Group,
			Consumer: p.opts.Consumer,
			MinIdle:  p.opts.ClaimAfter,
			Start:    start,
			Count:    p.opts.BatchSize,
		}).Result()
		if err != nil {
			return fmt.Errorf("XAUTOCLAIM %s: %w", p.stream, err)
		}
		for _, m := range msgs {
			p.handle(ctx, m)
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
}

// handle processes one entry and acknowledges it unless a store or
// subscriber failed.
func (p *Processor) handle(ctx context.Context, m redis.XMessage) {
	body, _ := m.Values[bodyField].(string)
	n, err := Parse([]byte(body))
	if err != nil {
		// Retrying cannot make it parse: acknowledge it, or it would be
		// claimed and fail forever.
		p.errors.WithLabelValues(reasonMalformed).Inc()
		p.log.Error("dropping a webhook entry that does not parse", zap.String("entry", m.ID), zap.Error(err))
		p.ack(ctx, m.ID)
		return
	}
	busy, err := p.process(ctx, n)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: the entry stays pending and is claimed later.
	case err != nil:
		p.errors.WithLabelValues(reasonSink).Inc()
		p.log.Error("webhook entry left pending for a retry",
			zap.String("entry", m.ID), zap.Duration("retry_after", p.opts.ClaimAfter), zap.Error(err))
	case busy:
		// Another instance is handling one of its messages right now; a
		// retry after ClaimAfter finds it done.
		p.log.Debug("webhook entry deferred: a message is being handled elsewhere", zap.String("entry", m.ID))
	default:
		p.ack(ctx, m.ID)
	}
}

func (p *Processor) ack(ctx context.Context, id string) {
	// Acknowledge even while shutting down: the work is done, and an
	// unacknowledged entry would only be processed again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.c.XAck(ctx, p.stream, p.opts.Group, id).Err(); err != nil {
		// Harmless beyond a repeat: the entry is claimed again and its
		// messages are recognised as done.
		p.log.Warn("acknowledging a webhook entry failed; it will be processed again", zap.String("entry", id), zap.Error(err))
	}
}

// process hands on every status and message of n. busy reports a message
// held by another instance.
func (p *Processor) process(ctx context.Context, n *Notification) (busy bool, err error) {
	var errs []error
	for _, s := range n.Statuses {
		if err := p.applyStatus(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("status %s of %s: %w", s.Status, s.WAMID, err))
		}
	}
	for _, in := range n.Messages {
		b, err := p.handleInbound(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("message %s: %w", in.ID, err))
		}
		busy = busy || b
	}
	return busy, errors.Join(errs...)
}

// backoff is the wait after the n-th consecutive Redis failure: 100 ms
// doubling to 5 s, so a Redis restart is noticed at once and an outage
// does not flood the log.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// leave removes this consumer from the group when it holds no pending
// entries, so that restarts do not pile up dead consumers. A consumer with
// pending entries stays: deleting it would drop them from the group.
func (p *Processor) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pending, err := p.c.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: p.stream, Group: p.opts.Group, Start: "-", End: "+", Count: 1, Consumer: p.opts.Consumer,
	}).Result()
	if err != nil || len(pending) > 0 {
		return
	}
	p.c.XGroupDelConsumer(ctx, p.stream, p.opts.Group, p.opts.Consumer)
}

func consumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "deflectd"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
