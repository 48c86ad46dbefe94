package deflect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/deflect/ewt"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"go.uber.org/zap"
)

// State is where a call is in its life.
type State string

// The states of a call; see the package doc for the transitions.
const (
	StateEntered        State = "entered"
	StateWaiting        State = "waiting"
	StateOffered        State = "offered"
	StateAccepted       State = "accepted"
	StateDeflected      State = "deflected"
	StatePerformed      State = "performed"
	StateConnected      State = "connected"
	StateAbandoned      State = "abandoned"
	StateShortAbandoned State = "short_abandoned"
	StateEnded          State = "ended"
)

// final reports whether nothing more happens to a call in this state.
func (s State) final() bool {
	return s == StateAbandoned || s == StateShortAbandoned || s == StateEnded
}

// call is one caller, driven by its own goroutine.
type call struct {
	e     *Engine
	log   *zap.Logger
	inbox *mailbox

	id, q1, q2, bridge string
	ch                 ari.Channel
	rec                record
	adopt              bool // rec came from Redis: resume, do not set up

	storeOK           bool   // records can be written; without it nothing is offered (fail open)
	ineligible        string // why the caller's number can never get WhatsApp ("" if it can)
	blocked           string // the last reason reported by skip, so each is counted once
	waitingCounted    bool   // the call was counted as waiting
	leftQueue         bool   // ...and stopped waiting (answered, deflected, abandoned, fallback)
	decision          rules.Decision
	playback          string // the prompt playing now
	hangupAfterPrompt bool

	decideT, timeoutT *time.Timer
	done              bool
}

func newCall(e *Engine, ch ari.Channel, ev *ari.StasisStart, rec *record) *call {
	c := &call{
		e: e, inbox: newMailbox(), id: ch.ID, ch: ch,
		q1: ch.ID + "-q1", q2: ch.ID + "-q2", bridge: "br-" + ch.ID,
		log: e.log.With(zap.String("call", ch.ID)),
	}
	if rec != nil {
		c.rec, c.adopt, c.storeOK = *rec, true, true
		return c
	}
	args := map[string]string{}
	var list []string
	if ev != nil {
		list = ev.Args
	} else {
		// Adopted without a record: the arguments are in the dialplan
		// application data, "deflect,queue=sales,option=2,reason=billing".
		list = strings.Split(ch.Dialplan.AppData, ",")
		c.adopt = true
	}
	for _, a := range list {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		}
	}
	lang := args["lang"]
	if lang == "" {
		lang = e.opts.DefaultLanguage
	}
	entered := e.opts.Now()
	if ev == nil && !ch.CreationTime.IsZero() {
		entered = ch.CreationTime.Time
	}
	c.rec = record{ID: ch.ID, Queue: args["queue"], Option: args["option"], Reason: args["reason"], Lang: lang,
		Entered: entered.UnixMilli()}
	number, err := normalizeCaller(ch.Caller.Number, e.opts.DefaultRegion)
	if err == nil {
		c.rec.Number, c.rec.Eligible = number, true
	} else {
		c.ineligible = skipReason(err)
	}
	return c
}

func (c *call) now() time.Time { return c.e.opts.Now() }

func (c *call) checkpoint(point string) {
	if c.e.opts.Checkpoint != nil {
		c.e.opts.Checkpoint(point)
	}
}

// run drives the call until it ends or ctx does.
func (c *call) run(ctx context.Context) {
	defer c.stopTimers()
	if c.adopt {
		c.resume(ctx)
	} else {
		c.enter(ctx)
	}
	for !c.done {
		select {
		case <-ctx.Done():
			return // the call stays in Asterisk; whoever runs next adopts it
		case <-c.inbox.ready:
			for _, ev := range c.inbox.drain() {
				if c.done {
					break
				}
				c.handle(ctx, ev)
			}
		case <-timerC(c.decideT):
			c.decideT = nil
			c.decide(ctx)
		case <-timerC(c.timeoutT):
			c.timeoutT = nil
			if c.rec.State == StateOffered {
				c.declined(ctx, "timeout")
			}
		}
	}
}

