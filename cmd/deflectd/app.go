package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deflectd/deflectd/ari"
	"github.com/deflectd/deflectd/deflect"
	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/inbox/inboxhttp"
	"github.com/deflectd/deflectd/inbox/inboxui"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// AppOptions configures an App.
type AppOptions struct {
	ConfigFile string
	Logger     *zap.Logger
	// Getenv reads secrets from the environment; os.Getenv outside tests.
	Getenv func(string) string
	// Listener, when set, serves the HTTP API instead of Config.Listen
	// (tests pass a :0 listener).
	Listener net.Listener
	// Listeners, when set, serve the split listeners instead of their
	// configured addresses, by name ("admin", "inbox", "webhook").
	Listeners map[string]net.Listener
}

// App is deflectd wired together: the ARI client, the call engine, the
// WhatsApp outbox and webhooks, and the HTTP API. Run runs every part under
// one errgroup; Reload swaps the rules and templates.
type App struct {
	cfg      *Config
	log      *zap.Logger
	reg      *prometheus.Registry
	rdb      *redis.Client
	ari      *ari.Client
	outbox   *outbox.Outbox
	engine   *deflect.Engine
	hook     *webhook.Handler
	proc     *webhook.Processor
	inbox    *inbox.Inbox
	inboxAPI *inboxhttp.Server
	rules    atomic.Pointer[rules.Rules]
	catalog  catalogRef
	ln       net.Listener
	lns      map[string]net.Listener
	// adminToken guards the admin endpoints that change state ("": none).
	adminToken string

	reloadMu      sync.Mutex
	reloadOK      prometheus.Gauge
	reloadSuccess prometheus.Gauge
}

// catalogRef is the template catalog in force, swapped on reload.
type catalogRef struct {
	p atomic.Pointer[whatsapp.Catalog]
}

func (c *catalogRef) Render(name, language, to string, cc whatsapp.CallContext) (*whatsapp.Message, error) {
	return c.p.Load().Render(name, language, to, cc)
}

func (c *catalogRef) Validate(m *whatsapp.Message) error { return c.p.Load().Validate(m) }

