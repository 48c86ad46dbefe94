package inboxhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/inbox/inboxhttp"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// The users of every API test. Each has a bearer token named after it
// ("tok-ana"), and ana logs in with a password as well.
var testUsers = []struct {
	id, role string
	teams    []string
}{
	{"ana", "agent", []string{"billing"}},
	{"bob", "agent", []string{"billing"}},
	{"carla", "agent", []string{"support"}},
	{"sue", "supervisor", []string{"billing", "support"}},
}

const anaPassword = "correct horse battery"

func usersFile(t testing.TB) *inbox.Directory {
	t.Helper()
	hash, err := inbox.HashPassword(anaPassword)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("users:\n")
	for _, u := range testUsers {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    role: %s\n    teams: [%s]\n    tokens: [%q]\n",
			u.id, strings.ToUpper(u.id[:1])+u.id[1:], u.role, strings.Join(u.teams, ", "), inbox.HashToken("tok-"+u.id))
		if u.id == "ana" {
			fmt.Fprintf(&b, "    password_hash: %q\n", hash)
		}
	}
	d, err := inbox.ParseUsers([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// clock is the injected clock the inbox, the outbox and the fake Cloud API
// share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// api is the inbox's HTTP API on a real Redis, with the real outbox sending
// to the fake Cloud API.
type api struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	redis *redistest.Server
	wa    *whatsapptest.Server
	// x and srv are the first instance's.
	x        *inbox.Inbox
	srv      *httptest.Server
	instance *instance
	n        atomic.Int64

	cat    *whatsapp.Catalog
	client *whatsapp.Client
}

// instance is one deflectd's share of the inbox: its outbox worker, its
// inbox and its API, on the Redis every instance shares.
type instance struct {
	x   *inbox.Inbox
	srv *httptest.Server
	// reg has the API's own metrics.
	reg *prometheus.Registry
	// stop ends the instance's workers, as a shutdown does; its HTTP
	// server keeps serving.
	stop func()
}

// newInstance starts another instance on the same Redis.
func (a *api) newInstance() *instance {
	t := a.t
	t.Helper()
	ctx, cancel := context.WithCancel(a.ctx)
	rdb := a.redis.Client()
	ob, err := outbox.New(outbox.Options{Redis: rdb, Prefix: a.redis.Prefix, Sender: a.client, Validator: a.cat,
		PhoneNumberID: a.wa.PhoneNumberID, PairInterval: time.Millisecond, PollInterval: 10 * time.Millisecond,
		ReadBlock: 50 * time.Millisecond, Now: a.clock.Now, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &inbox.Config{
		Teams:        []inbox.TeamConfig{{Name: "billing"}, {Name: "support"}},
		DefaultTeam:  "billing",
		QuickReplies: []inbox.QuickReplyConfig{{ID: "hello", Title: "Hello", Text: "Hola {{.Name}}"}},
	}
	x, err := inbox.New(inbox.Options{Redis: rdb, Prefix: a.redis.Prefix, Config: cfg, Users: usersFile(t), Outbox: ob,
		Renderer: a.cat, Reader: a.client, Now: a.clock.Now, Registerer: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t).Named("inbox")})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := inboxhttp.New(inboxhttp.Options{Inbox: x, Redis: rdb, Prefix: a.redis.Prefix, MaxBody: 8 << 10, Now: a.clock.Now, Registerer: reg,
		Templates: func() []inboxhttp.Template { return []inboxhttp.Template{{Name: "queue_recover_v1", Language: "es"}} },
		Logger:    zaptest.NewLogger(t).Named("inboxhttp")})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{x: x, srv: httptest.NewServer(s.Handler()), reg: reg}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ob.Run(ctx) }()
	go func() { defer wg.Done(); s.Run(ctx) }()
	in.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(func() { in.srv.CloseClientConnections(); in.srv.Close(); in.stop() })
	return in
}

func newAPI(t *testing.T) *api {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := &api{t: t, ctx: ctx, clock: &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}, redis: redistest.Start(t)}
	cat, err := whatsapp.LoadCatalogFile("../../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.wa = whatsapptest.NewServer(whatsapptest.Options{Token: "tok", Templates: whatsapptest.TemplatesFromCatalog(cat), Now: a.clock.Now, Seed: 1})
	t.Cleanup(a.wa.Close)
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: a.wa.URL, PhoneNumberID: a.wa.PhoneNumberID, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	a.cat, a.client = cat, client
	a.instance = a.newInstance()
	a.x, a.srv = a.instance.x, a.instance.srv
	return a
}

// customer makes a new customer write to the inbox and returns the
// conversation id. The fake Cloud API records the message (so that it can
// be marked read) and it goes straight into Ingest: the webhook path has
// tests of its own.
func (a *api) customer(text string) string {
	a.t.Helper()
	from := fmt.Sprintf("54911%08d", a.n.Add(1))
	wamid, err := a.wa.SendText(a.ctx, from, text)
	if !errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		a.t.Fatalf("SendText = %v, want ErrNoWebhookURL (no webhook here)", err)
	}
	in := whatsapp.Inbound{ID: wamid, From: from, ProfileName: "María", Type: whatsapp.InboundText, Text: text, Timestamp: a.clock.Now()}
	if err := a.x.Ingest(a.ctx, in); err != nil {
		a.t.Fatal(err)
	}
	return inbox.ConversationID(from, "")
}

// resp is an API answer.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) errorCode() string {
	var e struct {
		Error struct{ Code, Field, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r resp) errorField() string {
	var e struct {
		Error struct{ Code, Field, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Field
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// do calls the API as user (by bearer token; "" sends none).
func (a *api) do(user, method, path, body string) resp {
	a.t.Helper()
	h := http.Header{}
	if user != "" {
		h.Set("Authorization", "Bearer tok-"+user)
	}
	return a.call(http.DefaultClient, h, method, path, body)
}

// doOn calls the API of instance in as user.
func (a *api) doOn(in *instance, user, method, path, body string) resp {
	a.t.Helper()
	h := http.Header{"Authorization": {"Bearer tok-" + user}}
	return a.callURL(in.srv.URL, http.DefaultClient, h, method, path, body)
}

func (a *api) call(c *http.Client, h http.Header, method, path, body string) resp {
	a.t.Helper()
	return a.callURL(a.srv.URL, c, h, method, path, body)
}

func (a *api) callURL(base string, c *http.Client, h http.Header, method, path, body string) resp {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(a.ctx, method, base+inboxhttp.Base+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// browser is a client with a cookie jar, as the web UI is.
func (a *api) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func jsonBody(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