// timerC is a timer's channel, or nil (never ready) without a timer.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (c *call) stopTimers() {
	for _, t := range []*time.Timer{c.decideT, c.timeoutT} {
		if t != nil {
			t.Stop()
		}
	}
	c.decideT, c.timeoutT = nil, nil
}

// transition moves the call to s, timestamps it and saves the record. A
// failed save turns the bridge's promises off for this call (fail open).
func (c *call) transition(ctx context.Context, s State) error {
	from := c.rec.State
	c.rec.State = s
	err := c.e.store.save(ctx, &c.rec, string(s), c.now())
	if err != nil {
		c.storeOK = false
		c.e.metrics.redisErrors.Inc()
		c.log.Warn("deflect: Redis unavailable; the call keeps waiting without offers", zap.String("state", string(s)), zap.Error(err))
	} else {
		c.storeOK = true
	}
	c.log.Debug("deflect: transition", zap.String("from", string(from)), zap.String("to", string(s)))
	if c.e.opts.Observe != nil {
		c.e.opts.Observe(Transition{CallID: c.id, Queue: c.rec.Queue, Number: c.rec.Number, From: from, To: s, At: c.now(), Offers: c.rec.Offers})
	}
	return err
}

// enter sets a new call up: answer, a mixing bridge, and a Local channel
// into the real queue, bridged with the caller.
func (c *call) enter(ctx context.Context) {
	c.e.metrics.entered.WithLabelValues(c.rec.Queue).Inc()
	if c.rec.Eligible {
		c.e.metrics.eligible.WithLabelValues(c.rec.Queue).Inc()
	}
	c.startWaiting()
	c.transition(ctx, StateEntered)
	c.checkpoint(CheckpointEntered)
	// A self-service reason may be answered at once: then the caller never
	// enters the queue (no agent rings, no phantom ENTERQUEUE/ABANDON in
	// queue_log). If the message cannot go, the caller queues as usual.
	now := c.now()
	if d := c.e.opts.Rules().Evaluate(c.view(now), now); d.Action == rules.ActionPerform {
		if err := c.e.opts.ARI.Answer(ctx, c.id); err != nil && !errors.Is(err, ari.ErrPreconditionFailed) {
			c.fallback(ctx, fmt.Errorf("answering: %w", err))
			return
		}
		c.perform(ctx, d)
		if c.rec.State == StatePerformed {
			return
		}
	}
	if err := c.setupQueue(ctx); err != nil {
		c.fallback(ctx, err)
		return
	}
	c.transition(ctx, StateWaiting)
	c.decide(ctx)
}

func (c *call) setupQueue(ctx context.Context) error {
	a := c.e.opts.ARI
	if err := a.Answer(ctx, c.id); err != nil && !errors.Is(err, ari.ErrPreconditionFailed) {
		return fmt.Errorf("answering: %w", err)
	}
	if _, err := a.CreateBridge(ctx, ari.BridgeRequest{ID: c.bridge, Type: ari.BridgeMixing, Name: "deflect-" + c.id}); err != nil && !errors.Is(err, ari.ErrConflict) {
		return fmt.Errorf("creating the bridge: %w", err)
	}
	if err := a.AddChannel(ctx, c.bridge, ari.AddChannelRequest{Channels: []string{c.id}}); err != nil {
		return fmt.Errorf("bridging the caller: %w", err)
	}
	_, err := a.Originate(ctx, ari.OriginateRequest{
		Endpoint: "Local/" + c.rec.Queue + "@" + c.e.opts.QueueContext + "/n",
		App:      a.Application(), AppArgs: proxyArg + "," + c.id,
		ChannelID: c.q1, OtherChannelID: c.q2,
		CallerID: fmt.Sprintf("%q <%s>", c.ch.Caller.Name, c.ch.Caller.Number),
		Timeout:  c.e.opts.QueueTimeout,
	})
	if err != nil {
		return fmt.Errorf("originating into queue %s: %w", c.rec.Queue, err)
	}
	if err := a.SubscribeChannel(ctx, c.q2); err != nil {
		return fmt.Errorf("subscribing to the queue half: %w", err)
	}
	return nil
}