// NewApp loads the configuration and builds every part; it starts nothing.
func NewApp(o AppOptions) (*App, error) {
	cfg, err := loadConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, log: log, reg: reg, ln: o.Listener, lns: o.Listeners,
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "deflectd_config_last_reload_successful",
			Help: "1 if the last load of the rules and templates succeeded, 0 if the old ones were kept."}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "deflectd_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the rules and templates."}),
	}
	reg.MustRegister(a.reloadOK, a.reloadSuccess)
	if err := a.loadRules(); err != nil {
		return nil, err
	}
	if a.adminToken, err = cfg.adminToken(); err != nil {
		return nil, err
	}

	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	a.rdb = redis.NewClient(ropt)

	pw, err := cfg.ariPassword(o.Getenv)
	if err != nil {
		return nil, err
	}
	a.ari, err = ari.New(ari.Options{URL: cfg.ARI.URL, Username: cfg.ARI.User, Password: pw, Application: cfg.ARI.App, MaxConnections: cfg.ARI.MaxConnections,
		Logger: log.Named("ari"), Registerer: reg})
	if err != nil {
		return nil, err
	}

	secrets, err := cfg.WhatsApp.LoadSecrets(o.Getenv)
	if err != nil {
		return nil, err
	}
	client, err := whatsapp.NewClient(cfg.WhatsApp.ClientOptions(secrets))
	if err != nil {
		return nil, err
	}
	// The outbox tells the inbox how agent replies ended; the inbox is
	// made after the outbox, which it sends through.
	var results func(context.Context, outbox.Result)
	a.outbox, err = outbox.New(outbox.Options{
		Redis: a.rdb, Prefix: cfg.KeyPrefix, Sender: client, Validator: &a.catalog, PhoneNumberID: cfg.WhatsApp.PhoneNumberID,
		MPS: cfg.WhatsApp.MPS, TierLimit: cfg.WhatsApp.TierLimit, ConversionWindow: cfg.WhatsApp.ConversionWindow,
		PairInterval: cfg.WhatsApp.PairInterval,
		Results: func(ctx context.Context, r outbox.Result) {
			if results != nil {
				results(ctx, r)
			}
		},
		Logger: log.Named("outbox"), Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	var inboxSubs []func(context.Context, whatsapp.Inbound) error
	var statusSubs []func(context.Context, whatsapp.Status) error
	if cfg.Inbox != nil {
		users, err := cfg.loadUsers()
		if err != nil {
			return nil, err
		}
		a.inbox, err = inbox.New(inbox.Options{Redis: a.rdb, Prefix: cfg.KeyPrefix, Config: cfg.Inbox, Users: users,
			Outbox: a.outbox, Reader: client, Renderer: &a.catalog,
			Hours: func(name string) (inbox.Hours, bool) {
				iv, ok := a.rules.Load().Interval(name)
				return iv, ok
			},
			Logger: log.Named("inbox"), Registerer: reg})
		if err != nil {
			return nil, err
		}
		results = a.inbox.OutboxResult
		inboxSubs = append(inboxSubs, a.inbox.Ingest)
		statusSubs = append(statusSubs, a.inbox.ApplyStatus)
		a.inboxAPI, err = inboxhttp.New(inboxhttp.Options{Inbox: a.inbox, Redis: a.rdb, Prefix: cfg.KeyPrefix,
			SecureCookies: cfg.SecureCookies, Templates: a.pickerTemplates, Logger: log.Named("inboxhttp"), Registerer: reg})
		if err != nil {
			return nil, err
		}
	}
	intake, err := webhook.NewRedisIntake(webhook.RedisIntakeOptions{Client: a.rdb, Prefix: cfg.KeyPrefix})
	if err != nil {
		return nil, err
	}
	a.hook, err = webhook.NewHandler(webhook.HandlerOptions{AppSecret: []byte(secrets.AppSecret.Reveal()),
		VerifyToken: secrets.VerifyToken.Reveal(), Intake: intake, Logger: log.Named("webhook"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	a.proc, err = webhook.NewProcessor(webhook.ProcessorOptions{Client: a.rdb, Prefix: cfg.KeyPrefix,
		OptOutKeywords: cfg.WhatsApp.OptOutKeywords, Statuses: a.outbox, OptOuts: a.outbox, Conversions: a.outbox,
		Subscribers: inboxSubs, StatusSubscribers: statusSubs,
		Logger: log.Named("webhook"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	crash, err := crashAt(o.Getenv("DEFLECTD_CRASH_AT"), log)
	if err != nil {
		return nil, err
	}
	a.engine, err = deflect.New(deflect.Options{
		ARI: a.ari, Outbox: a.outbox, Renderer: &a.catalog, Redis: a.rdb, Rules: a.rules.Load,
		Prefix: cfg.KeyPrefix, QueueContext: cfg.ARI.QueueContext, Queues: cfg.Calls.Queues,
		DefaultRegion: cfg.Calls.DefaultRegion, DefaultLanguage: cfg.Calls.DefaultLanguage,
		TemplateLanguages: cfg.Calls.TemplateLanguages, Cooldown: cfg.Calls.Cooldown, QueueTimeout: cfg.Calls.QueueTimeout, QueueExitKey: cfg.Calls.QueueExitKey,
		Checkpoint: crash,
		Logger:     log.Named("deflect"), Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// loadRules loads the rules and the templates, checks that every template
// the rules name exists, and swaps both in; on any error the ones in force
// stay.
func (a *App) loadRules() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	rs, cat, err := loadRulesAndTemplates(a.cfg)
	if err != nil {
		a.reloadOK.Set(0)
		return err
	}
	a.rules.Store(rs)
	a.catalog.p.Store(cat)
	a.reloadOK.Set(1)
	a.reloadSuccess.SetToCurrentTime()
	return nil
}

func loadRulesAndTemplates(cfg *Config) (*rules.Rules, *whatsapp.Catalog, error) {
	rs, err := rules.LoadFile(cfg.path(cfg.RulesFile))
	if err != nil {
		return nil, nil, err
	}
	cat, err := whatsapp.LoadCatalogFile(cfg.path(cfg.TemplatesFile))
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, t := range cat.Templates() {
		names = append(names, t.Name)
	}
	var errs []error
	for _, t := range rs.Templates() {
		if !slices.Contains(names, t) {
			errs = append(errs, fmt.Errorf("%s: template %q is not in %s", cfg.RulesFile, t, cfg.TemplatesFile))
		}
	}
	if cfg.Inbox != nil {
		// The inbox's business hours are the rules file's time intervals,
		// so a reload that drops one they name is refused.
		err := cfg.Inbox.CheckReferences(func(name string) bool { _, ok := rs.Interval(name); return ok },
			func(name string) bool { return slices.Contains(names, name) })
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return rs, cat, nil
}

// Reload reloads the rules and templates (SIGHUP, POST /-/reload). A broken
// file keeps the old ones and returns why.
func (a *App) Reload() error {
	if err := a.loadRules(); err != nil {
		a.log.Error("reload failed; the old rules and templates stay in force", zap.Error(err))
		return err
	}
	a.log.Info("rules and templates reloaded")
	return nil
}

// Run runs every part until ctx ends or one fails.
func (a *App) Run(ctx context.Context) error {
	// Listen first: a taken port fails Run before anything starts.
	type served struct {
		name string
		ln   net.Listener
		srv  *http.Server
	}
	var servers []served
	closeAll := func() {
		for _, sv := range servers {
			sv.ln.Close()
		}
	}
	handlers := a.handlers()
	for name, lc := range a.cfg.listenerConfigs() {
		ln := a.lns[name]
		if name == listenAll && a.ln != nil {
			ln = a.ln
		}
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", lc.Address); err != nil {
				closeAll()
				return fmt.Errorf("listeners.%s: %w", name, err)
			}
		}
		t, err := a.cfg.tlsConfig(lc)
		if err != nil {
			ln.Close()
			closeAll()
			return fmt.Errorf("listeners.%s: %w", name, err)
		}
		servers = append(servers, served{name: name, ln: ln, srv: newHTTPServer(handlers[name], t)})
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.ari.Run(ctx) })
	g.Go(func() error { return a.engine.Run(ctx) })
	g.Go(func() error { return a.outbox.Run(ctx) })
	g.Go(func() error { return a.proc.Run(ctx) })
	if a.inbox != nil {
		g.Go(func() error { return a.inbox.Run(ctx) })
		g.Go(func() error { return a.inboxAPI.Run(ctx) })
	}
	for _, sv := range servers {
		// Read before Serve starts: it sets the server's TLS fields up.
		withTLS := sv.srv.TLSConfig != nil
		a.log.Info("listening", zap.String("listener", sv.name), zap.String("address", sv.ln.Addr().String()),
			zap.Bool("tls", withTLS))
		g.Go(func() error {
			var err error
			if withTLS {
				err = sv.srv.ServeTLS(sv.ln, "", "")
			} else {
				err = sv.srv.Serve(sv.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("listeners.%s: %w", sv.name, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return sv.srv.Shutdown(sctx)
		})
	}
	a.log.Info("deflectd running", zap.String("app", a.cfg.ARI.App))
	err := g.Wait()
	a.rdb.Close()
	return err
}

// handlers returns what each listener serves. Each listener has its own
// mux, so a path of another listener is a 404 there.
func (a *App) handlers() map[string]http.Handler {
	healthy := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	admin := func(mux *http.ServeMux) {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
		mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
			if st := a.ari.State(); st != ari.StateConnected {
				http.Error(w, "ARI "+st.String(), http.StatusServiceUnavailable)
				return
			}
			if err := a.rdb.Ping(r.Context()).Err(); err != nil {
				http.Error(w, "redis: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		mux.HandleFunc("POST /-/reload", requireAdmin(a.adminToken, func(w http.ResponseWriter, r *http.Request) {
			// It takes no body: one is a client that thinks it sends
			// something, and it should learn it does not.
			if n, _ := r.Body.Read(make([]byte, 1)); n > 0 || r.ContentLength > 0 {
				http.Error(w, "POST /-/reload takes no body: it reloads the files named in the config", http.StatusBadRequest)
				return
			}
			if err := a.Reload(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintln(w, "reloaded")
		}))
		mux.HandleFunc("POST /api/v1/dry-run", requireAdmin(a.adminToken, a.dryRun))
	}
	webhook := func(mux *http.ServeMux) { mux.Handle("/webhook", a.hook) }
	inboxUI := func(mux *http.ServeMux) {
		if a.inboxAPI != nil {
			mux.Handle(inboxhttp.Base, a.inboxAPI.Handler())
			mux.Handle(inboxui.Base, inboxui.Handler())
		}
	}
	build := func(parts ...func(*http.ServeMux)) http.Handler {
		mux := http.NewServeMux()
		// Every listener answers its load balancer's health check.
		mux.HandleFunc("GET /-/healthy", healthy)
		for _, p := range parts {
			p(mux)
		}
		return mux
	}
	return map[string]http.Handler{
		listenAll:     build(admin, webhook, inboxUI),
		listenAdmin:   build(admin),
		listenWebhook: build(webhook),
		listenInbox:   build(inboxUI),
	}
}

// Handler serves the whole HTTP surface on one listener, as Listen does.
func (a *App) Handler() http.Handler { return a.handlers()[listenAll] }

// dryRunRequest describes a call for the dry-run API: either a live call
// by id, or a hypothetical one.
type dryRunRequest struct {
	CallID   string `json:"call_id,omitempty"`
	Queue    string `json:"queue"`
	Option   string `json:"option"`
	Reason   string `json:"reason"`
	Language string `json:"language"`
	// WaitSeconds is how long the call has waited; EWTSeconds its
	// estimated wait; SinceOfferSeconds how long ago the last offer was.
	WaitSeconds       float64 `json:"wait_seconds"`
	EWTSeconds        float64 `json:"ewt_seconds"`
	Position          int     `json:"position"`
	Offers            int     `json:"offers"`
	SinceOfferSeconds float64 `json:"since_offer_seconds"`
	Declined          bool    `json:"declined"`
	Abandoned         bool    `json:"abandoned"`
}

// dryRun answers "what would happen to this call now", with the route
// walked, without touching any call.
func (a *App) dryRun(w http.ResponseWriter, r *http.Request) {
	var req dryRunRequest
	const maxBody = 64 << 10
	if r.ContentLength > maxBody {
		http.Error(w, fmt.Sprintf("dry-run: the body is larger than %d bytes", maxBody), http.StatusRequestEntityTooLarge)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "dry-run: "+err.Error(), status)
		return
	}
	now := time.Now()
	var c rules.Call
	if req.CallID != "" {
		var err error
		if c, err = a.engine.CallView(r.Context(), req.CallID, now); err != nil {
			http.Error(w, "dry-run: "+err.Error(), http.StatusNotFound)
			return
		}
	} else {
		if req.Queue == "" {
			http.Error(w, "dry-run: queue is required (or call_id)", http.StatusBadRequest)
			return
		}
		sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
		c = rules.Call{Queue: req.Queue, Option: req.Option, Reason: req.Reason, Language: req.Language,
			Entered: now.Add(-sec(req.WaitSeconds)), EWT: sec(req.EWTSeconds), Position: req.Position,
			Offers: req.Offers, Declined: req.Declined, Abandoned: req.Abandoned}
		if req.Offers > 0 {
			c.LastOffer = now.Add(-sec(req.SinceOfferSeconds))
		}
		if req.Abandoned {
			c.AbandonedAt = now
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.rules.Load().Explain(c, now))
}

// pickerTemplates lists the catalog's templates for the inbox's template
// picker.
func (a *App) pickerTemplates() []inboxhttp.Template {
	var out []inboxhttp.Template
	for _, t := range a.catalog.p.Load().Templates() {
		out = append(out, inboxhttp.Template{Name: t.Name, Language: t.Language, Category: t.Category})
	}
	return out
}

// Inbox returns the inbox, nil when the config has none.
func (a *App) Inbox() *inbox.Inbox { return a.inbox }

// crashAt returns a deflect checkpoint that kills the process with SIGKILL
// the first time a call reaches point (DEFLECTD_CRASH_AT: entered, offered,
// accepted or enqueued), or nil without one. The chaos suite (make chaos)
// uses it to crash deflectd in each state of a call; nothing else should
// set it.
func crashAt(point string, log *zap.Logger) (func(string), error) {
	switch point {
	case "":
		return nil, nil
	case deflect.CheckpointEntered, deflect.CheckpointOffered, deflect.CheckpointAccepted, deflect.CheckpointEnqueued:
	default:
		return nil, fmt.Errorf("DEFLECTD_CRASH_AT=%q: want entered, offered, accepted or enqueued", point)
	}
	log.Warn("DEFLECTD_CRASH_AT is set: the process kills itself when a call reaches this point", zap.String("point", point))
	return func(p string) {
		if p != point {
			return
		}
		log.Warn("deflect: crashing as DEFLECTD_CRASH_AT asks", zap.String("point", p))
		log.Sync()
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}, nil
}
