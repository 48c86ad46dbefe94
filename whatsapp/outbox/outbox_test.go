package outbox

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// stubSender answers sends from a function and counts them; the tests of
// the whole path against the fake Cloud API are in api_test.go.
type stubSender struct {
	mu    sync.Mutex
	calls map[string]int // by biz_opaque_callback_data (the job key)
	total atomic.Int64
	fn    func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error)
	sent  chan string
}

func newStub(fn func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error)) *stubSender {
	return &stubSender{calls: map[string]int{}, fn: fn, sent: make(chan string, 10000)}
}

func (s *stubSender) Send(ctx context.Context, m *whatsapp.Message) (*whatsapp.SendResult, error) {
	s.mu.Lock()
	s.calls[m.BizOpaqueCallbackData]++
	n := s.calls[m.BizOpaqueCallbackData]
	s.mu.Unlock()
	s.total.Add(1)
	var r *whatsapp.SendResult
	var err error
	if s.fn != nil {
		r, err = s.fn(n, m)
	} else {
		r = okResult(m)
	}
	s.sent <- m.BizOpaqueCallbackData
	return r, err
}

func (s *stubSender) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

func okResult(m *whatsapp.Message) *whatsapp.SendResult {
	r := &whatsapp.SendResult{MessagingProduct: "whatsapp"}
	r.Messages = append(r.Messages, struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status,omitempty"`
	}{ID: "wamid." + m.BizOpaqueCallbackData})
	return r
}

type env struct {
	t     *testing.T
	srv   *redistest.Server
	steps *steps
}

func newEnv(t *testing.T) *env {
	return &env{t: t, srv: redistest.Start(t), steps: newSteps()}
}

// steps records what Options.Observe reports, so tests wait for an outcome
// instead of polling for it.
type steps struct {
	mu     sync.Mutex
	seen   map[string][]string // key -> steps in order
	notify chan struct{}
}

func newSteps() *steps { return &steps{seen: map[string][]string{}, notify: make(chan struct{})} }

func (s *steps) observe(key, step string) {
	s.mu.Lock()
	s.seen[key] = append(s.seen[key], step)
	old := s.notify
	s.notify = make(chan struct{})
	s.mu.Unlock()
	close(old)
}

// count returns how many times keys reported step.
func (s *steps) count(step string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.seen {
		for _, x := range st {
			if x == step {
				n++
			}
		}
	}
	return n
}

// waitCount waits until step was reported n times in all.
func (s *steps) waitCount(t *testing.T, step string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		notify := s.notify
		s.mu.Unlock()
		if got := s.count(step); got >= n {
			return
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("%q reported %d times, want %d within %v", step, s.count(step), n, timeout)
		}
	}
}

// wait waits until key reported step.
func (s *steps) wait(t *testing.T, key, step string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		notify, seen := s.notify, slices.Contains(s.seen[key], step)
		s.mu.Unlock()
		if seen {
			return
		}
		select {
		case <-notify:
		case <-deadline:
			s.mu.Lock()
			got := s.seen[key]
			s.mu.Unlock()
			t.Fatalf("job %s: steps %q, want %q within %v", key, got, step, timeout)
		}
	}
}

// outbox returns an outbox on the env's Redis with fast test timings.
func (e *env) outbox(s Sender, tune func(*Options)) (*Outbox, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{
		Redis: e.srv.Client(), Prefix: e.srv.Prefix, Sender: s, PhoneNumberID: "1000",
		PairInterval: time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		ClaimAfter: 200 * time.Millisecond, InDoubtGrace: 300 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		BreakerCooldown: time.Hour, ReadBlock: 50 * time.Millisecond, Registerer: reg,
		Observe: e.steps.observe,
	}
	if tune != nil {
		tune(&opts)
	}
	o, err := New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return o, reg
}

