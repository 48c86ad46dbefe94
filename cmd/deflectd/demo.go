package main

// deflectd demo: the real bridge (NewApp, Run: the code path of `deflectd
// run`) against a simulated contact center behind the fake Asterisk
// (ari/aritest/sim), the fake Cloud API with customers who answer, and a
// store: REDIS_URL, else a redis-server of its own, else an embedded
// miniredis.
//
// The simulation runs -speed times faster than the wall clock, but the
// bridge's timers are real. So the demo's copy of the rules has every
// duration (sla, reoffer_every, offer_timeout, short_abandon,
// offer_at_entry_ewt_above) divided by -speed: a 90 s SLA is 9 s of real
// time at 10x, which is 90 s of the simulation's time. What the bridge
// measures (wait histograms, WaitText in messages) is in real seconds.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/ari/aritest/sim"
	"github.com/deflectd/deflectd/inbox/inboxsim"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	duration, progress  time.Duration
	speed, rate         float64
	agents              int
	seed                uint64
	listen, statusAddr  string
	accept, decline     float64
	replyRate           float64
	configDir           string
	logFile             string
	stdout              io.Writer
	onReady             func(app, status string) // tests learn the addresses
	onFinish            func()                   // tests scrape the bridge before it stops
	drainTimeoutSimTime time.Duration
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := demoOptions{stdout: stdout}
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "simulated time callers keep arriving")
	fs.Float64Var(&o.speed, "speed", 20, "simulated seconds per real second")
	fs.Float64Var(&o.rate, "rate", 6, "callers per simulated minute, per queue")
	fs.IntVar(&o.agents, "agents", 3, "agents per queue")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the simulation and the customers")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9102", "the bridge's HTTP address (/metrics, /webhook)")
	fs.StringVar(&o.statusAddr, "status-listen", "127.0.0.1:9103", "the demo's status page")
	fs.Float64Var(&o.accept, "accept", 0.4, "chance a caller presses 1 after the offer")
	fs.Float64Var(&o.decline, "decline", 0.3, "chance a caller presses 2 after the offer")
	fs.Float64Var(&o.replyRate, "reply-rate", 0.6, "chance a customer answers a WhatsApp message")
	fs.DurationVar(&o.progress, "progress", 3*time.Second, "real time between progress lines")
	fs.StringVar(&o.configDir, "configs", "", "directory with rules.yaml and templates.yaml (default: configs/deflectd of the module)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.speed <= 0 || o.duration <= 0 {
		fmt.Fprintln(stderr, "deflectd demo: -speed and -duration must be positive")
		return 2
	}
	if err := runDemo(ctx, o); err != nil {
		fmt.Fprintln(stderr, "deflectd demo:", err)
		return 1
	}
	return 0
}

// demoSummary is what the demo prints at the end.
type demoSummary struct {
	Sim                                  sim.Stats
	Entered, Answered, Abandoned, Short  float64
	Offers, Accepted, Declined, TimedOut float64
	DeflectOffer, DeflectPerform         float64
	DeflectRecover                       float64
	Sent, Delivered, Read                float64
	Conversions                          float64
	FakeMessages                         int
	Inbox                                demoInboxSummary
}

func (d demoSummary) abandonRate() float64 {
	if d.Entered-d.Short <= 0 {
		return 0
	}
	return d.Abandoned / (d.Entered - d.Short)
}