// fallback gives the call back to the dialplan, whose fallback label queues
// it directly: the caller waits without the bridge rather than not at all.
func (c *call) fallback(ctx context.Context, why error) {
	c.e.metrics.fallbacks.Inc()
	c.stopWaiting(func(q *ewt.Queue) { q.Left(c.id, c.now()) })
	c.log.Error("deflect: cannot queue the call through the bridge; handing it back to the dialplan's Queue()", zap.Error(why))
	c.cleanup(ctx)
	if err := c.e.opts.ARI.Continue(ctx, c.id, ari.ContinueRequest{Label: "fallback"}); err == nil {
		c.end(ctx, StateEnded, "fallback")
		return
	} else {
		c.log.Error("deflect: handing the call back to the dialplan failed; hanging up", zap.Error(err))
	}
	c.e.opts.ARI.Hangup(ctx, c.id, ari.HangupCongestion)
	c.end(ctx, StateEnded, "failed")
}

// resume takes over a call another run of the bridge started.
func (c *call) resume(ctx context.Context) {
	switch c.rec.State {
	case StateEntered, StateWaiting, StateOffered, StateAccepted, "":
		c.startWaiting()
	}
	c.log.Info("deflect: adopting a call", zap.String("state", string(c.rec.State)), zap.Int("offers", c.rec.Offers))
	if !c.rec.Eligible || c.rec.Number == "" {
		if n, err := normalizeCaller(c.ch.Caller.Number, c.e.opts.DefaultRegion); err == nil {
			c.rec.Number, c.rec.Eligible = n, true
		} else {
			c.rec.Eligible, c.ineligible = false, skipReason(err)
		}
	}
	switch c.rec.State {
	case StateConnected:
		return // nothing to do until the caller leaves
	case StateAccepted:
		c.deflect(ctx, outbox.KindOffer, c.templateFor(ctx, false))
		return
	case StateDeflected, StatePerformed:
		c.leaveQueue(ctx)
		c.hangupCaller(ctx)
		return
	case StateOffered:
		// The offer ran while nobody listened: count it as unanswered.
		c.rec.Declined = true
		c.transition(ctx, StateWaiting)
	}
	if _, err := c.e.opts.ARI.GetChannel(ctx, c.q1); errors.Is(err, ari.ErrNotFound) {
		// The queue half is gone (it never started, or Asterisk dropped
		// it): queue the caller again rather than leave them alone.
		if err := c.setupQueue(ctx); err != nil {
			c.fallback(ctx, err)
			return
		}
	}
	if c.rec.State == StateEntered || c.rec.State == "" {
		c.transition(ctx, StateWaiting)
	}
	c.decide(ctx)
}

// view is the call as the rules see it.
func (c *call) view(now time.Time) rules.Call {
	v := rules.Call{
		Queue: c.rec.Queue, Option: c.rec.Option, Reason: c.rec.Reason, Language: c.rec.Lang,
		Entered: time.UnixMilli(c.rec.Entered), Offers: c.rec.Offers, Declined: c.rec.Declined,
	}
	if c.rec.LastOffer > 0 {
		v.LastOffer = time.UnixMilli(c.rec.LastOffer)
	}
	v.EWT, v.Position = c.e.estimate(c.rec.Queue, c.id, now)
	return v
}

