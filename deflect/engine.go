package deflect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/deflect/ewt"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ARI is what the engine needs of Asterisk; *ari.Client provides it.
type ARI interface {
	Next(ctx context.Context) (ari.Event, error)
	Application() string
	Answer(ctx context.Context, channelID string) error
	Hangup(ctx context.Context, channelID, reason string) error
	Continue(ctx context.Context, channelID string, r ari.ContinueRequest) error
	CreateBridge(ctx context.Context, r ari.BridgeRequest) (*ari.Bridge, error)
	DestroyBridge(ctx context.Context, bridgeID string) error
	AddChannel(ctx context.Context, bridgeID string, r ari.AddChannelRequest) error
	Originate(ctx context.Context, r ari.OriginateRequest) (*ari.Channel, error)
	SubscribeChannel(ctx context.Context, channelID string) error
	Play(ctx context.Context, channelID string, r ari.PlayRequest) (*ari.Playback, error)
	SendDTMF(ctx context.Context, channelID string, r ari.DTMFRequest) error
	StopPlayback(ctx context.Context, playbackID string) error
	GetVariable(ctx context.Context, channelID, name string) (string, error)
	GetChannel(ctx context.Context, channelID string) (*ari.Channel, error)
	Snapshot(ctx context.Context) (*ari.Snapshot, error)
	ListChannels(ctx context.Context) ([]ari.Channel, error)
	ListBridges(ctx context.Context) ([]ari.Bridge, error)
}

// Outbox is what the engine needs of the WhatsApp outbox.
type Outbox interface {
	Enqueue(ctx context.Context, j outbox.Job) (outbox.Enqueued, error)
	BudgetLeft(ctx context.Context) (int, error)
	OptedOut(ctx context.Context, number string) (bool, error)
	Unreachable(ctx context.Context, number string) (bool, error)
}

// Renderer builds a template message from a call's context;
// *whatsapp.Catalog is one.
type Renderer interface {
	Render(name, language, to string, cc whatsapp.CallContext) (*whatsapp.Message, error)
}

// Prompts names the sounds the bridge plays, as ARI media URIs without the
// "sound:" prefix; they are looked up in the call's language.
type Prompts struct {
	Offer, Accepted, Declined, Performed, Unavailable string
}

// DefaultPrompts are the prompts shipped in configs/asterisk/sounds.
func DefaultPrompts() Prompts {
	return Prompts{Offer: "deflect/offer", Accepted: "deflect/accepted", Declined: "deflect/declined",
		Performed: "deflect/performed", Unavailable: "deflect/unavailable"}
}