func runDemo(ctx context.Context, o demoOptions) error {
	if o.drainTimeoutSimTime == 0 {
		o.drainTimeoutSimTime = 15 * time.Minute
	}
	dir, err := os.MkdirTemp("", "deflectd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := o.configDir
	if src == "" {
		if src, err = moduleConfigs(); err != nil {
			return err
		}
	}
	if src, err = filepath.Abs(src); err != nil {
		return err
	}
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := scaleRules(filepath.Join(src, "rules.yaml"), rulesFile, o.speed); err != nil {
		return err
	}
	templatesFile := filepath.Join(src, "templates.yaml")
	cat, err := whatsapp.LoadCatalogFile(templatesFile)
	if err != nil {
		return err
	}

	redisURL, prefix, stopStore, err := demoStore(ctx, o.stdout)
	if err != nil {
		return err
	}
	defer stopStore()

	// The fake Cloud API, served on a listener of the demo's own.
	const token, appSecret, verify = "demo-token", "demo-app-secret", "demo-verify"
	scaled := func(d time.Duration) time.Duration { return time.Duration(float64(d) / o.speed) }
	wa := whatsapptest.New(whatsapptest.Options{Token: token, AppSecret: appSecret, Templates: demoTemplates(cat),
		AutoStatus: &whatsapptest.AutoStatus{Interval: scaled(2 * time.Second)},
		Customers: &whatsapptest.Customers{ReplyRate: o.replyRate, TapRate: 0.5, Text: "Hola, sigo por acá", Delay: scaled(20 * time.Second),
			AlwaysTap: []string{"csat_v1"}},
		Seed: o.seed})
	defer wa.Close()
	waLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	waSrv := &http.Server{Handler: wa.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go waSrv.Serve(waLn)
	defer waSrv.Close()

	fake := aritest.NewServer()
	defer fake.Close()
	entries := map[string][]sim.Entry{
		"sales": {{Option: "1", Reason: "billing", Weight: 3}, {Option: "2", Reason: "order_status", Weight: 1},
			{Option: "0", Reason: "agent", Weight: 1}, {Option: "none", Reason: "general", Weight: 2}},
		"support": {{Option: "3", Reason: "tech", Weight: 3}, {Option: "4", Reason: "returns", Weight: 2}},
	}
	var queues []sim.Queue
	for _, name := range []string{"sales", "support"} {
		queues = append(queues, sim.Queue{Name: name, Rate: o.rate, Agents: o.agents,
			HandleTime: 4 * time.Minute, Patience: 3 * time.Minute, Entries: entries[name]})
	}
	contact, err := sim.New(sim.Options{Server: fake, Queues: queues, Speed: o.speed, Seed: o.seed,
		Duration: o.duration, AcceptRate: o.accept, DeclineRate: o.decline})
	if err != nil {
		return err
	}

	ib, inboxCfg, err := newDemoInbox(dir, o.speed)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`listen: %q
redis_url: %q
key_prefix: %q
ari:
  url: %q
  user: %q
calls:
  default_region: AR
  default_language: es
  template_languages: {es: es_AR, en: en_US}
  queues: [sales, support]
rules_file: %q
templates_file: %q
whatsapp:
  base_url: %q
  version: v25.0
  phone_number_id: %q
  mps: 80
  tier_limit: 0
  pair_interval: %v
`, ln.Addr().String(), redisURL, prefix, fake.URL, fake.Username, rulesFile, templatesFile,
		"http://"+waLn.Addr().String(), whatsapptest.DefaultPhoneNumberID, scaled(6*time.Second).Round(time.Millisecond)) + inboxCfg
	cfgFile := filepath.Join(dir, "deflectd.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		ln.Close()
		return err
	}
	env := map[string]string{"DEFLECTD_ARI_PASSWORD": fake.Password, "DEFLECTD_WA_TOKEN": token,
		"DEFLECTD_WA_APP_SECRET": appSecret, "DEFLECTD_WA_VERIFY_TOKEN": verify}
	logPath := o.logFile
	if logPath == "" {
		logPath = filepath.Join(os.TempDir(), "deflectd-demo.log")
	}
	log, closeLog, err := demoLogger(logPath)
	if err != nil {
		ln.Close()
		return err
	}
	defer closeLog()
	app, err := NewApp(AppOptions{ConfigFile: cfgFile, Logger: log, Getenv: func(k string) string { return env[k] }, Listener: ln})
	if err != nil {
		ln.Close()
		return err
	}
	appURL := "http://" + ln.Addr().String()
	wa.SetWebhookURL(appURL + "/webhook")
	if err := ib.start(appURL, wa, o); err != nil {
		ln.Close()
		return err
	}

	stLn, err := net.Listen("tcp", o.statusAddr)
	if err != nil {
		ln.Close()
		return err
	}
	statusURL := "http://" + stLn.Addr().String() + "/"
	fmt.Fprintf(o.stdout, "deflectd demo: %v of a simulated contact center at %gx (2 queues, %d agents each, %g callers/min each)\n",
		o.duration, o.speed, o.agents, o.rate)
	fmt.Fprintf(o.stdout, "  status page  %s\n  metrics      %s/metrics\n  bridge log   %s\n", statusURL, appURL, logPath)
	fmt.Fprintf(o.stdout, "  inbox        %s/inbox/ (sign in as sofia, the supervisor, or demo, an agent; password %s)\n",
		appURL, demoPassword)
	fmt.Fprintf(o.stdout, "  inbox API    %s (%d simulated agents in %s)\n",
		ib.api, len(ib.agents), strings.Join(ib.teams, ", "))
	fmt.Fprintf(o.stdout, "  rules: %s with every duration divided by %g (the bridge's clock is real)\n", filepath.Join(src, "rules.yaml"), o.speed)
	fmt.Fprintf(o.stdout, "  inbox policy (simulated time): critical after 2m, escalated after 5m, claim timeout 4m\n")
	fmt.Fprintf(o.stdout, "  try          curl -H 'Authorization: Bearer %s' '%sconversations?view=pending'\n", ib.supervisor.Token, ib.api)

	g, gctx := errgroup.WithContext(ctx)
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(gctx))
	defer stopApp()
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(appCtx) }()
	simCtx, stopSim := context.WithCancel(gctx)
	defer stopSim()
	g.Go(func() error { return contact.Run(simCtx) })
	g.Go(func() error { return ib.sim.Run(simCtx) })
	summary := func() demoSummary {
		d := collect(app, contact, wa)
		d.Inbox = ib.collect(ctx, app, o.speed)
		return d
	}
	stSrv := &http.Server{Handler: statusHandler(summary, appURL, ib.api), ReadHeaderTimeout: 10 * time.Second}
	go stSrv.Serve(stLn)
	defer stSrv.Close()
	if o.onReady != nil {
		o.onReady(appURL, statusURL)
	}

	// Progress until the callers stop coming and the last one leaves.
	tick := time.NewTicker(o.progress)
	defer tick.Stop()
	drainLimit := time.After(time.Duration(float64(o.duration+o.drainTimeoutSimTime) / o.speed))
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-appDone:
			runErr = fmt.Errorf("the bridge stopped: %v", err)
			appDone <- err
			break wait
		case <-contact.Drained():
			break wait
		case <-drainLimit:
			fmt.Fprintln(o.stdout, "deflectd demo: callers still on the line at the drain limit; summarising anyway")
			break wait
		case <-tick.C:
			printProgress(o.stdout, summary())
		}
	}
	// Customers answer a little after the last message; give them time,
	// then let the agents finish the chats they are working.
	if runErr == nil && ctx.Err() == nil {
		settle := time.NewTimer(scaled(30*time.Second) + 2*time.Second)
		select {
		case <-settle.C:
		case <-ctx.Done():
		}
		settle.Stop()
		if !waitQuiet(ctx, ib.sim, scaled(10*time.Second), scaled(10*time.Minute)) && ctx.Err() == nil {
			fmt.Fprintf(o.stdout, "deflectd demo: the agents were still working chats at the limit (%s); summarising anyway\n", ib.sim.Work())
		}
	}
	final := summary()
	if o.onFinish != nil {
		o.onFinish()
	}
	// Stop what talks to the bridge before the bridge: the agents and the
	// callers, then the fake Cloud API's webhooks in flight.
	stopSim()
	g.Wait()
	wa.Close()
	stopApp()
	if err := <-appDone; err != nil && runErr == nil {
		runErr = fmt.Errorf("the bridge stopped: %v", err)
	}
	printSummary(o.stdout, final)
	return runErr
}