// decide asks the rules what to do now, does it, and sets the timer for
// the next look.
func (c *call) decide(ctx context.Context) {
	if c.rec.State != StateWaiting {
		return
	}
	c.refreshAgents(ctx)
	now := c.now()
	d := c.e.opts.Rules().Evaluate(c.view(now), now)
	if c.decideT != nil {
		c.decideT.Stop()
		c.decideT = nil
	}
	switch d.Action {
	case rules.ActionOffer:
		c.offer(ctx, d)
	case rules.ActionPerform:
		c.perform(ctx, d)
	}
	next := d.Next
	if c.rec.State == StateWaiting && c.blocked == skipRedis && (d.Action == rules.ActionOffer || d.Action == rules.ActionPerform) {
		next = now.Add(redisRetry) // the rules said now; Redis said not yet
	}
	if c.rec.State == StateWaiting && !next.IsZero() {
		c.decideT = time.NewTimer(max(next.Sub(c.now()), 0))
	}
}

// mayMessage checks everything that must say yes before the bridge
// promises a WhatsApp message; it returns the reason when one says no.
func (c *call) mayMessage(ctx context.Context) string {
	if c.ineligible != "" {
		return c.ineligible
	}
	if !c.rec.Eligible {
		return skipInvalid
	}
	if !c.storeOK && !c.resave(ctx) {
		return skipRedis
	}
	if cool, err := c.e.store.inCooldown(ctx, c.rec.Number); err != nil {
		c.e.metrics.redisErrors.Inc()
		return skipRedis
	} else if cool {
		return "cooldown"
	}
	if out, err := c.e.opts.Outbox.OptedOut(ctx, c.rec.Number); err != nil {
		return skipRedis
	} else if out {
		return "opted_out"
	}
	if un, err := c.e.opts.Outbox.Unreachable(ctx, c.rec.Number); err == nil && un {
		return "unreachable"
	}
	if left, err := c.e.opts.Outbox.BudgetLeft(ctx); err != nil {
		return skipRedis
	} else if left == 0 {
		return "budget"
	}
	return ""
}

// skipRedis is the one reason not to message that passes by itself: the
// call looks again every redisRetry until Redis answers.
const skipRedis = "redis"

// redisRetry is how often a call whose offer or message waits on Redis
// looks again.
const redisRetry = 2 * time.Second

// resave writes the call's record again after Redis failed it; the call's
// promises (offers, messages) resume once it succeeds.
func (c *call) resave(ctx context.Context) bool {
	if err := c.e.store.save(ctx, &c.rec, "", c.now()); err != nil {
		return false
	}
	c.storeOK = true
	c.log.Info("deflect: Redis answers again; offers resume for the call", zap.String("state", string(c.rec.State)))
	return true
}

func (c *call) offer(ctx context.Context, d rules.Decision) {
	if why := c.mayMessage(ctx); why != "" {
		c.skip(why)
		return
	}
	c.decision = d
	offers, last := c.rec.Offers, c.rec.LastOffer
	c.rec.Template = d.Template // an acceptance adopted after a restart sends what was offered
	c.rec.Offers++
	c.rec.LastOffer = c.now().UnixMilli()
	if c.transition(ctx, StateOffered) != nil {
		// Not offered: the caller heard nothing, so it does not count.
		c.rec.State, c.rec.Offers, c.rec.LastOffer = StateWaiting, offers, last
		return
	}
	c.blocked = ""
	c.checkpoint(CheckpointOffered)
	c.e.metrics.offers.WithLabelValues(c.rec.Queue, d.Trigger).Inc()
	c.log.Info("deflect: offering WhatsApp", zap.String("route", d.Route), zap.String("trigger", d.Trigger), zap.Int("offer", c.rec.Offers))
	c.play(ctx, c.e.opts.Prompts.Offer, fmt.Sprintf("offer-%s-%d", c.id, c.rec.Offers), false)
}

// skip records that an offer or message was not made, once per reason.
func (c *call) skip(why string) {
	if c.blocked == why {
		return
	}
	c.blocked = why
	c.e.metrics.skipped.WithLabelValues(c.rec.Queue, why).Inc()
	c.log.Info("deflect: not offering WhatsApp", zap.String("why", why))
}

func (c *call) perform(ctx context.Context, d rules.Decision) {
	if why := c.mayMessage(ctx); why != "" {
		c.skip(why)
		return
	}
	c.decision = d
	c.rec.Performed = true
	c.log.Info("deflect: sending WhatsApp without asking", zap.String("route", d.Route), zap.String("template", d.Template))
	c.deflect(ctx, outbox.KindPerform, d.Template)
}