// Options configures an Engine. ARI, Outbox, Renderer, Redis and Rules are
// required.
type Options struct {
	ARI      ARI
	Outbox   Outbox
	Renderer Renderer
	Redis    redis.UniversalClient
	// Rules returns the rules in force; a reload swaps what it returns.
	Rules func() *rules.Rules
	// Prefix starts every Redis key. Default "deflectd:".
	Prefix string
	// QueueContext is the dialplan context of the Local channels that run
	// Queue(): Local/<queue>@<QueueContext>/n. Default "queue-entry".
	QueueContext string
	// QueueExitKey is the DTMF key the bridge sends into the queue half of
	// a caller who accepted WhatsApp, so that Queue() lets them go with
	// EXITWITHKEY, which every queue report tells from an abandon, instead
	// of the ABANDON a hang-up writes. It needs the queue's context= (see
	// configs/asterisk/queues.conf) to hold an extension of that key that
	// hangs up. Default "D", a key callers' phones do not have; "none"
	// hangs the queue half up instead.
	QueueExitKey string
	// Queues are the queues the bridge serves; their series are created
	// at zero up front, so dashboards and alerts see them before the first
	// call. Other queues still work; their series appear with their first
	// call.
	Queues []string
	// DefaultRegion reads national caller numbers (ISO 3166 code, e.g.
	// "AR"). Default "US".
	DefaultRegion string
	// DefaultLanguage is the call's language when the dialplan gives none
	// (lang=), e.g. "es". Default "en".
	DefaultLanguage string
	// TemplateLanguages maps a call language to the template language,
	// e.g. "es" → "es_AR". Missing entries use the call language.
	TemplateLanguages map[string]string
	Prompts           Prompts
	// Cooldown is the least time between two WhatsApp messages to one
	// number. Default 24 h.
	Cooldown time.Duration
	// QueueTimeout bounds a call's wait in Queue() (the originate timeout).
	// Default 1 h.
	QueueTimeout time.Duration
	// RecordTTL is how long call records live. Default 7 days.
	RecordTTL time.Duration
	// ReapEvery is how often the engine looks for what its calls left in
	// Asterisk when a cleanup request failed (a Local channel into a queue,
	// a bridge) and removes it. Default 30 s.
	ReapEvery time.Duration

	// Observe, when set, is told every transition of every call. It must
	// not block. Tests and the demo's progress display use it.
	Observe func(Transition)
	// Checkpoint, when set, is called at the points of a call's life where
	// a crash is the hardest to recover from: CheckpointEntered,
	// CheckpointOffered, CheckpointAccepted and CheckpointEnqueued. The
	// chaos suite kills the process there (deflectd's DEFLECTD_CRASH_AT),
	// to prove that a crash at each loses and repeats nothing.
	Checkpoint func(point string)

	Now        func() time.Time
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// The points Options.Checkpoint is called at.
const (
	// CheckpointEntered: the call's record exists; the caller is not
	// queued yet.
	CheckpointEntered = "entered"
	// CheckpointOffered: the offer is recorded; its prompt has not started.
	CheckpointOffered = "offered"
	// CheckpointAccepted: the caller's "1" is recorded; the message is not
	// enqueued yet.
	CheckpointAccepted = "accepted"
	// CheckpointEnqueued: the message is enqueued; the call is not yet
	// recorded as deflected, and the caller has not heard so.
	CheckpointEnqueued = "enqueued"
)

// Transition is one step of a call, as Observe reports it.
type Transition struct {
	CallID, Queue, Number string
	From, To              State
	At                    time.Time
	// Offers is how many offers the call has had.
	Offers int
}

func (o *Options) setDefaults() error {
	if o.ARI == nil || o.Outbox == nil || o.Renderer == nil || o.Redis == nil || o.Rules == nil {
		return errors.New("deflect: Options.ARI, Outbox, Renderer, Redis and Rules are required")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Prefix, "deflectd:")
	def(&o.QueueContext, "queue-entry")
	def(&o.QueueExitKey, "D")
	def(&o.DefaultRegion, "US")
	def(&o.DefaultLanguage, "en")
	if o.Prompts == (Prompts{}) {
		o.Prompts = DefaultPrompts()
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&o.Cooldown, 24*time.Hour)
	dur(&o.QueueTimeout, time.Hour)
	dur(&o.RecordTTL, 7*24*time.Hour)
	dur(&o.ReapEvery, 30*time.Second)
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

// Engine runs the calls of one Stasis application.
type Engine struct {
	opts    Options
	log     *zap.Logger
	store   *store
	metrics *metrics

	mu     sync.Mutex
	calls  map[string]*call      // by caller channel id
	queues map[string]*ewt.Queue // EWT trackers by queue name
	wg     sync.WaitGroup

	// synced is true from a complete resync to the next disconnect: only
	// then does every live call of the application have its goroutine, so
	// only then may reap take a leftover for an orphan. Run's goroutine
	// alone uses it.
	synced bool
}

// New validates opts and returns an Engine; Run starts it.
func New(opts Options) (*Engine, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("deflect: registering metrics: %w", err)
	}
	for _, q := range opts.Queues {
		m.initQueue(q)
	}
	return &Engine{
		opts: opts, log: opts.Logger, metrics: m, calls: map[string]*call{}, queues: map[string]*ewt.Queue{},
		store: &store{rdb: opts.Redis, p: opts.Prefix + "call:", ttl: opts.RecordTTL},
	}, nil
}

// Run reads the application's events and drives its calls until ctx ends or
// the event stream does (the ari client's Run returned). Calls are left in
// Asterisk as they are: the next instance adopts them.
func (e *Engine) Run(ctx context.Context) error {
	defer e.wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, ended := make(chan ari.Event), make(chan error, 1)
	go func() {
		for {
			ev, err := e.opts.ARI.Next(ctx)
			if err != nil {
				ended <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	reap := time.NewTicker(e.opts.ReapEvery)
	defer reap.Stop()
	for {
		select {
		case ev := <-events:
			e.dispatch(ctx, ev)
		case <-reap.C:
			if e.synced {
				e.reap(ctx)
			}
		case err := <-ended:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("deflect: event stream ended: %w", err)
		}
	}
}

// reap removes what the engine's calls left behind in Asterisk when a
// cleanup request failed or never ran (a timeout under load, a crash
// between two requests): Local channels into a queue and mixing bridges
// whose call no goroutine drives. Left alone, a Local channel keeps its
// place in the queue as a phantom caller, and its music on hold costs
// Asterisk CPU until the queue's timeout.
func (e *Engine) reap(ctx context.Context) {
	chans, err := e.opts.ARI.ListChannels(ctx)
	if err != nil {
		e.log.Warn("deflect: listing channels to remove leftovers", zap.Error(err))
		return
	}
	bridges, err := e.opts.ARI.ListBridges(ctx)
	if err != nil {
		e.log.Warn("deflect: listing bridges to remove leftovers", zap.Error(err))
		return
	}
	e.mu.Lock()
	orphan := func(id string) bool { _, ok := e.calls[id]; return !ok }
	listed := make(map[string]bool, len(chans))
	for _, ch := range chans {
		listed[ch.ID] = true
	}
	var gone []string
	for _, ch := range chans {
		// One half of a Local channel takes the other with it.
		if id, ok := strings.CutSuffix(ch.ID, "-q1"); ok && orphan(id) {
			gone = append(gone, ch.ID)
		} else if id, ok := strings.CutSuffix(ch.ID, "-q2"); ok && orphan(id) && !listed[id+"-q1"] {
			gone = append(gone, ch.ID)
		}
	}
	var empty []string
	for _, b := range bridges {
		if id, ok := strings.CutPrefix(b.ID, "br-"); ok && orphan(id) {
			empty = append(empty, b.ID)
		}
	}
	e.mu.Unlock()
	for _, id := range gone {
		if err := e.opts.ARI.Hangup(ctx, id, ""); err != nil && !errors.Is(err, ari.ErrNotFound) {
			e.log.Warn("deflect: hanging up a leftover Local channel", zap.String("channel", id), zap.Error(err))
			continue
		}
		e.metrics.reaped.WithLabelValues("local_channel").Inc()
		e.log.Info("deflect: hung up a Local channel whose call had ended", zap.String("channel", id))
	}
	for _, id := range empty {
		if err := e.opts.ARI.DestroyBridge(ctx, id); err != nil && !errors.Is(err, ari.ErrNotFound) {
			e.log.Warn("deflect: destroying a leftover bridge", zap.String("bridge", id), zap.Error(err))
			continue
		}
		e.metrics.reaped.WithLabelValues("bridge").Inc()
		e.log.Info("deflect: destroyed a bridge whose call had ended", zap.String("bridge", id))
	}
}

// dispatch routes one event to its call, creating or adopting calls.
func (e *Engine) dispatch(ctx context.Context, ev ari.Event) {
	switch ev := ev.(type) {
	case *ari.Connected:
		e.synced = e.resync(ctx, ev.Reconnect)
		return
	case *ari.Disconnected:
		e.synced = false
		return
	case *ari.StasisStart:
		if len(ev.Args) >= 2 && ev.Args[0] == proxyArg {
			e.route(ev.Args[1], ev)
			return
		}
		if _, ok := ev.Arg("queue"); !ok {
			e.log.Warn("deflect: a channel entered the application without queue=; hanging it back to the dialplan is the dialplan's job",
				zap.String("channel", ev.Channel.ID), zap.Strings("args", ev.Args))
			e.metrics.badEntries.Inc()
			return
		}
		e.start(ctx, ev.Channel, ev, nil)
		return
	}
	for _, id := range ari.ChannelIDs(ev) {
		if e.route(callIDOf(id), ev) {
			return
		}
	}
}

// proxyArg is the first application argument of the Local channel the
// bridge originates into a queue: Stasis(deflect,qproxy,<caller id>).
const proxyArg = "qproxy"

// callIDOf maps a channel id to its call: the caller's own id, or the id of
// one of the halves of its Local channel (<caller>-q1, <caller>-q2).
func callIDOf(channelID string) string {
	if s, ok := strings.CutSuffix(channelID, "-q1"); ok {
		return s
	}
	if s, ok := strings.CutSuffix(channelID, "-q2"); ok {
		return s
	}
	return channelID
}

// route hands ev to the call with that id; false if there is none.
func (e *Engine) route(id string, ev ari.Event) bool {
	e.mu.Lock()
	c := e.calls[id]
	e.mu.Unlock()
	if c == nil {
		return false
	}
	c.inbox.push(ev)
	return true
}

// start creates the call's goroutine. rec is its stored record when the
// call is adopted, nil for a new call.
func (e *Engine) start(ctx context.Context, ch ari.Channel, ev *ari.StasisStart, rec *record) {
	e.mu.Lock()
	if _, ok := e.calls[ch.ID]; ok {
		e.mu.Unlock()
		return
	}
	c := newCall(e, ch, ev, rec)
	e.calls[ch.ID] = c
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		c.run(ctx)
		e.mu.Lock()
		delete(e.calls, ch.ID)
		e.mu.Unlock()
	}()
}

// resync adopts the calls already in the application after a (re)connect:
// Asterisk replays no events, so the list and the stored records are the
// truth.
func (e *Engine) resync(ctx context.Context, reconnect bool) bool {
	var snap *ari.Snapshot
	var err error
	for attempt := range 5 {
		if snap, err = e.opts.ARI.Snapshot(ctx); err == nil {
			break
		}
		e.log.Warn("deflect: listing the calls in the application", zap.Int("attempt", attempt+1), zap.Error(err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		e.log.Error("deflect: cannot list the calls in the application; they will be adopted at the next reconnect", zap.Error(err))
		return false
	}
	present := make(map[string]bool, len(snap.Channels))
	adopted := 0
	for _, ch := range snap.Channels {
		present[ch.ID] = true
		if callIDOf(ch.ID) != ch.ID || ch.Dialplan.AppName != "Stasis" {
			continue // a Local half, or a channel only subscribed to
		}
		e.mu.Lock()
		_, known := e.calls[ch.ID]
		e.mu.Unlock()
		if known {
			continue
		}
		rec, err := e.store.load(ctx, ch.ID)
		if err != nil && !errors.Is(err, errNoRecord) {
			e.metrics.redisErrors.Inc()
			e.log.Warn("deflect: no record for an adopted call (Redis unavailable); it keeps waiting without offers",
				zap.String("call", ch.ID), zap.Error(err))
		}
		if rec != nil && (rec.State.final()) {
			continue // its end is being handled, or was
		}
		e.start(ctx, ch, nil, rec)
		adopted++
	}
	// Calls whose caller left during the gap never got their StasisEnd:
	// give it to them now, so they end (and are recovered) like any other.
	e.mu.Lock()
	var vanished []*call
	for id, c := range e.calls {
		if !present[id] {
			vanished = append(vanished, c)
		}
	}
	e.mu.Unlock()
	for _, c := range vanished {
		c.inbox.push(&ari.StasisEnd{EventHeader: ari.EventHeader{Type: ari.TypeStasisEnd, Application: e.opts.ARI.Application(),
			Timestamp: ari.Time{Time: e.opts.Now()}}, Channel: ari.Channel{ID: c.id}})
	}
	e.metrics.adopted.Add(float64(adopted))
	e.log.Info("deflect: calls in the application adopted", zap.Bool("reconnect", reconnect), zap.Int("adopted", adopted),
		zap.Int("vanished", len(vanished)), zap.Int("in_application", len(snap.Channels)))
	return true
}

// Calls returns the ids of the calls the engine is driving now.
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, 0, len(e.calls))
	for id := range e.calls {
		ids = append(ids, id)
	}
	return ids
}

// CallView returns a call as the rules see it, from its stored record: the
// dry-run API's "what would happen to this call".
func (e *Engine) CallView(ctx context.Context, id string, now time.Time) (rules.Call, error) {
	rec, err := e.store.load(ctx, id)
	if err != nil {
		return rules.Call{}, fmt.Errorf("call %s: %w", id, err)
	}
	c := &call{e: e, id: id, rec: *rec}
	return c.view(now), nil
}
