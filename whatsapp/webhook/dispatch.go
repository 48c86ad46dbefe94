package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/deflectd/deflectd/whatsapp"
)

// Keys of the dedupe state, under the prefix:
//
//	wa:webhooks:status:<wamid>:<status>        an applied status, handed to every status subscriber (StatusTTL)
//	wa:webhooks:statussteps:<wamid>:<status>   hash of the completed steps of a status whose subscribers failed (StatusTTL)
//	wa:webhooks:in:<wamid>                     hash of the completed steps of an inbound message (InboundTTL)
//	wa:webhooks:lease:<wamid>                  the instance handling that message now (ClaimAfter)
func (p *Processor) statusKey(s whatsapp.Status) string {
	return p.opts.Prefix + "wa:webhooks:status:" + s.WAMID + ":" + s.Status
}

func (p *Processor) statusStepsKey(s whatsapp.Status) string {
	return p.opts.Prefix + "wa:webhooks:statussteps:" + s.WAMID + ":" + s.Status
}

func (p *Processor) inboundKey(id string) string { return p.opts.Prefix + "wa:webhooks:in:" + id }
func (p *Processor) leaseKey(id string) string   { return p.opts.Prefix + "wa:webhooks:lease:" + id }

// Steps of an inbound message, recorded as fields of its hash as each one
// succeeds, so that a retry after a partial failure repeats only what
// failed. A status's steps are stepApplied (the store applied it) and its
// subscribers'.
const (
	stepOptOut  = "optout"
	stepConvert = "convert"
	stepDone    = "done"
	stepApplied = "applied"
)

func stepSubscriber(i int) string { return "sub:" + strconv.Itoa(i) }

// applyStatus passes s to the StatusStore and then to every status
// subscriber, unless the same (wamid, status) was already applied and
// handed on. Only applied pairs are remembered: a status the store could
// not apply yet (its send not recorded yet, say) gets another chance when
// Meta repeats it. When a subscriber fails, the steps that succeeded are
// recorded, so that the retry of the entry neither counts the status again
// nor loses that the store applied it, and calls only the subscribers that
// failed.
func (p *Processor) applyStatus(ctx context.Context, s whatsapp.Status) error {
	label := statusLabel(s.Status)
	if whatsapp.StatusRank(s.Status) == 0 {
		// A status deflectd does not know (Meta adds some) can never
		// apply; passing it on would only invite an error and endless
		// retries of the entry.
		p.statusUpdates.WithLabelValues(label, "false").Inc()
		p.log.Debug("ignoring an unknown message status", zap.String("status", s.Status), zap.String("wamid", s.WAMID))
		return nil
	}
	remember := p.opts.StatusTTL > 0
	var done map[string]string
	if remember {
		pipe := p.c.Pipeline()
		exists := pipe.Exists(ctx, p.statusKey(s))
		steps := pipe.HGetAll(ctx, p.statusStepsKey(s))
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		if exists.Val() > 0 {
			p.statusUpdates.WithLabelValues(label, "duplicate").Inc()
			return nil
		}
		done = steps.Val()
	}
	applied := done[stepApplied] != ""
	if !applied {
		a, err := p.opts.Statuses.ApplyStatus(ctx, s)
		if err != nil {
			return err
		}
		p.statusUpdates.WithLabelValues(label, strconv.FormatBool(a)).Inc()
		applied = a
	}
	var failed []error
	var succeeded []string
	for i, sub := range p.opts.StatusSubscribers {
		if done[stepSubscriber(i)] != "" {
			continue
		}
		if err := sub(ctx, s); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", stepSubscriber(i), err))
			continue
		}
		succeeded = append(succeeded, stepSubscriber(i))
	}
	if !remember {
		return errors.Join(failed...)
	}
	// Marks are written without the caller's context: the work is done.
	// A lost mark costs only a repeated, idempotent call later, so its
	// error is not worth failing the entry over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if len(failed) > 0 {
		if applied && done[stepApplied] == "" {
			succeeded = append(succeeded, stepApplied)
		}
		if len(succeeded) > 0 {
			pipe := p.c.TxPipeline()
			for _, step := range succeeded {
				pipe.HSet(ctx, p.statusStepsKey(s), step, "1")
			}
			pipe.Expire(ctx, p.statusStepsKey(s), p.opts.StatusTTL)
			pipe.Exec(ctx)
		}
		return errors.Join(failed...)
	}
	switch {
	case applied && len(done) == 0:
		p.c.Set(ctx, p.statusKey(s), "1", p.opts.StatusTTL)
	case applied:
		pipe := p.c.TxPipeline()
		pipe.Set(ctx, p.statusKey(s), "1", p.opts.StatusTTL)
		pipe.Del(ctx, p.statusStepsKey(s))
		pipe.Exec(ctx)
	case len(done) > 0:
		// Handed on but not applied, so nothing is remembered: the
		// steps of the earlier attempt are not needed any more.
		p.c.Del(ctx, p.statusStepsKey(s))
	}
	return nil
}