// run runs o until the test ends and returns a stop function that waits.
func run(t *testing.T, o *Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run() = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func job(key, to string) Job {
	m := whatsapp.NewTemplateMessage(to, whatsapp.Template{Name: "queue_deflect_v1", Language: whatsapp.Language{Policy: "deterministic", Code: "es_AR"}})
	return Job{Key: key, Kind: KindOffer, Message: m, Meta: map[string]string{"queue": "sales"}}
}

// waitState waits until a worker recorded state for key, and returns the
// job's record.
func (e *env) waitState(o *Outbox, key, state string) *Record {
	e.t.Helper()
	e.steps.wait(e.t, key, state, 10*time.Second)
	r, err := o.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitQuiet waits until no job waits in the stream or the delayed set. Each
// step a worker takes is observed, so it waits on those, not on time.
func (e *env) waitQuiet(o *Outbox) {
	e.t.Helper()
	// A parked entry comes back only once its in-doubt grace is over, so
	// the wait allows for the grace on top of the work itself.
	limit := 10*time.Second + o.opts.InDoubtGrace
	deadline := time.After(limit)
	for {
		e.steps.mu.Lock()
		notify := e.steps.notify
		e.steps.mu.Unlock()
		if depth(e.t, o) == 0 {
			return
		}
		select {
		case <-notify:
		case <-deadline:
			e.t.Fatalf("outbox depth %d after %v, want 0", depth(e.t, o), limit)
		}
	}
}

// depth is the number of jobs waiting in the stream or the delayed set.
func depth(t *testing.T, o *Outbox) int64 {
	t.Helper()
	n, err := o.rdb.XLen(context.Background(), o.p+"outbox").Result()
	if err != nil {
		t.Fatal(err)
	}
	d, err := o.rdb.ZCard(context.Background(), o.p+"delayed").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n + d
}

func TestEnqueueDuplicatesAcrossInstances(t *testing.T) {
	e := newEnv(t)
	stub := newStub(nil)
	// Four instances share one Redis and one phone number.
	var outs []*Outbox
	for range 4 {
		// A grace far above any POST on a loaded machine: a send still in
		// flight when another instance claims its entry must be waited
		// for, not resent (the in-doubt resend has its own test).
		o, _ := e.outbox(stub, func(o *Options) { o.InDoubtGrace = 20 * time.Second })
		outs = append(outs, o)
	}
	ctx := context.Background()
	var queued, dup atomic.Int64
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 250 {
				key := fmt.Sprintf("call-%d:offer", (i*7+p*13)%200)
				res, err := outs[p].Enqueue(ctx, job(key, fmt.Sprintf("+54 9 11 5555-%04d", i%200)))
				if err != nil {
					t.Errorf("Enqueue(%s) = %v", key, err)
					return
				}
				if res == Queued {
					queued.Add(1)
				} else {
					dup.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if queued.Load() != 200 || dup.Load() != 800 {
		t.Fatalf("Enqueue results: queued %d, duplicate %d; want 200, 800", queued.Load(), dup.Load())
	}
	for _, o := range outs[:2] {
		run(t, o)
	}
	e.steps.waitCount(t, "sent", 200, 30*time.Second)
	// Entries claimed while their first worker waited for the rate limit
	// were parked; wait until they drained as "done".
	e.waitQuiet(outs[0])
	if got := stub.total.Load(); got != 200 {
		t.Errorf("sends = %d, want exactly 200", got)
	}
}

func TestEnqueueValidation(t *testing.T) {
	e := newEnv(t)
	o, _ := e.outbox(newStub(nil), nil)
	ctx := context.Background()
	bad := []Job{
		{Key: "", Kind: KindOffer, Message: job("k", "1").Message},
		{Key: "a b", Kind: KindOffer, Message: job("k", "1").Message},
		{Key: "k", Kind: "spam", Message: job("k", "1").Message},
		{Key: "k", Kind: KindOffer},
		{Key: "k", Kind: KindOffer, Message: job("k", "no digits").Message},
	}
	for _, j := range bad {
		if _, err := o.Enqueue(ctx, j); err == nil {
			t.Errorf("Enqueue(%+v) = nil error, want one", j)
		}
	}
}

func TestOptOutHonouredByNextEnqueue(t *testing.T) {
	e := newEnv(t)
	o, _ := e.outbox(newStub(nil), nil)
	ctx := context.Background()
	if err := o.OptOut(ctx, "+54 9 11 5555 1234", "BAJA"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enqueue(ctx, job("c1:offer", "5491155551234")); !errors.Is(err, ErrOptedOut) {
		t.Fatalf("Enqueue to an opted-out number = %v, want ErrOptedOut", err)
	}
	if err := o.OptIn(ctx, "5491155551234"); err != nil {
		t.Fatal(err)
	}
	if res, err := o.Enqueue(ctx, job("c1:offer", "5491155551234")); err != nil || res != Queued {
		t.Fatalf("Enqueue after opt-in = %v, %v; want Queued", res, err)
	}
}

func TestTierBudget(t *testing.T) {
	e := newEnv(t)
	o, _ := e.outbox(newStub(nil), func(o *Options) { o.TierLimit = 3 })
	ctx := context.Background()
	for i := range 3 {
		if _, err := o.Enqueue(ctx, job(fmt.Sprintf("c%d:offer", i), fmt.Sprintf("100%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if left, err := o.BudgetLeft(ctx); err != nil || left != 0 {
		t.Fatalf("BudgetLeft() = %d, %v; want 0", left, err)
	}
	if _, err := o.Enqueue(ctx, job("c9:offer", "1009")); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("Enqueue to a 4th recipient = %v, want ErrBudgetExhausted", err)
	}
	// A recipient already counted in the window costs nothing more.
	if _, err := o.Enqueue(ctx, job("c0:recover", "1000")); err != nil {
		t.Fatalf("Enqueue to a counted recipient = %v, want nil", err)
	}
}

// The retry table: each class of error is attempted as specified.
func TestRetryTable(t *testing.T) {
	tests := []struct {
		name      string
		err       *whatsapp.Error
		failTimes int // the error comes this many times, then success
		wantState string
		wantSends int
	}{
		{"throughput retried", apiErr(429, 130429), 2, "sent", 3},
		{"pair rate retried", apiErr(400, 131056), 1, "sent", 2},
		{"5xx retried", apiErr(503, 0), 2, "sent", 3},
		{"transient code retried", apiErr(500, 131000), 1, "sent", 2},
		{"network retried", &whatsapp.Error{Class: whatsapp.Retry, Reason: "network", Err: errors.New("refused")}, 2, "sent", 3},
		{"retries exhausted", apiErr(503, 0), 100, "failed", 4},
		// A request that never left (the API down: connection refused)
		// does not use up the attempts: an outage longer than the backoff
		// series loses nothing (the chaos suite's Cloud API outage).
		{"never sent does not count", &whatsapp.Error{Class: whatsapp.Retry, Reason: "network", Err: errors.New("refused"), InDoubt: false}, 10, "sent", 11},
		{"undeliverable not retried", apiErr(400, 131026), 100, "failed", 1},
		{"window closed not retried", apiErr(400, 131047), 100, "failed", 1},
		{"template params not retried", apiErr(400, 132000), 100, "failed", 1},
		{"template paused not retried", apiErr(400, 132015), 100, "failed", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
				if n <= tt.failTimes {
					return nil, tt.err
				}
				return okResult(m), nil
			})
			o, _ := e.outbox(stub, func(o *Options) { o.MaxAttempts = 4 })
			if _, err := o.Enqueue(context.Background(), job("k:offer", "5491100000000")); err != nil {
				t.Fatal(err)
			}
			run(t, o)
			r := e.waitState(o, "k:offer", tt.wantState)
			if got := stub.count("k:offer"); got != tt.wantSends {
				t.Errorf("sends = %d, want %d", got, tt.wantSends)
			}
			if tt.wantState == "failed" && tt.wantSends == 1 && r.ErrorCode != tt.err.Code {
				t.Errorf("record error code = %d, want %d", r.ErrorCode, tt.err.Code)
			}
		})
	}
}

func apiErr(status, code int) *whatsapp.Error {
	class, reason := whatsapp.Classify(status, code)
	return &whatsapp.Error{HTTPStatus: status, Code: code, Class: class, Reason: reason, Message: "test"}
}

func TestUndeliverableMarksNumber(t *testing.T) {
	e := newEnv(t)
	stub := newStub(func(int, *whatsapp.Message) (*whatsapp.SendResult, error) { return nil, apiErr(400, 131026) })
	o, _ := e.outbox(stub, nil)
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, job("k:offer", "541143210000")); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.waitState(o, "k:offer", "failed")
	if ok, err := o.Unreachable(ctx, "+54 11 4321 0000"); err != nil || !ok {
		t.Errorf("Unreachable() = %v, %v; want true", ok, err)
	}
}

// A breaker error stops every send, across instances, until the cooldown.
func TestBreakerStopsSends(t *testing.T) {
	e := newEnv(t)
	stub := newStub(func(int, *whatsapp.Message) (*whatsapp.SendResult, error) { return nil, apiErr(401, 190) })
	o1, reg := e.outbox(stub, nil)
	o2, _ := e.outbox(stub, nil)
	ctx := context.Background()
	if _, err := o1.Enqueue(ctx, job("a:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	run(t, o1)
	run(t, o2)
	e.waitState(o1, "a:offer", "retry")
	for i := range 5 {
		if _, err := o2.Enqueue(ctx, job(fmt.Sprintf("b%d:offer", i), fmt.Sprintf("200%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	e.steps.waitCount(t, "postponed", 5, 10*time.Second) // parked behind the breaker
	if d := depth(t, o1); d != 6 {
		t.Errorf("outbox depth = %d, want all 6 parked", d)
	}
	if got := stub.total.Load(); got != 1 {
		t.Errorf("sends = %d, want 1 (the breaker stops the rest)", got)
	}
	open, _, reason := o2.BreakerState(ctx)
	if !open || reason == "" {
		t.Errorf("BreakerState() = %v, %q; want open with a reason", open, reason)
	}
	// Either instance may have taken the first job: count both.
	trips := testutil.ToFloat64(o1.metrics.breakerTrips.WithLabelValues("token_expired")) +
		testutil.ToFloat64(o2.metrics.breakerTrips.WithLabelValues("token_expired"))
	if trips != 1 {
		t.Errorf("breaker trips = %v, want 1", trips)
	}
	_ = reg
}

// Statuses: replays apply once, out-of-order deliveries end at the
// furthest state.
func TestApplyStatus(t *testing.T) {
	e := newEnv(t)
	stub := newStub(nil)
	o, _ := e.outbox(stub, nil)
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, job("k:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	stop := run(t, o)
	e.waitState(o, "k:offer", "sent")
	stop()
	wamid := "wamid.k:offer"
	steps := []struct {
		status      string
		opaque      string
		wantApplied bool
		wantStatus  string
	}{
		{whatsapp.StatusSent, "k:offer", true, "sent"},
		{whatsapp.StatusSent, "k:offer", false, "sent"},      // replay
		{whatsapp.StatusRead, "", true, "read"},              // by wamid; delivered skipped
		{whatsapp.StatusDelivered, "k:offer", false, "read"}, // late: never goes back
		{whatsapp.StatusRead, "k:offer", false, "read"},      // replay
	}
	for _, s := range steps {
		applied, err := o.ApplyStatus(ctx, whatsapp.Status{WAMID: wamid, Status: s.status, BizOpaqueCallbackData: s.opaque, Timestamp: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := o.Get(ctx, "k:offer")
		if applied != s.wantApplied || r.Status != s.wantStatus {
			t.Errorf("ApplyStatus(%s) = %v, status %s; want %v, %s", s.status, applied, r.Status, s.wantApplied, s.wantStatus)
		}
	}
	if applied, err := o.ApplyStatus(ctx, whatsapp.Status{WAMID: "wamid.other", Status: "read"}); err != nil || applied {
		t.Errorf("ApplyStatus(unknown wamid) = %v, %v; want false, nil", applied, err)
	}
}

// A send whose answer was lost is not resent when a status webhook
// carrying its key arrives within the grace period.
func TestInDoubtResolvedByWebhook(t *testing.T) {
	e := newEnv(t)
	stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
		return nil, &whatsapp.Error{Class: whatsapp.Retry, Reason: "network", InDoubt: true, Err: errors.New("timeout awaiting headers")}
	})
	o, _ := e.outbox(stub, func(o *Options) { o.InDoubtGrace = time.Second })
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, job("k:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.waitState(o, "k:offer", "indoubt")
	// Meta did send it: its "sent" webhook names the job.
	if _, err := o.ApplyStatus(ctx, whatsapp.Status{WAMID: "wamid.real", Status: "sent", BizOpaqueCallbackData: "k:offer"}); err != nil {
		t.Fatal(err)
	}
	r, err := o.Get(ctx, "k:offer")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "sent" || r.WAMID != "wamid.real" || r.ResolvedBy != "webhook" {
		t.Errorf("record = %+v, want sent, wamid.real, resolved by webhook", r)
	}
	if d := depth(t, o); d != 0 {
		t.Errorf("outbox depth = %d, want 0: nothing left to resend", d)
	}
	if got := stub.count("k:offer"); got != 1 {
		t.Errorf("sends = %d, want 1", got)
	}
	if key, err := o.KeyForWAMID(ctx, "wamid.real"); err != nil || key != "k:offer" {
		t.Errorf("KeyForWAMID() = %q, %v", key, err)
	}
}

// With no webhook within the grace period, the job is sent again.
func TestInDoubtResentAfterGrace(t *testing.T) {
	e := newEnv(t)
	stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
		if n == 1 {
			return nil, &whatsapp.Error{Class: whatsapp.Retry, Reason: "network", InDoubt: true, Err: errors.New("reset")}
		}
		return okResult(m), nil
	})
	o, _ := e.outbox(stub, nil)
	if _, err := o.Enqueue(context.Background(), job("k:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.waitState(o, "k:offer", "sent")
	if got := stub.count("k:offer"); got != 2 {
		t.Errorf("sends = %d, want 2", got)
	}
	if got := testutil.ToFloat64(o.metrics.indoubtResends); got != 1 {
		t.Errorf("in-doubt resends = %v, want 1", got)
	}
}

// Cancelling a worker in the middle of a send does not abandon the send:
// it is finished and recorded, so nothing is in doubt and nothing is sent
// twice when another worker starts.
func TestCancelMidSend(t *testing.T) {
	e := newEnv(t)
	inSend := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
		once.Do(func() { close(inSend); <-release })
		return okResult(m), nil
	})
	o1, _ := e.outbox(stub, nil)
	ctx := context.Background()
	for i := range 10 {
		if _, err := o1.Enqueue(ctx, job(fmt.Sprintf("k%d:offer", i), fmt.Sprintf("100%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	stop1 := run(t, o1)
	<-inSend
	stopped := make(chan struct{})
	go func() { stop1(); close(stopped) }()
	close(release)
	<-stopped
	o2, _ := e.outbox(stub, nil)
	run(t, o2)
	for i := range 10 {
		e.waitState(o2, fmt.Sprintf("k%d:offer", i), "sent")
	}
	for i := range 10 {
		if got := stub.count(fmt.Sprintf("k%d:offer", i)); got != 1 {
			t.Errorf("sends of k%d = %d, want 1", i, got)
		}
	}
}

// A consumer that stops acknowledging (it died after reading) has its
// entries taken over by another instance.
func TestAbandonedEntryClaimed(t *testing.T) {
	e := newEnv(t)
	stub := newStub(nil)
	o, reg := e.outbox(stub, nil)
	ctx := context.Background()
	// A consumer reads the entry and dies before doing anything.
	if err := o.rdb.XGroupCreateMkStream(ctx, o.p+"outbox", group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enqueue(ctx, job("k:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{o.p + "outbox", ">"}, Count: 1}).Result(); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.waitState(o, "k:offer", "sent")
	if got := stub.count("k:offer"); got != 1 {
		t.Errorf("sends = %d, want 1", got)
	}
	if got := testutil.ToFloat64(o.metrics.claimed); got < 1 {
		t.Errorf("claimed = %v, want ≥ 1", got)
	}
	_ = reg
}

func TestConvert(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	clock := func() time.Time { return now }
	o, _ := e.outbox(newStub(nil), func(o *Options) { o.Now = clock; o.ConversionWindow = time.Hour })
	ctx := context.Background()
	for _, k := range []string{"a:offer", "b:recover"} {
		to := map[string]string{"a:offer": "1001", "b:recover": "1002"}[k]
		j := job(k, to)
		if k == "b:recover" {
			j.Kind = KindRecover
		}
		if _, err := o.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	run(t, o)
	e.waitState(o, "a:offer", "sent")
	e.waitState(o, "b:recover", "sent")

	tests := []struct {
		name    string
		in      whatsapp.Inbound
		wantKey string
		wantVia string
	}{
		{"tap by payload", whatsapp.Inbound{ID: "i1", From: "1001", Type: "button", ButtonPayload: "dfl:a:offer", Timestamp: now.Add(time.Minute)}, "a:offer", "tap"},
		{"second tap converts nothing", whatsapp.Inbound{ID: "i2", From: "1001", Type: "button", ButtonPayload: "dfl:a:offer", Timestamp: now.Add(time.Minute)}, "", ""},
		{"payload from another number", whatsapp.Inbound{ID: "i3", From: "9999", Type: "button", ButtonPayload: "dfl:b:recover"}, "", ""},
		{"reply too late", whatsapp.Inbound{ID: "i4", From: "1002", Type: "text", Text: "hola", Timestamp: now.Add(2 * time.Hour)}, "", ""},
		{"reply by last message", whatsapp.Inbound{ID: "i5", From: "1002", Type: "text", Text: "hola", Timestamp: now.Add(30 * time.Minute)}, "b:recover", "reply"},
		{"stranger", whatsapp.Inbound{ID: "i6", From: "5555", Type: "text", Text: "hi"}, "", ""},
	}
	for _, tt := range tests {
		c, err := o.Convert(ctx, tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		gotKey, gotVia := "", ""
		if c != nil {
			gotKey, gotVia = c.Key, c.Via
		}
		if gotKey != tt.wantKey || gotVia != tt.wantVia {
			t.Errorf("%s: Convert() = %q via %q, want %q via %q", tt.name, gotKey, gotVia, tt.wantKey, tt.wantVia)
		}
	}
	r, _ := o.Get(ctx, "b:recover")
	if r.Converted.IsZero() || r.Kind != KindRecover {
		t.Errorf("record = %+v, want converted recover", r)
	}
}

func TestPredecessor(t *testing.T) {
	dead := func(int) bool { return false }
	alive := func(int) bool { return true }
	tests := []struct {
		name  string
		quiet bool
		alive func(int) bool
		want  bool
	}{
		{"web1-4242-a1b2c3", false, dead, true},  // gone
		{"web1-4242-a1b2c3", true, alive, false}, // still running: ClaimAfter decides
		{"web1-7-a1b2c3", true, alive, true},     // this pid, quiet: a restarted container's predecessor
		{"web1-7-a1b2c3", false, alive, false},   // this pid, reading: another outbox of this process
		{"web2-4242-a1b2c3", false, dead, false}, // another host
		{"web1-x-a1b2c3", false, dead, false},    // not the default form
		{"web1-4242-zz", false, dead, false},     // not the default suffix
		{"web1-4242", false, dead, false},        // no suffix
		{"web1-0-a1b2c3", false, dead, false},    // no such pid
		{"web1-dead-4242-a1b2c3", false, dead, false},
	}
	for _, tt := range tests {
		if got := predecessor(tt.name, "web1", 7, tt.quiet, tt.alive); got != tt.want {
			t.Errorf("predecessor(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if predecessor("-4242-a1b2c3", "", 7, false, dead) {
		t.Error("an empty host matched")
	}
}

// TestPredecessorTakenOverAtOnce: a process of this host read an entry and
// was killed; the next one sends it at once, not after ClaimAfter, and
// removes the dead consumer from the group.
func TestPredecessorTakenOverAtOnce(t *testing.T) {
	e := newEnv(t)
	stub := newStub(nil)
	o, _ := e.outbox(stub, func(o *Options) { o.Consumer, o.ClaimAfter = "", time.Hour })
	ctx := context.Background()
	if err := o.rdb.XGroupCreateMkStream(ctx, o.p+"outbox", group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enqueue(ctx, job("k:offer", "1001")); err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadName := fmt.Sprintf("%s-%d-abcdef", o.opts.host, gone.Process.Pid)
	if _, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: deadName, Streams: []string{o.p + "outbox", ">"}, Count: 1}).Result(); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.waitState(o, "k:offer", "sent")
	if got := stub.count("k:offer"); got != 1 {
		t.Errorf("sends = %d, want 1", got)
	}
	consumers, err := o.rdb.XInfoConsumers(ctx, o.p+"outbox", group).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		if c.Name == deadName {
			t.Errorf("the dead consumer %s is still in the group", deadName)
		}
	}
}

// TestUnreachedResumeWhenAPIBack: a job that could not reach the API waits
// its backoff (an hour here); the first send that gets through makes it
// due at once, and it is sent once.
func TestUnreachedResumeWhenAPIBack(t *testing.T) {
	e := newEnv(t)
	refused := &whatsapp.Error{Class: whatsapp.Retry, Reason: "network", Err: errors.New("connection refused")}
	stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
		if m.BizOpaqueCallbackData == "a:offer" && n == 1 {
			return nil, refused
		}
		return okResult(m), nil
	})
	o, _ := e.outbox(stub, func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour })
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, job("a:offer", "5491100000001")); err != nil {
		t.Fatal(err)
	}
	run(t, o)
	e.steps.wait(t, "a:offer", "retry", 10*time.Second)
	if _, err := o.Enqueue(ctx, job("b:offer", "5491100000002")); err != nil {
		t.Fatal(err)
	}
	e.waitState(o, "b:offer", "sent")
	e.waitState(o, "a:offer", "sent")
	if got := stub.count("a:offer"); got != 2 {
		t.Errorf("sends of a = %d, want 2 (refused, then sent)", got)
	}
	if n, _ := o.rdb.Exists(ctx, o.p+"unreached").Result(); n != 0 {
		t.Errorf("the unreached set is still there")
	}
}