// moduleConfigs finds configs/deflectd by walking up from the working
// directory to deflectd's go.mod.
func moduleConfigs() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/deflectd/deflectd\n")) {
			return filepath.Join(dir, "configs", "deflectd"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("configs/deflectd not found: run the demo inside the deflectd repository, or pass -configs DIR")
		}
		dir = parent
	}
}

// scaledKeys are the rule settings that are durations of the call's life.
var scaledKeys = map[string]bool{"sla": true, "reoffer_every": true, "offer_timeout": true,
	"short_abandon": true, "offer_at_entry_ewt_above": true}

// scaleRules copies a rules file with every call-life duration divided by
// speed, so that the real-time bridge keeps pace with the simulation.
func scaleRules(from, to string, speed float64) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if scaledKeys[k.Value] && v.Kind == yaml.ScalarNode {
					d, err := time.ParseDuration(v.Value)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", from, k.Value, err)
					}
					sd := time.Duration(float64(d) / speed).Round(time.Millisecond)
					if sd == 0 && d > 0 {
						sd = time.Millisecond
					}
					v.Value = sd.String()
				}
			}
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(&doc); err != nil {
		return err
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	return os.WriteFile(to, out, 0o600)
}

// demoStore returns the Redis the demo uses: REDIS_URL (under a key prefix
// of its own), else a redis-server on a free loopback port, else an
// embedded miniredis.
func demoStore(ctx context.Context, stdout io.Writer) (url, prefix string, stop func(), err error) {
	prefix = fmt.Sprintf("deflectd-demo:%d:", time.Now().UnixNano())
	if u := os.Getenv("REDIS_URL"); u != "" {
		fmt.Fprintf(stdout, "  store        REDIS_URL (keys under %s)\n", prefix)
		return u, prefix, func() {}, nil
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			return "", "", nil, err
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait() }
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitDial(ctx, addr, 5*time.Second); err != nil {
			stop()
			return "", "", nil, fmt.Errorf("redis-server: %w", err)
		}
		fmt.Fprintf(stdout, "  store        redis-server on %s (its own, discarded at the end)\n", addr)
		return "redis://" + addr + "/0", prefix, stop, nil
	}
	m := miniredis.NewMiniRedis()
	// miniredis only expires keys on FastForward unless told to follow the
	// clock. The outbox relies on expiry (the pair-spacing and breaker keys):
	// without it a second message to a caller waits forever.
	m.ClockTTL(true)
	if err := m.Start(); err != nil {
		return "", "", nil, err
	}
	fmt.Fprintf(stdout, "  store        embedded miniredis on %s: fine for the demo; use a real Redis in\n"+
		"               production (install redis-server or set REDIS_URL)\n", m.Addr())
	return "redis://" + m.Addr() + "/0", prefix, m.Close, nil
}