// releaseLease deletes a lease only if it is still this consumer's: after
// it expired, another instance may hold it.
var releaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// handleInbound surfaces a message once: to the opt-out list or the
// conversion store, then to every subscriber. A lease keeps two instances
// from handling two deliveries of one message at the same time; busy
// reports that another instance holds it.
func (p *Processor) handleInbound(ctx context.Context, in whatsapp.Inbound) (busy bool, err error) {
	lease := p.leaseKey(in.ID)
	ok, err := p.c.SetNX(ctx, lease, p.opts.Consumer, p.opts.ClaimAfter).Result()
	if err != nil {
		return false, err
	}
	if !ok {
		return true, nil
	}
	defer releaseLease.Run(context.WithoutCancel(ctx), p.c, []string{lease}, p.opts.Consumer)

	key := p.inboundKey(in.ID)
	done, err := p.c.HGetAll(ctx, key).Result()
	if err != nil {
		return false, err
	}
	if done[stepDone] != "" {
		p.log.Debug("inbound message already surfaced", zap.String("message", in.ID))
		return false, nil
	}

	var errs []error
	step := func(name string, f func() error) {
		if done[name] != "" {
			return
		}
		if err := f(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		p.mark(ctx, key, name)
	}
	// An opt-out is not a conversion: the customer answered, but to say
	// no.
	if keyword, ok := p.optOutKeyword(in); ok {
		step(stepOptOut, func() error { return p.optOut(ctx, in, keyword) })
	} else {
		step(stepConvert, func() error { return p.convert(ctx, in) })
	}
	for i, sub := range p.opts.Subscribers {
		step(stepSubscriber(i), func() error { return sub(ctx, in) })
	}
	if len(errs) > 0 {
		return false, errors.Join(errs...)
	}
	p.mark(ctx, key, stepDone)
	p.inbound.WithLabelValues(inboundLabel(in.Type)).Inc()
	return false, nil
}

// mark records a completed step. Its error is dropped: the step is done
// either way, and a lost mark can only repeat it if the message comes
// again.
func (p *Processor) mark(ctx context.Context, key, step string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	pipe := p.c.TxPipeline()
	pipe.HSet(ctx, key, step, "1")
	pipe.Expire(ctx, key, p.opts.InboundTTL)
	pipe.Exec(ctx)
}

// optOutKeyword matches typed text only. A button's meaning is its payload,
// which the app defines; a quick reply titled "Cancelar" cancels a
// callback, not the customer's consent.
func (p *Processor) optOutKeyword(in whatsapp.Inbound) (string, bool) {
	if in.Type != whatsapp.InboundText {
		return "", false
	}
	return matchOptOut(fold(in.Text), p.keywords)
}

func (p *Processor) optOut(ctx context.Context, in whatsapp.Inbound, keyword string) error {
	number := whatsapp.NormalizeNumber(in.From)
	if number == "" {
		// A user with a username may come without a phone number; opt-outs
		// are keyed by number, so there is nothing to record it under.
		p.log.Warn("opt-out keyword from a user without a phone number: not recorded",
			zap.String("message", in.ID), zap.String("keyword", keyword))
		return nil
	}
	if err := p.opts.OptOuts.OptOut(ctx, number, keyword); err != nil {
		return err
	}
	p.optOuts.Inc()
	p.log.Info("customer opted out", zap.String("message", in.ID), zap.String("keyword", keyword))
	return nil
}

func (p *Processor) convert(ctx context.Context, in whatsapp.Inbound) error {
	conv, err := p.opts.Conversions.Convert(ctx, in)
	if err != nil || conv == nil {
		return err
	}
	p.conversions.WithLabelValues(kindLabel(conv.Kind), viaLabel(conv.Via)).Inc()
	p.log.Info("message converted", zap.String("key", conv.Key), zap.String("kind", conv.Kind), zap.String("via", conv.Via))
	return nil
}

// Metric labels are bounded: anything unforeseen is "other".

func statusLabel(s string) string {
	if whatsapp.StatusRank(s) > 0 {
		return s
	}
	return "other"
}

// inboundTypes are the bounded values of the inbound metric's type label,
// beside "other": every type Meta documents.
func inboundTypes() []string {
	return []string{
		whatsapp.InboundText, whatsapp.InboundButton, whatsapp.InboundInteractive,
		whatsapp.InboundImage, whatsapp.InboundAudio, whatsapp.InboundVideo, whatsapp.InboundDocument, whatsapp.InboundSticker,
		whatsapp.InboundReaction, whatsapp.InboundLocation, whatsapp.InboundContacts, whatsapp.InboundUnsupported,
	}
}

func inboundLabel(t string) string {
	if slices.Contains(inboundTypes(), t) {
		return t
	}
	return "other"
}

func kindLabel(k string) string {
	switch k {
	case "offer", "perform", "recover":
		return k
	}
	return "other"
}

func viaLabel(v string) string {
	switch v {
	case "tap", "reply":
		return v
	}
	return "other"
}
