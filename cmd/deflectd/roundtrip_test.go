package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
	"github.com/deflectd/deflectd/ari/aritest/sim"
	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/inbox/inboxhttp"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"go.uber.org/zap/zaptest"
)

// TestDeflectionRoundTrip follows one customer from the phone queue to an
// agent's reply, through every real part of deflectd: a caller of the
// simulated contact center waits past the SLA, is offered WhatsApp over ARI
// and presses 1; the engine sends the template through the outbox; the
// customer taps its button in the fake Cloud API, whose signed webhook
// reaches deflectd; the chat lands in the Unassigned of the team its queue
// and reason map to, with the call's context card; an agent takes it,
// opens it (blue ticks) and replies; the fake Cloud API receives the reply
// exactly once, and its delivered and read statuses show on the message.
func TestDeflectionRoundTrip(t *testing.T) {
	const speed = 60
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cat, err := whatsapp.LoadCatalogFile("../../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const token, appSecret, verify = "tok", "app-secret", "verify"
	wa := whatsapptest.NewServer(whatsapptest.Options{Token: token, AppSecret: appSecret, Templates: whatsapptest.TemplatesFromCatalog(cat),
		AutoStatus: &whatsapptest.AutoStatus{Interval: 20 * time.Millisecond}, Seed: 3})
	t.Cleanup(wa.Close)
	fake := aritest.NewServer()
	t.Cleanup(fake.Close)
	rs := redistest.Start(t)
	// Support callers asking about a return: the rules offer WhatsApp after
	// 60 s (1 s here), nobody answers the phone, and everyone presses 1.
	contact, err := sim.New(sim.Options{Server: fake, Speed: speed, Seed: 11, Duration: 2 * time.Minute, AcceptRate: 1,
		Queues: []sim.Queue{{Name: "support", Rate: 6, Agents: 0, HandleTime: 4 * time.Minute, Patience: time.Hour,
			Entries: []sim.Entry{{Option: "4", Reason: "returns", Weight: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := scaleRules("../../configs/deflectd/rules.yaml", filepath.Join(dir, "rules.yaml"), speed); err != nil {
		t.Fatal(err)
	}
	carlaToken := "carla-api-token"
	sum := sha256.Sum256([]byte(carlaToken))
	users := fmt.Sprintf(`users:
  - {id: carla, name: Carla Ruiz, role: agent, teams: [support], tokens: ["sha256:%s"]}
  - {id: bruno, name: Bruno Díaz, role: agent, teams: [sales], tokens: ["sha256:%x"]}
`, hex.EncodeToString(sum[:]), sha256.Sum256([]byte("bruno-api-token")))
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
redis_url: %s
key_prefix: %q
ari:
  url: %s
  user: %s
calls:
  default_region: AR
  default_language: es
  template_languages: {es: es_AR, en: en_US}
  queues: [sales, support]
rules_file: rules.yaml
templates_file: %s
whatsapp:
  base_url: %s
  phone_number_id: %q
inbox:
  users_file: users.yaml
  teams: [{name: sales}, {name: support}]
  default_team: sales
  routing:
    calls: [{queue: support, reason: returns, team: support}]
`, rs.URL(), rs.Prefix, fake.URL, fake.Username, filepath.Join(mustAbs(t, "../../configs/deflectd"), "templates.yaml"), wa.URL, wa.PhoneNumberID)
	if err := os.WriteFile(filepath.Join(dir, "deflectd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEFLECTD_ARI_PASSWORD": fake.Password, "DEFLECTD_WA_TOKEN": token,
		"DEFLECTD_WA_APP_SECRET": appSecret, "DEFLECTD_WA_VERIFY_TOKEN": verify}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app, err := NewApp(AppOptions{ConfigFile: filepath.Join(dir, "deflectd.yaml"), Logger: zaptest.NewLogger(t),
		Getenv: func(k string) string { return env[k] }, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	wa.SetWebhookURL(base + "/webhook")
	appCtx, stopApp := context.WithCancel(ctx)
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(appCtx) }()
	t.Cleanup(func() {
		stopApp()
		if err := <-appDone; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	if _, err := fake.WaitCall(ctx, "GET", "/applications/deflect"); err != nil {
		t.Fatal(err)
	}
	agent := &apiClient{t: t, base: base + inboxhttp.Base, token: carlaToken}
	// carla's live stream is open before the customer writes: she sees
	// the chat arrive, as her Unassigned would.
	events := agent.events(ctx)

	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- contact.Run(simCtx) }()
	t.Cleanup(func() { stopSim(); <-simDone })

	// The first deflection's template.
	msgs, err := wa.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatalf("no WhatsApp message after the offers: %v", err)
	}
	offer := msgs[0]
	tpl := offer.Body.Template
	if offer.Body.Type != "template" || tpl == nil || tpl.Name != "queue_deflect_v1" {
		t.Fatalf("first message = %s, want the queue_deflect_v1 template", offer.Raw)
	}
	payload := ""
	for _, c := range tpl.Components {
		if c.Type == "button" && len(c.Parameters) > 0 {
			payload = c.Parameters[0].Payload
		}
	}
	if payload == "" {
		t.Fatalf("the template carries no button payload: %s", offer.Raw)
	}
	customer := strings.TrimPrefix(offer.Body.To, "+")
	tap, err := wa.SendButtonTap(ctx, customer, offer.WAMID, payload, "Seguir por WhatsApp")
	if err != nil {
		t.Fatalf("SendButtonTap = %v", err)
	}
	convID := inbox.ConversationID(customer, "")
	created := events.waitFor(t, func(e inbox.Event) bool { return e.Type == inbox.EvCreated && e.Conv == convID })
	if created.Team != "support" || created.Owner != "" {
		t.Errorf("the new chat is in team %q, owner %q; want support's Unassigned", created.Team, created.Owner)
	}

	var page inbox.Page
	agent.do(ctx, "GET", "conversations?view=unassigned&team=support", "", http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != convID {
		t.Fatalf("support's Unassigned = %+v, want only %s", page.Items, convID)
	}
	var d inbox.Detail
	agent.do(ctx, "GET", "conversations/"+convID, "", http.StatusOK, &d)
	c := d.Context
	switch {
	case c == nil:
		t.Fatal("the conversation has no context card")
	case c.Queue != "support" || c.Option != "4" || c.Reason != "returns" || c.Kind != "offer":
		t.Errorf("context = queue %q option %q reason %q kind %q, want support 4 returns offer", c.Queue, c.Option, c.Reason, c.Kind)
	case c.CallID == "" || c.Position < 1:
		t.Errorf("context = call %q position %d; want the call's id and place", c.CallID, c.Position)
	case c.Template != "queue_deflect_v1" || c.WAMID != offer.WAMID || c.Button != "Seguir por WhatsApp":
		t.Errorf("context = template %q wamid %q button %q; want the template, its wamid and the tapped button", c.Template, c.WAMID, c.Button)
	}
	// The card is what the call told the outbox when it sent the offer.
	if c != nil {
		rec, err := app.outbox.Get(ctx, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s|%s|%s|%s|%s|%s", rec.Meta["call_id"], rec.Meta["queue"], rec.Meta["option"], rec.Meta["wait_s"], rec.Meta["ewt_s"], rec.Meta["position"])
		got := fmt.Sprintf("%s|%s|%s|%d|%d|%d", c.CallID, c.Queue, c.Option, int(c.Waited.Seconds()), int(c.EWT.Seconds()), c.Position)
		if got != want || rec.Meta["ewt_s"] == "" {
			t.Errorf("context card call|queue|option|wait|ewt|position = %s, the call sent %s", got, want)
		}
	}
	if !d.Pending || d.Seen {
		t.Errorf("a new tap: pending %v, seen %v; want pending and unseen", d.Pending, d.Seen)
	}

	// carla takes it, opens it, and answers.
	agent.do(ctx, "POST", "conversations/"+convID+"/claim", "", http.StatusOK, nil)
	agent.do(ctx, "POST", "conversations/"+convID+"/seen", "", http.StatusOK, nil)
	reads, err := wa.WaitReads(ctx, 1)
	if err != nil {
		t.Fatalf("no read receipt after the agent opened the chat: %v", err)
	}
	if reads[0].MessageID != tap {
		t.Errorf("read receipt for %q, want the tap %q", reads[0].MessageID, tap)
	}
	var sent inbox.Message
	agent.do(ctx, "POST", "conversations/"+convID+"/reply", `{"text":"Hola, soy Carla. ¿Qué producto querés devolver?"}`, http.StatusCreated, &sent)
	if sent.State != inbox.StateQueued || sent.OutboxKey == "" {
		t.Errorf("reply = state %q key %q, want queued in the outbox", sent.State, sent.OutboxKey)
	}
	events.waitFor(t, func(e inbox.Event) bool {
		return e.Type == inbox.EvMessageStatus && e.Conv == convID && e.Data["message"] == sent.ID && e.Data["state"] == inbox.StateRead
	})
	agent.do(ctx, "GET", "conversations/"+convID, "", http.StatusOK, &d)
	var reply *inbox.Message
	for _, m := range d.Messages {
		if m.ID == sent.ID {
			reply = m
		}
	}
	if reply == nil || reply.State != inbox.StateRead || reply.WAMID == "" {
		t.Fatalf("the reply in the conversation = %+v, want it read, with its wamid", reply)
	}
	if d.Pending || d.Owner != "carla" || d.FirstResponse.IsZero() {
		t.Errorf("after the reply: pending %v owner %q first response %v; want answered by carla", d.Pending, d.Owner, d.FirstResponse)
	}
	texts := 0
	for _, m := range wa.Messages() {
		if m.Body.Type == "text" && strings.TrimPrefix(m.Body.To, "+") == customer {
			texts++
			if m.WAMID != reply.WAMID {
				t.Errorf("the fake got text %s, the inbox shows %s", m.WAMID, reply.WAMID)
			}
		}
	}
	if texts != 1 {
		t.Errorf("the fake Cloud API got %d replies to the customer, want exactly 1", texts)
	}
	// Another team's agent does not see the chat.
	bruno := &apiClient{t: t, base: agent.base, token: "bruno-api-token"}
	bruno.do(ctx, "GET", "conversations/"+convID, "", http.StatusForbidden, nil)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// apiClient calls the inbox API with a bearer token.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *apiClient) do(ctx context.Context, method, path, body string, want int, out any) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// eventStream is an open SSE stream of inbox events.
type eventStream struct{ ch chan inbox.Event }

func (c *apiClient) events(ctx context.Context) *eventStream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"events", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		c.t.Fatalf("GET events = %d", resp.StatusCode)
	}
	s := &eventStream{ch: make(chan inbox.Event, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		typ := ""
		for sc.Scan() {
			if t, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				typ = t
				continue
			}
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e inbox.Event
			if json.Unmarshal([]byte(data), &e) == nil {
				if e.Type == "" {
					e.Type = typ // hello and reset carry no type of their own
				}
				s.ch <- e
			}
		}
	}()
	c.t.Cleanup(func() { cancel(); <-done })
	// The first event says the stream is live.
	if e := s.next(c.t); e.Type != "hello" {
		c.t.Fatalf("first event = %+v, want hello", e)
	}
	return s
}

func (s *eventStream) next(t *testing.T) inbox.Event {
	t.Helper()
	select {
	case e, ok := <-s.ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no inbox event in 30 s")
	}
	return inbox.Event{}
}

func (s *eventStream) waitFor(t *testing.T, match func(inbox.Event) bool) inbox.Event {
	t.Helper()
	for {
		if e := s.next(t); match(e) {
			return e
		}
	}
}