// deflect records the acceptance (or the decision to perform), enqueues the
// message, and only then tells the caller and lets them go.
func (c *call) deflect(ctx context.Context, kind, template string) {
	if kind == outbox.KindOffer {
		if c.rec.Accepted == 0 {
			c.rec.Accepted = c.now().UnixMilli()
		}
		if c.rec.State != StateAccepted && c.transition(ctx, StateAccepted) != nil {
			c.unavailable(ctx, kind)
			return
		}
		c.checkpoint(CheckpointAccepted)
	}
	if err := c.send(ctx, kind, template); err != nil {
		c.log.Warn("deflect: the message could not be queued; the caller keeps waiting", zap.String("kind", kind), zap.Error(err))
		c.unavailable(ctx, kind)
		return
	}
	c.checkpoint(CheckpointEnqueued)
	c.rec.Deflected = c.now().UnixMilli()
	final := StateDeflected
	prompt := c.e.opts.Prompts.Accepted
	if kind == outbox.KindPerform {
		final, prompt = StatePerformed, c.e.opts.Prompts.Performed
	}
	c.transition(ctx, final)
	c.stopWaiting(func(q *ewt.Queue) { q.Left(c.id, c.now()) })
	c.e.metrics.deflections.WithLabelValues(c.rec.Queue, kind).Inc()
	c.e.metrics.wait.WithLabelValues(c.rec.Queue, string(final)).Observe(c.waited().Seconds())
	if kind == outbox.KindOffer {
		c.exitQueue(ctx)
	} else {
		c.leaveQueue(ctx)
	}
	c.play(ctx, prompt, "bye-"+c.id, true)
}

// send renders and enqueues one message of the call.
func (c *call) send(ctx context.Context, kind, template string) error {
	if template == "" {
		return errors.New("no template")
	}
	cc := whatsapp.CallContext{
		CallID: c.id, Queue: c.rec.Queue, MenuOption: c.rec.Option, Reason: c.rec.Reason, Language: c.rec.Lang,
		Wait: c.waited(), CallerNumber: c.rec.Number, Key: c.id + ":" + kind,
	}
	lang := c.e.opts.TemplateLanguages[c.rec.Lang]
	if lang == "" {
		lang = c.rec.Lang
	}
	m, err := c.e.opts.Renderer.Render(template, lang, c.rec.Number, cc)
	if err != nil {
		return fmt.Errorf("rendering %s: %w", template, err)
	}
	// The job carries the call's context, which the inbox shows on the
	// conversation's context card when the customer answers.
	meta := map[string]string{
		"call_id": c.id, "queue": c.rec.Queue, "option": c.rec.Option, "reason": c.rec.Reason,
		"lang": c.rec.Lang, "wait_s": fmt.Sprint(int(cc.Wait.Seconds())),
	}
	if c.rec.State == StateWaiting || c.rec.State == StateAccepted || c.rec.State == StateOffered {
		ewt, pos := c.e.estimate(c.rec.Queue, c.id, c.now())
		meta["ewt_s"], meta["position"] = fmt.Sprint(int(ewt.Seconds())), fmt.Sprint(pos)
	}
	_, err = c.e.opts.Outbox.Enqueue(ctx, outbox.Job{Key: cc.Key, Kind: kind, Message: m, Meta: meta})
	if err != nil {
		return err
	}
	if _, err := c.e.store.takeCooldown(ctx, c.rec.Number, c.e.opts.Cooldown, c.now()); err != nil {
		c.e.metrics.redisErrors.Inc()
	}
	return nil
}

