package whatsapp_test

// The acceptance tests of the WhatsApp side, end to end over real HTTP and a
// real Redis: the catalog renders, the outbox sends with the real client,
// whatsapptest plays Meta, and its signed webhooks come back through the
// webhook handler and processor into the outbox's records.

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/webhook"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const (
	token     = "test-token"
	appSecret = "test-app-secret"
	verify    = "test-verify-token"
)

// stack is the WhatsApp side wired as deflectd wires it.
type stack struct {
	t       testing.TB
	redis   *redistest.Server
	fake    *whatsapptest.Server
	catalog *whatsapp.Catalog
	client  *whatsapp.Client
	hook    *httptest.Server

	mu       sync.Mutex
	steps    map[string][]string // outbox steps by key
	statuses []string            // "key status applied" as the processor applied them
	inbound  []whatsapp.Inbound
	notify   chan struct{}
}

type stackOptions struct {
	mps       int
	auto      *whatsapptest.AutoStatus
	noWebhook bool
}

func newStack(t testing.TB, so stackOptions) *stack {
	t.Helper()
	cat, err := whatsapp.LoadCatalogFile("../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, redis: redistest.Start(t), catalog: cat, steps: map[string][]string{}, notify: make(chan struct{})}
	s.fake = whatsapptest.NewServer(whatsapptest.Options{
		Token: token, AppSecret: appSecret, Templates: whatsapptest.TemplatesFromCatalog(cat), MPS: so.mps,
		AutoStatus: so.auto, Seed: 1,
	})
	t.Cleanup(s.fake.Close)
	s.client, err = whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: s.fake.URL, PhoneNumberID: s.fake.PhoneNumberID, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if !so.noWebhook {
		s.startWebhooks()
	}
	return s
}

func (s *stack) signal() {
	old := s.notify
	s.notify = make(chan struct{})
	close(old)
}

// waitFor waits until cond (called under s.mu) holds.
func (s *stack) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, notify := cond(), s.notify
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-notify:
		case <-deadline:
			s.t.Fatalf("waiting for %s: not within %v", what, timeout)
		}
	}
}