func waitDial(ctx context.Context, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func demoLogger(path string) (*zap.Logger, func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(f), zap.InfoLevel))
	return log, func() { log.Sync(); f.Close() }, nil
}

// demoTemplates registers the catalog's templates at the fake Cloud API,
// as a business creates them in WhatsApp Manager, with the button labels
// the simulated customers tap: "Hablar con un agente", or a survey's
// scores.
func demoTemplates(cat *whatsapp.Catalog) []whatsapptest.Template {
	out := whatsapptest.TemplatesFromCatalog(cat)
	for i := range out {
		quick := 0
		for _, b := range out[i].Buttons {
			if b.SubType == whatsapp.ButtonQuickReply {
				quick++
			}
		}
		for j := range out[i].Buttons {
			out[i].Buttons[j].Text = "Hablar con un agente"
			if quick > 1 {
				out[i].Buttons[j].Text = strconv.Itoa(j + 1) // a survey's scores
			}
		}
	}
	return out
}

// collect reads the bridge's own metrics (the registry /metrics serves)
// and the simulation's counts.
func collect(app *App, contact *sim.Sim, wa *whatsapptest.Server) demoSummary {
	fams, _ := app.reg.Gather()
	sum := func(name string, match map[string]string) float64 {
		total := 0.0
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		metric:
			for _, m := range f.GetMetric() {
				for k, v := range match {
					if labelValue(m, k) != v {
						continue metric
					}
				}
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return total
	}
	return demoSummary{
		Sim:     contact.Stats(),
		Entered: sum("deflectd_calls_entered_total", nil), Answered: sum("deflectd_calls_answered_total", nil),
		Abandoned: sum("deflectd_calls_abandoned_total", nil), Short: sum("deflectd_calls_short_abandoned_total", nil),
		Offers:         sum("deflectd_offers_total", nil),
		Accepted:       sum("deflectd_offer_responses_total", map[string]string{"response": "accepted"}),
		Declined:       sum("deflectd_offer_responses_total", map[string]string{"response": "declined"}),
		TimedOut:       sum("deflectd_offer_responses_total", map[string]string{"response": "timeout"}),
		DeflectOffer:   sum("deflectd_deflections_total", map[string]string{"mode": "offer"}),
		DeflectPerform: sum("deflectd_deflections_total", map[string]string{"mode": "perform"}),
		DeflectRecover: sum("deflectd_deflections_total", map[string]string{"mode": "recover"}),
		Sent:           sum("deflectd_whatsapp_sends_total", map[string]string{"result": "sent"}),
		Delivered:      sum("deflectd_whatsapp_status_updates_total", map[string]string{"status": "delivered", "applied": "true"}),
		Read:           sum("deflectd_whatsapp_status_updates_total", map[string]string{"status": "read", "applied": "true"}),
		Conversions:    sum("deflectd_whatsapp_conversions_total", nil),
		FakeMessages:   len(wa.Messages()),
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func printProgress(w io.Writer, d demoSummary) {
	// Abandons are the bridge's count, as in the summary (the simulator's
	// own count includes short abandons).
	fmt.Fprintf(w, "[%6s] calls %d  waiting %d  answered %d  abandoned %.0f (+%.0f short)  offers %.0f  accepted %.0f  deflections %.0f  sent %.0f  conversions %.0f  chats %.0f  pending %d\n",
		d.Sim.SimTime.Truncate(time.Second), d.Sim.Arrivals, d.Sim.Waiting, d.Sim.Answered, d.Abandoned, d.Short,
		d.Offers, d.Accepted, d.DeflectOffer+d.DeflectPerform+d.DeflectRecover, d.Sent, d.Conversions, d.Inbox.Created, d.Inbox.Today.Pending)
}

func printSummary(w io.Writer, d demoSummary) {
	fmt.Fprintf(w, `
deflectd demo summary (%s simulated)
  calls                 %d entered the bridge (%0.f counted by deflectd)
  answered by agents    %.0f
  abandoned             %.0f, plus %.0f short abandons (not counted)
  abandon rate          %.1f%% (excluding short abandons)
  offers                %.0f played: %.0f accepted, %.0f declined, %.0f unanswered
  deflections           %.0f by offer, %.0f performed, %.0f recovery messages
  messages sent         %.0f (%d at the fake Cloud API; %.0f delivered, %.0f read)
  conversions           %.0f (customers who replied or tapped)
`, d.Sim.SimTime.Truncate(time.Second), d.Sim.Arrivals, d.Entered, d.Answered, d.Abandoned, d.Short, 100*d.abandonRate(),
		d.Offers, d.Accepted, d.Declined, d.TimedOut, d.DeflectOffer, d.DeflectPerform, d.DeflectRecover,
		d.Sent, d.FakeMessages, d.Delivered, d.Read, d.Conversions)
	printInboxSummary(w, d.Inbox)
}

// waitQuiet waits until the simulated agents have had nothing to do for
// hold, or until limit; it reports whether they went quiet.
func waitQuiet(ctx context.Context, s *inboxsim.Sim, hold, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case now := <-tick.C:
			switch {
			case !s.Quiet():
				since = time.Time{}
			case since.IsZero():
				since = now
			case now.Sub(since) >= hold:
				return true
			}
		}
	}
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>deflectd demo</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em}td:last-child{text-align:right;font-weight:bold}</style></head>
<body><h1>deflectd demo</h1><p>simulated time {{.Sim.SimTime}} · <a href="{{.Metrics}}">/metrics</a> ·
<a href="{{.InboxUI}}">the inbox</a> (sign in as sofia or demo; the password is in the demo's output) ·
inbox API <a href="{{.InboxAPI}}">{{.InboxAPI}}</a></p>
<table>
<tr><td>calls</td><td>{{.Sim.Arrivals}}</td></tr>
<tr><td>waiting now</td><td>{{.Sim.Waiting}}</td></tr>
<tr><td>answered</td><td>{{.Answered}}</td></tr>
<tr><td>abandoned (short)</td><td>{{.Abandoned}} ({{.Short}})</td></tr>
<tr><td>abandon rate</td><td>{{printf "%.1f%%" .Rate}}</td></tr>
<tr><td>offers / accepted</td><td>{{.Offers}} / {{.Accepted}}</td></tr>
<tr><td>deflections: offer / perform / recover</td><td>{{.DeflectOffer}} / {{.DeflectPerform}} / {{.DeflectRecover}}</td></tr>
<tr><td>WhatsApp sent / delivered / read</td><td>{{.Sent}} / {{.Delivered}} / {{.Read}}</td></tr>
<tr><td>conversions</td><td>{{.Conversions}}</td></tr>
<tr><td>inbox chats opened (from calls)</td><td>{{.Inbox.Created}} ({{.Inbox.FromCalls}})</td></tr>
<tr><td>inbox pending now / seen and unanswered</td><td>{{.Inbox.Today.Pending}} / {{.Inbox.Today.SeenUnanswered}}</td></tr>
<tr><td>inbox first response (mean, simulated s)</td><td>{{printf "%.0f" .Inbox.Today.FirstResponse}}</td></tr>
<tr><td>inbox resolved / escalated</td><td>{{.Inbox.Agents.Resolved}} / {{.Inbox.Escalated}}</td></tr>
</table></body></html>
`))

func statusHandler(summary func() demoSummary, appURL, inboxAPI string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		d := summary()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		statusPage.Execute(w, struct {
			demoSummary
			Rate     float64
			Metrics  string
			InboxAPI string
			InboxUI  string
		}{d, 100 * d.abandonRate(), appURL + "/metrics", inboxAPI, appURL + "/inbox/"})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, appURL+"/metrics", http.StatusFound)
	})
	return mux
}