// templateFor returns the template of the call's route (the decision made
// before a restart is gone; the rules give the same answer).
func (c *call) templateFor(ctx context.Context, abandoned bool) string {
	if c.decision.Template != "" {
		return c.decision.Template
	}
	if !abandoned && c.rec.Template != "" {
		return c.rec.Template
	}
	now := c.now()
	v := c.view(now)
	v.Offers = 0
	v.Abandoned = abandoned
	if abandoned {
		v.AbandonedAt = now
	}
	return c.e.opts.Rules().Evaluate(v, now).Template
}

// unavailable tells a caller who accepted that the message cannot go now;
// they keep their place. The offer counts as unanswered, so reoffer_every
// offers again once the bridge can keep its promise.
func (c *call) unavailable(ctx context.Context, kind string) {
	c.skip("send_failed")
	c.stopPrompt(ctx)
	if kind == outbox.KindOffer {
		c.rec.Accepted, c.rec.Declined = 0, true
	}
	c.transition(ctx, StateWaiting)
	c.play(ctx, c.e.opts.Prompts.Unavailable, "sorry-"+c.id, false)
	if kind == outbox.KindOffer {
		// Only after an offer: a failed perform runs before the caller is
		// queued, and enter goes on to queue them.
		c.decide(ctx)
	}
}

func (c *call) waited() time.Duration {
	return max(c.now().Sub(time.UnixMilli(c.rec.Entered)), 0)
}

// handle applies one ARI event to the call.
func (c *call) handle(ctx context.Context, ev ari.Event) {
	switch ev := ev.(type) {
	case *ari.StasisStart:
		if ev.Channel.ID == c.q1 {
			if err := c.e.opts.ARI.AddChannel(ctx, c.bridge, ari.AddChannelRequest{Channels: []string{c.q1}}); err != nil {
				c.log.Error("deflect: bridging the queue half", zap.Error(err))
			}
		}
	case *ari.Dial:
		if ev.Caller != nil && ev.Caller.ID == c.q2 && ev.DialStatus == ari.DialAnswer {
			c.agentAnswered(ctx)
		}
	case *ari.ChannelDtmfReceived:
		if ev.Channel.ID == c.id && c.rec.State == StateOffered {
			switch ev.Digit {
			case "1":
				c.accepted(ctx, ev.Timestamp.Time)
			case "2":
				c.declined(ctx, "declined")
			}
		}
	case *ari.PlaybackFinished:
		if ev.Playback.ID != c.playback {
			return
		}
		c.playback = ""
		if c.hangupAfterPrompt {
			c.hangupCaller(ctx)
			return
		}
		if c.rec.State == StateOffered && c.timeoutT == nil {
			c.timeoutT = time.NewTimer(c.offerTimeout())
		}
	case *ari.StasisEnd:
		switch ev.Channel.ID {
		case c.id:
			c.callerLeft(ctx)
		case c.q1:
			c.queueLeft(ctx)
		}
	}
}

func (c *call) offerTimeout() time.Duration {
	if c.decision.OfferTimeout > 0 {
		return c.decision.OfferTimeout
	}
	return 8 * time.Second
}

// accepted handles the caller's "1"; pressed is when Asterisk saw the key.
func (c *call) accepted(ctx context.Context, pressed time.Time) {
	c.stopTimeout()
	c.stopPrompt(ctx)
	c.e.metrics.responses.WithLabelValues(c.rec.Queue, "accepted").Inc()
	c.log.Info("deflect: the caller accepted WhatsApp", zap.Time("pressed", pressed))
	c.deflect(ctx, outbox.KindOffer, c.templateFor(ctx, false))
}

func (c *call) declined(ctx context.Context, how string) {
	c.stopTimeout()
	c.stopPrompt(ctx)
	c.e.metrics.responses.WithLabelValues(c.rec.Queue, how).Inc()
	c.rec.Declined = true
	c.transition(ctx, StateWaiting)
	if how == "declined" {
		c.play(ctx, c.e.opts.Prompts.Declined, fmt.Sprintf("kept-%s-%d", c.id, c.rec.Offers), false)
	}
	c.decide(ctx)
}