// outbox returns an outbox instance on the stack's Redis and fake API.
func (s *stack) outbox(tune func(*outbox.Options)) *outbox.Outbox {
	s.t.Helper()
	opts := outbox.Options{
		Redis: s.redis.Client(), Prefix: s.redis.Prefix, Sender: s.client, Validator: s.catalog,
		PhoneNumberID: s.fake.PhoneNumberID, PairInterval: time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		ClaimAfter: 500 * time.Millisecond, InDoubtGrace: 3 * time.Second, PollInterval: 10 * time.Millisecond,
		ReadBlock: 50 * time.Millisecond, BreakerCooldown: time.Hour, Registerer: prometheus.NewRegistry(),
		Observe: func(key, step string) {
			s.mu.Lock()
			s.steps[key] = append(s.steps[key], step)
			s.signal()
			s.mu.Unlock()
		},
	}
	if tune != nil {
		tune(&opts)
	}
	o, err := outbox.New(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// startWebhooks serves the webhook handler to the fake and runs a
// processor into an outbox of the stack.
func (s *stack) startWebhooks() {
	t := s.t
	intake, err := webhook.NewRedisIntake(webhook.RedisIntakeOptions{Client: s.redis.Client(), Prefix: s.redis.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewHandler(webhook.HandlerOptions{AppSecret: []byte(appSecret), VerifyToken: verify, Intake: intake, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	s.hook = httptest.NewServer(h)
	t.Cleanup(s.hook.Close)
	s.fake.SetWebhookURL(s.hook.URL)

	store := s.outbox(nil)
	p, err := webhook.NewProcessor(webhook.ProcessorOptions{
		Client: s.redis.Client(), Prefix: s.redis.Prefix, Block: 50 * time.Millisecond, ClaimAfter: time.Second,
		Statuses: statusRecorder{s, store}, OptOuts: store, Conversions: store,
		Subscribers: []func(context.Context, whatsapp.Inbound) error{func(_ context.Context, in whatsapp.Inbound) error {
			s.mu.Lock()
			s.inbound = append(s.inbound, in)
			s.signal()
			s.mu.Unlock()
			return nil
		}},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx(t, p.Run)
}

// statusRecorder applies statuses to the outbox and lets the test wait for
// them.
type statusRecorder struct {
	s *stack
	o *outbox.Outbox
}

func (r statusRecorder) ApplyStatus(ctx context.Context, st whatsapp.Status) (bool, error) {
	applied, err := r.o.ApplyStatus(ctx, st)
	r.s.mu.Lock()
	r.s.statuses = append(r.s.statuses, fmt.Sprintf("%s %s %v", st.BizOpaqueCallbackData, st.Status, applied))
	r.s.signal()
	r.s.mu.Unlock()
	return applied, err
}

// runCtx runs f until the test ends, and waits for it to return.
func runCtx(t testing.TB, f func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run() = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func callContext(id string) whatsapp.CallContext {
	return whatsapp.CallContext{CallID: id, Queue: "sales", MenuOption: "2", Reason: "billing", Language: "es",
		Wait: 7*time.Minute + 10*time.Second, CallerNumber: "+5491155551234", Key: id + ":offer"}
}

func (s *stack) deflection(id, to string) outbox.Job {
	s.t.Helper()
	cc := callContext(id)
	m, err := s.catalog.Render("queue_deflect_v1", "es_AR", to, cc)
	if err != nil {
		s.t.Fatal(err)
	}
	return outbox.Job{Key: cc.Key, Kind: outbox.KindOffer, Message: m, Meta: map[string]string{"queue": cc.Queue, "reason": cc.Reason}}
}

// Acceptance 1: a template built from a call's context arrives at the API
// byte for byte in the documented shape; a wrong parameter count is refused
// locally.
func TestTemplateFromCallContext(t *testing.T) {
	s := newStack(t, stackOptions{noWebhook: true})
	o := s.outbox(nil)
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, s.deflection("1795234870.2", "+54 9 11 5555-1234")); err != nil {
		t.Fatal(err)
	}
	runCtx(t, o.Run)
	msgs, err := s.fake.WaitMessages(ctxTimeout(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"5491155551234","type":"template",` +
		`"template":{"name":"queue_deflect_v1","language":{"policy":"deterministic","code":"es_AR"},"components":[` +
		`{"type":"body","parameters":[{"type":"text","text":"Facturación"},{"type":"text","text":"8 min"},{"type":"text","text":"2"}]},` +
		`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"dfl:1795234870.2:offer"}]}]},` +
		`"biz_opaque_callback_data":"1795234870.2:offer"}`
	if got := string(msgs[0].Raw); got != want {
		t.Errorf("body at the API:\n got %s\nwant %s", got, want)
	}

	// One body parameter short: refused before it is stored or sent.
	bad := s.deflection("c2", "5491155550000")
	bad.Message.Template.Components[0].Parameters = bad.Message.Template.Components[0].Parameters[:2]
	if _, err := o.Enqueue(ctx, bad); err == nil {
		t.Fatal("Enqueue(2 of 3 body parameters) = nil, want a local error")
	}
	if _, err := o.Get(ctx, "c2:offer"); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Get(refused job) = %v, want ErrNotFound", err)
	}
	if n := len(s.fake.Requests()); n != 1 {
		t.Errorf("requests at the API = %d, want 1", n)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Acceptance 2: 1,000 enqueues of 200 distinct keys from 4 concurrent
// producers (4 instances) → exactly 200 POSTs.
func TestExactlyOncePOSTs(t *testing.T) {
	s := newStack(t, stackOptions{noWebhook: true, mps: 1000})
	var outs []*outbox.Outbox
	for range 4 {
		outs = append(outs, s.outbox(func(o *outbox.Options) { o.MPS = 1000 }))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 250 {
				n := (i*7 + p*13) % 200
				if _, err := outs[p].Enqueue(ctx, s.deflection(fmt.Sprintf("call-%d", n), fmt.Sprintf("54911%08d", n))); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, o := range outs {
		runCtx(t, o.Run)
	}
	s.waitFor("200 sent", 30*time.Second, func() bool { return countStep(s.steps, "sent") >= 200 })
	s.waitQuiet(outs[0])
	if got := len(s.fake.Requests()); got != 200 {
		t.Errorf("POSTs at the API = %d, want exactly 200", got)
	}
	perKey := map[string]int{}
	for _, m := range s.fake.Messages() {
		perKey[m.Body.BizOpaqueCallbackData]++
	}
	if len(perKey) != 200 {
		t.Errorf("distinct messages = %d, want 200", len(perKey))
	}
}

func countStep(steps map[string][]string, step string) int {
	n := 0
	for _, st := range steps {
		for _, x := range st {
			if x == step {
				n++
			}
		}
	}
	return n
}

// waitQuiet waits until the outbox has nothing waiting.
func (s *stack) waitQuiet(o *outbox.Outbox) {
	s.t.Helper()
	s.waitFor("an empty outbox", 15*time.Second, func() bool {
		c := s.redis.Client()
		n, _ := c.XLen(context.Background(), s.redis.Prefix+"wa:outbox").Result()
		d, _ := c.ZCard(context.Background(), s.redis.Prefix+"wa:delayed").Result()
		return n+d == 0
	})
}

// Acceptance 4: each error class is retried as specified (attempts counted
// at the API), and the breaker opens on 190 and stops every send.
func TestRetryClassesAtTheAPI(t *testing.T) {
	tests := []struct {
		name      string
		fault     whatsapptest.Fault
		times     int
		wantPOSTs int
		wantState string
	}{
		{"130429 retried", whatsapptest.Fault{Code: 130429}, 2, 3, "sent"},
		{"131056 retried", whatsapptest.Fault{Code: 131056}, 1, 2, "sent"},
		{"503 retried", whatsapptest.Fault{Status: 503}, 2, 3, "sent"},
		{"500 without body retried", whatsapptest.Fault{Status: 500, NoBody: true}, 1, 2, "sent"},
		{"connection dropped: in doubt, resent after grace", whatsapptest.Fault{Drop: true}, 1, 2, "sent"},
		{"131026 permanent", whatsapptest.Fault{Code: 131026}, whatsapptest.Forever, 1, "failed"},
		{"131047 permanent", whatsapptest.Fault{Code: 131047}, whatsapptest.Forever, 1, "failed"},
		{"132000 permanent", whatsapptest.Fault{Code: 132000}, whatsapptest.Forever, 1, "failed"},
		{"5xx exhausted", whatsapptest.Fault{Status: 503}, whatsapptest.Forever, 3, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{noWebhook: true})
			o := s.outbox(func(o *outbox.Options) { o.MaxAttempts = 3; o.InDoubtGrace = 200 * time.Millisecond })
			const to = "5491100000001"
			s.fake.FailRecipient(to, tt.times, tt.fault)
			if _, err := o.Enqueue(context.Background(), s.deflection("c1", to)); err != nil {
				t.Fatal(err)
			}
			runCtx(t, o.Run)
			s.waitFor("state "+tt.wantState, 15*time.Second, func() bool {
				return contains(s.steps["c1:offer"], tt.wantState)
			})
			if got := len(s.fake.Requests()); got != tt.wantPOSTs {
				t.Errorf("POSTs = %d, want %d", got, tt.wantPOSTs)
			}
		})
	}

	t.Run("190 opens the breaker", func(t *testing.T) {
		s := newStack(t, stackOptions{noWebhook: true})
		o1, o2 := s.outbox(nil), s.outbox(nil)
		s.fake.FailNext(1, whatsapptest.Fault{Code: 190})
		ctx := context.Background()
		if _, err := o1.Enqueue(ctx, s.deflection("c0", "5491100000000")); err != nil {
			t.Fatal(err)
		}
		runCtx(t, o1.Run)
		runCtx(t, o2.Run)
		s.waitFor("the breaker", 10*time.Second, func() bool { return contains(s.steps["c0:offer"], "retry") })
		for i := 1; i <= 5; i++ {
			if _, err := o2.Enqueue(ctx, s.deflection(fmt.Sprintf("c%d", i), fmt.Sprintf("549110000000%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		s.waitFor("5 postponed", 10*time.Second, func() bool { return countStep(s.steps, "postponed") >= 5 })
		if got := len(s.fake.Requests()); got != 1 {
			t.Errorf("POSTs = %d, want 1: the breaker stops every instance", got)
		}
		if open, _, _ := o2.BreakerState(ctx); !open {
			t.Error("BreakerState() closed, want open")
		}
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Acceptance 5: with MPS 80, the API sees at most 80 requests in every one
// second window, and never answers 130429.
func TestRateLimitHeldAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 300 messages at 80/s")
	}
	s := newStack(t, stackOptions{noWebhook: true, mps: 80})
	var outs []*outbox.Outbox
	for range 3 {
		o := s.outbox(func(o *outbox.Options) { o.MPS = 80; o.Workers = 8 })
		outs = append(outs, o)
	}
	ctx := context.Background()
	const n = 300
	for i := range n {
		if _, err := outs[i%3].Enqueue(ctx, s.deflection(fmt.Sprintf("r%d", i), fmt.Sprintf("54911%08d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range outs {
		runCtx(t, o.Run)
	}
	s.waitFor("all sent", 30*time.Second, func() bool { return countStep(s.steps, "sent") >= n })
	reqs := s.fake.Requests()
	for i, r := range reqs {
		if r.Code == 130429 {
			t.Fatalf("request %d answered 130429", i)
		}
		in := 0
		for _, q := range reqs[i:] {
			if q.Time.Sub(r.Time) < time.Second {
				in++
			}
		}
		if in > 80 {
			t.Fatalf("%d requests in the second from request %d, want ≤ 80", in, i)
		}
	}
	first, last := reqs[0].Time, reqs[len(reqs)-1].Time
	t.Logf("%d messages in %v: %.1f msg/s", len(reqs), last.Sub(first), float64(len(reqs)-1)/last.Sub(first).Seconds())
}

// Acceptance 6: webhooks. A bad signature is refused; a replayed status is
// applied once; out-of-order statuses end at the furthest; an opt-out is
// honoured by the next enqueue; a tap converts.
func TestWebhooksEndToEnd(t *testing.T) {
	s := newStack(t, stackOptions{})
	o := s.outbox(nil)
	ctx := context.Background()
	const to = "5491155551234"
	if _, err := o.Enqueue(ctx, s.deflection("w1", to)); err != nil {
		t.Fatal(err)
	}
	runCtx(t, o.Run)
	s.waitFor("sent", 10*time.Second, func() bool { return contains(s.steps["w1:offer"], "sent") })
	rec, _ := o.Get(ctx, "w1:offer")

	if err := s.fake.SendWebhook(ctx, []byte(`{"object":"whatsapp_business_account","entry":[]}`), "sha256=00"); err == nil {
		t.Error("webhook with a bad signature accepted, want 401")
	} else if !strings.Contains(err.Error(), "401") {
		t.Errorf("bad signature: %v, want a 401", err)
	}

	// read first, then sent twice, then delivered: ends at read, each
	// status applied at most once.
	for _, st := range []string{"read", "sent", "sent", "delivered"} {
		if err := s.fake.SendStatus(ctx, rec.WAMID, st); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor("4 statuses processed", 10*time.Second, func() bool { return len(s.statuses) >= 4 })
	rec, _ = o.Get(ctx, "w1:offer")
	if rec.Status != "read" {
		t.Errorf("status after read, sent, sent, delivered = %q, want read", rec.Status)
	}
	s.mu.Lock()
	applied := 0
	for _, st := range s.statuses {
		if strings.HasSuffix(st, " true") {
			applied++
		}
	}
	s.mu.Unlock()
	if applied != 1 {
		t.Errorf("statuses applied = %d (%q), want 1 (read)", applied, s.statuses)
	}

	// The customer taps the button: a conversion.
	if _, err := s.fake.SendButtonTap(ctx, to, rec.WAMID, "dfl:w1:offer", "Hablar con un agente"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the tap", 10*time.Second, func() bool { return len(s.inbound) >= 1 })
	rec, _ = o.Get(ctx, "w1:offer")
	if rec.Converted.IsZero() || rec.ConvertedVia != "tap" {
		t.Errorf("record after a tap = converted %v via %q, want converted by tap", rec.Converted, rec.ConvertedVia)
	}

	// "Baja": the next enqueue to that number is refused.
	if _, err := s.fake.SendText(ctx, to, "Baja"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the opt-out", 10*time.Second, func() bool { return len(s.inbound) >= 2 })
	if _, err := o.Enqueue(ctx, s.deflection("w2", to)); !errors.Is(err, outbox.ErrOptedOut) {
		t.Errorf("Enqueue after BAJA = %v, want ErrOptedOut", err)
	}
}

// Acceptance 3 (stop the process): a consumer process is killed with
// SIGKILL while sending, some of its sends accepted by the API with the
// answers lost; another consumer finishes the work. Every message is sent
// and none twice: the webhooks of the accepted ones settle their doubt.
func TestKilledConsumerProcess(t *testing.T) {
	if os.Getenv("DEFLECTD_OUTBOX_CHILD") != "" {
		t.Skip("runs in the parent")
	}
	s := newStack(t, stackOptions{auto: &whatsapptest.AutoStatus{Statuses: []string{"sent", "delivered"}}})
	ctx := context.Background()
	producer := s.outbox(nil)
	const n = 40
	for i := range n {
		if _, err := producer.Enqueue(ctx, s.deflection(fmt.Sprintf("k%d", i), fmt.Sprintf("54911%08d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The API loses the answers of the first three (it sent them), then
	// answers slowly, so the kill lands mid-send.
	s.fake.FailNext(3, whatsapptest.Fault{Lose: true})
	s.fake.SetDelay(100 * time.Millisecond)

	child := exec.Command(os.Args[0], "-test.run=^TestOutboxConsumerChild$", "-test.v")
	child.Env = append(os.Environ(), "DEFLECTD_OUTBOX_CHILD=1", "CHILD_REDIS="+s.redis.Addr, "CHILD_PREFIX="+s.redis.Prefix,
		"CHILD_API="+s.fake.URL, "CHILD_PHONE="+s.fake.PhoneNumberID)
	out := &lockedBuffer{}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.fake.WaitMessages(ctxTimeout(t, 20*time.Second), 10); err != nil {
		child.Process.Kill()
		t.Fatalf("child sent fewer than 10: %v\n%s", err, out)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	s.fake.SetDelay(0)
	killedAt := len(s.fake.Messages())

	o := s.outbox(nil)
	runCtx(t, o.Run)
	s.waitFor("every job sent", 30*time.Second, func() bool {
		for i := range n {
			r, err := producer.Get(ctx, fmt.Sprintf("k%d:offer", i))
			if err != nil || r.State != "sent" {
				return false
			}
		}
		return true
	})
	per := map[string]int{}
	for _, m := range s.fake.Messages() {
		per[m.Body.BizOpaqueCallbackData]++
	}
	for i := range n {
		if c := per[fmt.Sprintf("k%d:offer", i)]; c != 1 {
			t.Errorf("k%d: accepted by the API %d times, want exactly 1", i, c)
		}
	}
	t.Logf("API had accepted %d messages when the consumer was killed; %d in all", killedAt, len(s.fake.Messages()))
}

// TestOutboxConsumerChild is the consumer process TestKilledConsumerProcess
// kills; it does nothing in a normal run.
func TestOutboxConsumerChild(t *testing.T) {
	if os.Getenv("DEFLECTD_OUTBOX_CHILD") == "" {
		t.Skip("only as the child of TestKilledConsumerProcess")
	}
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: os.Getenv("CHILD_API"), PhoneNumberID: os.Getenv("CHILD_PHONE"), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	o, err := outbox.New(outbox.Options{
		Redis: newRedis(os.Getenv("CHILD_REDIS")), Prefix: os.Getenv("CHILD_PREFIX"), Sender: client,
		PhoneNumberID: os.Getenv("CHILD_PHONE"), PairInterval: time.Millisecond, Workers: 2,
		ClaimAfter: 500 * time.Millisecond, InDoubtGrace: 3 * time.Second, ReadBlock: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Run(context.Background()) // until killed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newRedis(addr string) *redis.Client { return redis.NewClient(&redis.Options{Addr: addr}) }
