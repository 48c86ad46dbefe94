package inbox_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/webhook"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// clock is the injected clock of a test: the inbox, the outbox and the
// fake Cloud API all read it, so the policy's minutes pass at once.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} } // a Monday

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

const usersYAML = `
users:
  - {id: ana, name: Ana Pérez, role: agent, teams: [billing]}
  - {id: bob, name: Bob, role: agent, teams: [billing]}
  - {id: carla, name: Carla, role: agent, teams: [support]}
  - {id: sue, name: Sue, role: supervisor, teams: [billing, support]}
`

func baseConfig() *inbox.Config {
	return &inbox.Config{
		Teams: []inbox.TeamConfig{{Name: "general"}, {Name: "billing"}, {Name: "support"}},
		Routing: inbox.RoutingConfig{
			Calls:    []inbox.CallRoute{{Queue: "sales", Reason: "billing", Team: "billing"}, {Queue: "support", Team: "support"}},
			Keywords: []inbox.KeywordRoute{{Team: "billing", Words: []string{"factura"}}},
		},
	}
}

// env is an inbox on a real Redis with the real outbox sending to the fake
// Cloud API, and the fake's webhooks coming back through the real webhook
// handler and processor: everything but Meta is real.
type env struct {
	t       *testing.T
	ctx     context.Context
	clock   *clock
	redis   *redistest.Server
	wa      *whatsapptest.Server
	catalog *whatsapp.Catalog
	ob      *outbox.Outbox
	x       *inbox.Inbox
	users   *inbox.Directory
	cfg     *inbox.Config
	hours   map[string]inbox.Hours
	last    string // the last event id waited on
	// regs holds each Inbox's own metrics registry (see metric).
	regs map[*inbox.Inbox]*prometheus.Registry
}