func (c *call) agentAnswered(ctx context.Context) {
	switch c.rec.State {
	case StateEntered, StateWaiting, StateOffered:
	default:
		return // too late: the caller was deflected, or is gone
	}
	c.stopTimeout()
	c.stopPrompt(ctx)
	if c.decideT != nil {
		c.decideT.Stop()
		c.decideT = nil
	}
	c.rec.Answered = c.now().UnixMilli()
	c.stopWaiting(func(q *ewt.Queue) { q.Answered(c.id, c.now()) })
	c.transition(ctx, StateConnected)
	c.e.metrics.answered.WithLabelValues(c.rec.Queue).Inc()
	c.e.metrics.wait.WithLabelValues(c.rec.Queue, "answered").Observe(c.waited().Seconds())
	c.log.Info("deflect: an agent answered", zap.Duration("waited", c.waited()))
}

// callerLeft handles the caller hanging up (or being hung up).
func (c *call) callerLeft(ctx context.Context) {
	switch c.rec.State {
	case StateEntered, StateWaiting, StateOffered, StateAccepted:
		c.stopTimers()
		c.abandoned(ctx)
	case StateConnected:
		if c.rec.Answered > 0 {
			c.e.tracker(c.rec.Queue).Completed(c.id, c.now().Sub(time.UnixMilli(c.rec.Answered)))
		}
		c.end(ctx, StateEnded, "completed")
	default:
		c.end(ctx, StateEnded, string(c.rec.State))
	}
	c.cleanup(ctx)
	c.done = true
}

func (c *call) abandoned(ctx context.Context) {
	now := c.now()
	wait := c.waited()
	c.stopWaiting(func(q *ewt.Queue) { q.Abandoned(c.id, now) })
	if wait < c.e.opts.Rules().ShortAbandon(c.rec.Queue) {
		c.e.metrics.shortAbandoned.WithLabelValues(c.rec.Queue).Inc()
		c.e.metrics.wait.WithLabelValues(c.rec.Queue, "short_abandoned").Observe(wait.Seconds())
		c.end(ctx, StateShortAbandoned, "short_abandoned")
		return
	}
	c.e.metrics.abandoned.WithLabelValues(c.rec.Queue).Inc()
	c.e.metrics.wait.WithLabelValues(c.rec.Queue, "abandoned").Observe(wait.Seconds())
	v := c.view(now)
	v.Abandoned, v.AbandonedAt = true, now
	d := c.e.opts.Rules().Evaluate(v, now)
	if d.Action == rules.ActionRecover {
		if why := c.mayMessage(ctx); why != "" {
			c.skip(why)
		} else if err := c.send(ctx, outbox.KindRecover, d.Template); err != nil {
			c.log.Warn("deflect: the recovery message could not be queued", zap.Error(err))
		} else {
			c.e.metrics.deflections.WithLabelValues(c.rec.Queue, outbox.KindRecover).Inc()
			c.log.Info("deflect: recovery message queued", zap.Duration("waited", wait))
		}
	}
	c.end(ctx, StateAbandoned, "abandoned")
}

// queueLeft handles the Local channel leaving: the agent hung up after the
// call, or the queue gave up on the caller.
func (c *call) queueLeft(ctx context.Context) {
	switch c.rec.State {
	case StateConnected, StateDeflected, StatePerformed:
		if c.rec.State == StateConnected {
			c.hangupCaller(ctx) // the agent finished; the caller is alone in the bridge
		}
	case StateWaiting, StateOffered, StateEntered:
		c.fallback(ctx, errors.New("the queue let the caller go"))
	}
}

func (c *call) end(ctx context.Context, s State, outcome string) {
	c.rec.Ended = c.now().UnixMilli()
	c.rec.Outcome = outcome
	c.transition(ctx, s)
	c.done = true
}

// exitQueue takes a caller who accepted WhatsApp out of the queue with a
// key (Options.QueueExitKey), so that queue_log says EXITWITHKEY, not
// ABANDON: a deflection is not an abandon in any queue report. The key
// goes into the Local channel's ;1 half and comes out of ;2, where Queue()
// runs; the queue's context= sends ;2 to a hang-up, and ;1 follows. If the
// key cannot be sent, the queue half is hung up as before; if it has no
// effect (a queue without context=), cleanup hangs it up when the caller
// leaves.
func (c *call) exitQueue(ctx context.Context) {
	if c.e.opts.QueueExitKey == "none" {
		c.leaveQueue(ctx)
		return
	}
	if err := c.e.opts.ARI.SendDTMF(ctx, c.q1, ari.DTMFRequest{DTMF: c.e.opts.QueueExitKey, Duration: 100 * time.Millisecond}); err != nil {
		if !errors.Is(err, ari.ErrNotFound) {
			c.log.Warn("deflect: sending the queue exit key; hanging the queue half up", zap.Error(err))
		}
		c.leaveQueue(ctx)
	}
}

// leaveQueue takes the caller out of the queue by hanging up the Local
// channel; Asterisk would otherwise keep it queued as a phantom caller.
func (c *call) leaveQueue(ctx context.Context) {
	if err := c.e.opts.ARI.Hangup(ctx, c.q1, ""); err != nil && !errors.Is(err, ari.ErrNotFound) {
		c.log.Warn("deflect: hanging up the queue half", zap.Error(err))
	}
}

func (c *call) hangupCaller(ctx context.Context) {
	if err := c.e.opts.ARI.Hangup(ctx, c.id, ari.HangupNormal); err != nil && !errors.Is(err, ari.ErrNotFound) {
		c.log.Warn("deflect: hanging up the caller", zap.Error(err))
	}
}

// cleanup removes what the bridge created for the call.
func (c *call) cleanup(ctx context.Context) {
	c.leaveQueue(ctx)
	if err := c.e.opts.ARI.DestroyBridge(ctx, c.bridge); err != nil && !errors.Is(err, ari.ErrNotFound) {
		c.log.Warn("deflect: destroying the bridge", zap.Error(err))
	}
}

// play starts a prompt on the caller only; the caller keeps their place in
// the queue meanwhile.
func (c *call) play(ctx context.Context, sound, id string, hangupAfter bool) {
	c.hangupAfterPrompt = hangupAfter
	pb, err := c.e.opts.ARI.Play(ctx, c.id, ari.PlayRequest{Media: []string{"sound:" + sound}, Lang: c.rec.Lang, PlaybackID: id})
	if err != nil {
		c.log.Warn("deflect: playing a prompt", zap.String("sound", sound), zap.Error(err))
		if hangupAfter {
			c.hangupCaller(ctx)
		}
		return
	}
	c.playback = pb.ID
}

func (c *call) stopPrompt(ctx context.Context) {
	if c.playback == "" {
		return
	}
	if err := c.e.opts.ARI.StopPlayback(ctx, c.playback); err != nil && !errors.Is(err, ari.ErrNotFound) {
		c.log.Debug("deflect: stopping a prompt", zap.Error(err))
	}
	c.playback = ""
}

func (c *call) stopTimeout() {
	if c.timeoutT != nil {
		c.timeoutT.Stop()
		c.timeoutT = nil
	}
}

// startWaiting counts the call in the waiting gauge and the EWT tracker.
func (c *call) startWaiting() {
	if c.waitingCounted {
		return
	}
	c.waitingCounted = true
	c.e.metrics.waiting.WithLabelValues(c.rec.Queue).Inc()
	c.e.tracker(c.rec.Queue).Entered(c.id, time.UnixMilli(c.rec.Entered))
}

// stopWaiting is the one place a call leaves the queue's bookkeeping: the
// waiting gauge and the EWT tracker, told how it left. It acts once, so
// every path out of the queue may call it.
func (c *call) stopWaiting(how func(q *ewt.Queue)) {
	if c.leftQueue || !c.waitingCounted {
		return
	}
	c.leftQueue = true
	c.e.metrics.waiting.WithLabelValues(c.rec.Queue).Dec()
	how(c.e.tracker(c.rec.Queue))
}