type envOptions struct {
	cfg   *inbox.Config
	auto  *whatsapptest.AutoStatus
	hours map[string]inbox.Hours
	// users is appended to the users file (more "  - {...}" lines).
	users string
	// templates is appended to the template catalog's list (more
	// "  - name: ..." entries).
	templates string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	raw, err := os.ReadFile("../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := whatsapp.LoadCatalog(strings.NewReader(string(raw) + "\n" + o.templates))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, clock: newClock(), redis: redistest.Start(t), catalog: cat, cfg: o.cfg, hours: o.hours,
		regs: map[*inbox.Inbox]*prometheus.Registry{}}
	if e.cfg == nil {
		e.cfg = baseConfig()
	}
	e.users, err = inbox.ParseUsers([]byte(usersYAML + o.users))
	if err != nil {
		t.Fatal(err)
	}
	e.wa = whatsapptest.NewServer(whatsapptest.Options{Token: "tok", AppSecret: "secret",
		Templates: whatsapptest.TemplatesFromCatalog(cat), AutoStatus: o.auto, Now: e.clock.Now, Seed: 1})
	t.Cleanup(e.wa.Close)
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: e.wa.URL, PhoneNumberID: e.wa.PhoneNumberID, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	rdb := e.redis.Client()
	var xref struct {
		sync.Mutex
		x *inbox.Inbox
	}
	e.ob, err = outbox.New(outbox.Options{Redis: rdb, Prefix: e.redis.Prefix, Sender: client, Validator: cat,
		PhoneNumberID: e.wa.PhoneNumberID, PairInterval: time.Millisecond, PollInterval: 10 * time.Millisecond,
		ReadBlock: 50 * time.Millisecond, Now: e.clock.Now, Registerer: prometheus.NewRegistry(),
		Results: func(ctx context.Context, r outbox.Result) {
			xref.Lock()
			x := xref.x
			xref.Unlock()
			if x != nil {
				x.OutboxResult(ctx, r)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.x = e.newInbox()
	xref.Lock()
	xref.x = e.x
	xref.Unlock()

	intake, err := webhook.NewRedisIntake(webhook.RedisIntakeOptions{Client: rdb, Prefix: e.redis.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewHandler(webhook.HandlerOptions{AppSecret: []byte("secret"), VerifyToken: "v", Intake: intake})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	e.wa.SetWebhookURL(hook.URL)
	proc, err := webhook.NewProcessor(webhook.ProcessorOptions{Client: rdb, Prefix: e.redis.Prefix, Block: 50 * time.Millisecond,
		ClaimAfter: time.Second, Statuses: e.ob, OptOuts: e.ob, Conversions: e.ob,
		Subscribers:       []func(context.Context, whatsapp.Inbound) error{func(ctx context.Context, in whatsapp.Inbound) error { return e.x.Ingest(ctx, in) }},
		StatusSubscribers: []func(context.Context, whatsapp.Status) error{func(ctx context.Context, s whatsapp.Status) error { return e.x.ApplyStatus(ctx, s) }},
		Logger:            zaptest.NewLogger(t).Named("webhook")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.ob.Run(ctx) }()
	go func() { defer wg.Done(); proc.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.last = "$"
	if id, err := e.x.LastEventID(ctx); err == nil {
		e.last = id
	}
	return e
}

// newInbox returns another Inbox on the same Redis: a second instance, or
// the same one after a restart.
func (e *env) newInbox() *inbox.Inbox {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	x, err := inbox.New(inbox.Options{Redis: e.redis.Client(), Prefix: e.redis.Prefix, Config: e.cfg, Users: e.users,
		Outbox: e.ob, Renderer: e.catalog, Reader: e.reader(), Now: e.clock.Now, Registerer: reg,
		Hours:  func(name string) (inbox.Hours, bool) { h, ok := e.hours[name]; return h, ok },
		Logger: zaptest.NewLogger(e.t).Named("inbox")})
	if err != nil {
		e.t.Fatal(err)
	}
	e.regs[x] = reg
	return x
}

// metric returns the value of a counter or gauge series of e.x's registry;
// labels are name, value pairs and must all match. A missing series is 0.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	fams, err := e.regs[e.x].Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		return 0
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}

func (e *env) reader() inbox.ReadMarker {
	c, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: e.wa.URL, PhoneNumberID: e.wa.PhoneNumberID, Token: "tok"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) user(id string) *inbox.User {
	u, ok := e.users.User(id)
	if !ok {
		e.t.Fatalf("no user %s", id)
	}
	return u
}

// waitFor waits until cond holds, woken by each event of the live stream
// (a blocking read on Redis, not a poll).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %s: not within 15 s", what)
		}
		evs, err := e.x.Events(e.ctx, e.last, 500*time.Millisecond)
		if err != nil && !errors.Is(err, redis.Nil) {
			e.t.Fatalf("reading events: %v", err)
		}
		if len(evs) > 0 {
			e.last = evs[len(evs)-1].ID
		}
	}
}

// conv returns a conversation as a supervisor sees it.
func (e *env) conv(id string) *inbox.Detail {
	e.t.Helper()
	d, err := e.x.Get(e.ctx, e.user("sue"), id)
	if err != nil {
		e.t.Fatalf("Get(%s) = %v", id, err)
	}
	return d
}

// exists reports whether a conversation exists yet.
func (e *env) exists(id string) bool {
	_, err := e.x.Get(e.ctx, e.user("sue"), id)
	return err == nil
}

// write makes a customer write, through the fake Cloud API and the real
// webhook path, and waits until the inbox stored the message.
func (e *env) write(from, text string) string {
	e.t.Helper()
	id, err := e.wa.SendText(e.ctx, from, text, whatsapptest.WithProfileName("María Gómez"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitMessage(inbox.ConversationID(from, ""), id)
	return id
}

func (e *env) waitMessage(conv, msg string) {
	e.t.Helper()
	e.waitFor("message "+msg, func() bool {
		if !e.exists(conv) {
			return false
		}
		for _, m := range e.conv(conv).Messages {
			if m.ID == msg {
				return true
			}
		}
		return false
	})
}

func (e *env) message(conv, id string) *inbox.Message {
	for _, m := range e.conv(conv).Messages {
		if m.ID == id {
			return m
		}
	}
	e.t.Fatalf("no message %s in %s", id, conv)
	return nil
}

// due runs the timer once, as at the clock's time.
func (e *env) due(x *inbox.Inbox) int {
	e.t.Helper()
	n, err := x.ProcessDue(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// events returns a conversation's history events of the given types.
func (e *env) history(conv string, types ...string) []inbox.Event {
	var out []inbox.Event
	for _, ev := range e.conv(conv).History {
		for _, t := range types {
			if ev.Type == t {
				out = append(out, ev)
			}
		}
	}
	return out
}

func errCode(err error) string {
	var e *inbox.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// setPresence sets agents' availability, each as itself.
func (e *env) setPresence(a inbox.Availability, agents ...string) {
	e.t.Helper()
	for _, id := range agents {
		if _, err := e.x.SetAvailability(e.ctx, e.user(id), "", a); err != nil {
			e.t.Fatalf("SetAvailability(%s, %s) = %v", id, a, err)
		}
	}
}

// claim makes agent take conv, or fails the test.
func (e *env) claim(conv, agent string) {
	e.t.Helper()
	if _, err := e.x.Claim(e.ctx, e.user(agent), conv); err != nil {
		e.t.Fatalf("Claim(%s, %s) = %v", agent, conv, err)
	}
}

// reply sends agent's text and waits until WhatsApp's fate of it is
// known (accepted or failed), returning the message as then stored.
func (e *env) reply(conv, agent, text string) *inbox.Message {
	e.t.Helper()
	m, err := e.x.Reply(e.ctx, e.user(agent), conv, inbox.ReplyRequest{Text: text})
	if err != nil {
		e.t.Fatalf("Reply(%s, %s) = %v", agent, conv, err)
	}
	return e.waitSettled(conv, m.ID)
}

// waitSettled waits until an outbound message is no longer queued.
func (e *env) waitSettled(conv, id string) *inbox.Message {
	e.t.Helper()
	var m *inbox.Message
	e.waitFor("message "+id+" settled", func() bool {
		m = e.message(conv, id)
		return m.State != inbox.StateQueued
	})
	return m
}

// waitState waits until an outbound message reaches state.
func (e *env) waitState(conv, id, state string) *inbox.Message {
	e.t.Helper()
	var m *inbox.Message
	e.waitFor("message "+id+" "+state, func() bool {
		m = e.message(conv, id)
		return m.State == state
	})
	return m
}

// at sets the clock to start+d and runs the timer once.
func (e *env) at(start time.Time, d time.Duration) {
	e.t.Helper()
	e.clock.Set(start.Add(d))
	e.due(e.x)
}

// deflect sends a deflection offer for a call to a number, as the bridge
// does (a catalog template with the call's context in the job's Meta), and
// waits until the outbox recorded it sent; it returns the record.
func (e *env) deflect(to, callID string, meta map[string]string) *outbox.Record {
	e.t.Helper()
	key := callID + ":" + outbox.KindOffer
	wait, _ := strconv.Atoi(meta["wait_s"])
	cc := whatsapp.CallContext{CallID: callID, Queue: meta["queue"], MenuOption: meta["option"], Reason: meta["reason"],
		Language: meta["lang"], Wait: time.Duration(wait) * time.Second, CallerNumber: to, Key: key}
	m, err := e.catalog.Render("queue_deflect_v1", "es_AR", to, cc)
	if err != nil {
		e.t.Fatal(err)
	}
	meta["call_id"] = callID
	if _, err := e.ob.Enqueue(e.ctx, outbox.Job{Key: key, Kind: outbox.KindOffer, Message: m, Meta: meta}); err != nil {
		e.t.Fatal(err)
	}
	var rec *outbox.Record
	e.waitFor("offer "+key+" sent", func() bool {
		r, err := e.ob.Get(e.ctx, key)
		if err != nil {
			e.t.Fatal(err)
		}
		rec = r
		return r.State == "sent" && r.WAMID != ""
	})
	return rec
}

// tap makes a customer tap a template's quick-reply button and waits until
// the inbox stored it.
func (e *env) tap(from, wamid, payload, text string) string {
	e.t.Helper()
	id, err := e.wa.SendButtonTap(e.ctx, from, wamid, payload, text, whatsapptest.WithProfileName("María Gómez"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitMessage(inbox.ConversationID(from, ""), id)
	return id
}

// inboxErr returns err as an *inbox.Error, or fails the test.
func inboxErr(t *testing.T, err error) *inbox.Error {
	t.Helper()
	var ie *inbox.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *inbox.Error", err, err)
	}
	return ie
}
