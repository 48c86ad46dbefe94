package webhook

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
)

// fakeStatuses applies statuses monotonically, as the outbox does, and
// records every call. failNext fails that many calls first.
type fakeStatuses struct {
	mu       sync.Mutex
	rank     map[string]int
	calls    []whatsapp.Status
	applied  []whatsapp.Status
	failNext int
	called   chan whatsapp.Status
}

func (f *fakeStatuses) ApplyStatus(_ context.Context, s whatsapp.Status) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() { f.called <- s }()
	f.calls = append(f.calls, s)
	if f.failNext > 0 {
		f.failNext--
		return false, errors.New("status store down")
	}
	r := whatsapp.StatusRank(s.Status)
	if r <= f.rank[s.WAMID] {
		return false, nil
	}
	f.rank[s.WAMID] = r
	f.applied = append(f.applied, s)
	return true, nil
}

type optOutCall struct{ Number, Reason string }

type fakeOptOuts struct {
	mu    sync.Mutex
	calls []optOutCall
}

func (f *fakeOptOuts) OptOut(_ context.Context, number, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, optOutCall{number, reason})
	return nil
}

// fakeConversions converts every message whose ContextID is set (a reply
// to something deflectd sent) as an offer.
type fakeConversions struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeConversions) Convert(_ context.Context, in whatsapp.Inbound) (*whatsapp.Conversion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in.ID)
	if in.ContextID == "" {
		return nil, nil
	}
	via := "reply"
	if in.Type != whatsapp.InboundText {
		via = "tap"
	}
	return &whatsapp.Conversion{Key: "call-1:offer", Kind: "offer", Via: via, At: in.Timestamp}, nil
}

type harness struct {
	t           *testing.T
	s           *redistest.Server
	rdb         *redis.Client
	intake      *RedisIntake
	reg         *prometheus.Registry
	statuses    *fakeStatuses
	optOuts     *fakeOptOuts
	conversions *fakeConversions
	// surfaced receives what the first subscriber is given.
	surfaced chan whatsapp.Inbound
	opts     ProcessorOptions
}

const testClaimAfter = 100 * time.Millisecond

func newHarness(t *testing.T) *harness {
	s := redistest.Start(t)
	h := &harness{
		t:           t,
		s:           s,
		rdb:         s.Client(),
		reg:         prometheus.NewRegistry(),
		statuses:    &fakeStatuses{rank: map[string]int{}, called: make(chan whatsapp.Status, 100)},
		optOuts:     &fakeOptOuts{},
		conversions: &fakeConversions{},
		surfaced:    make(chan whatsapp.Inbound, 100),
	}
	var err error
	h.intake, err = NewRedisIntake(RedisIntakeOptions{Client: h.rdb, Prefix: s.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	h.opts = ProcessorOptions{
		Client:      h.rdb,
		Prefix:      s.Prefix,
		Consumer:    "B",
		ClaimAfter:  testClaimAfter,
		Statuses:    h.statuses,
		OptOuts:     h.optOuts,
		Conversions: h.conversions,
		Subscribers: []func(context.Context, whatsapp.Inbound) error{
			func(_ context.Context, in whatsapp.Inbound) error { h.surfaced <- in; return nil },
		},
		Registerer: h.reg,
	}
	return h
}

func (h *harness) append(bodies ...[]byte) {
	h.t.Helper()
	for _, b := range bodies {
		if err := h.intake.Append(context.Background(), b); err != nil {
			h.t.Fatal(err)
		}
	}
}

// start runs a Processor until the returned stop, which waits for Run to
// return, so that everything it did is visible afterwards.
func (h *harness) start() (stop func()) {
	h.t.Helper()
	p, err := NewProcessor(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("Run() = %v, want nil", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// waitSurfaced returns the messages surfaced up to and including the one
// with id. Entries are processed in stream order, so a marker message
// appended last shows that everything before it was processed.
func (h *harness) waitSurfaced(id string) []string {
	h.t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case in := <-h.surfaced:
			got = append(got, in.ID)
			if in.ID == id {
				return got
			}
		case <-timeout:
			h.t.Fatalf("message %s not surfaced within 10 s; surfaced %q", id, got)
		}
	}
}

func (h *harness) pending() int64 {
	h.t.Helper()
	p, err := h.rdb.XPending(context.Background(), h.intake.stream, "deflectd").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Count
}

func TestProcessorStatusReplay(t *testing.T) {
	tests := []struct {
		name        string
		statusTTL   time.Duration
		wantCalls   int
		wantApplied string // the applied label of the second delivery
	}{
		{"repeat suppressed", 0, 1, "duplicate"},
		{"repeat passed on", -1, 2, "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.StatusTTL = tt.statusTTL
			h.append(statusBody("wamid.s", "delivered"), statusBody("wamid.s", "delivered"), textBody("wamid.marker", "x"))
			stop := h.start()
			h.waitSurfaced("wamid.marker")
			stop()

			if got := len(h.statuses.calls); got != tt.wantCalls {
				t.Errorf("ApplyStatus called %d times, want %d", got, tt.wantCalls)
			}
			want := []whatsapp.Status{{WAMID: "wamid.s", Status: "delivered", Timestamp: testTime, RecipientID: testFrom, PhoneNumberID: testPhoneID}}
			if diff := cmp.Diff(want, h.statuses.applied); diff != "" {
				t.Errorf("applied statuses mismatch (-want +got):\n%s", diff)
			}
			if got := counter(t, h.reg, "deflectd_whatsapp_status_updates_total", "status", "delivered", "applied", "true"); got != 1 {
				t.Errorf("status_updates_total{delivered,true} = %v, want 1", got)
			}
			if got := counter(t, h.reg, "deflectd_whatsapp_status_updates_total", "status", "delivered", "applied", tt.wantApplied); got != 1 {
				t.Errorf("status_updates_total{delivered,%s} = %v, want 1", tt.wantApplied, got)
			}
			if got := h.pending(); got != 0 {
				t.Errorf("pending entries = %d, want 0", got)
			}
		})
	}
}

func TestProcessorStatusesOutOfOrder(t *testing.T) {
	h := newHarness(t)
	h.append(statusBody("wamid.o", "read"), statusBody("wamid.o", "sent"), statusBody("wamid.o", "delivered"), textBody("wamid.marker", "x"))
	stop := h.start()
	h.waitSurfaced("wamid.marker")
	stop()
	// Every status reaches the store, which keeps the furthest.
	if got, want := len(h.statuses.calls), 3; got != want {
		t.Errorf("ApplyStatus called %d times, want %d", got, want)
	}
	if got, want := h.statuses.rank["wamid.o"], whatsapp.StatusRank(whatsapp.StatusRead); got != want {
		t.Errorf("final rank = %d, want %d (read)", got, want)
	}
}

func TestProcessorIgnoresUnknownStatuses(t *testing.T) {
	h := newHarness(t)
	h.append(statusBody("wamid.u", "held_for_quality_assessment"), textBody("wamid.marker", "x"))
	stop := h.start()
	h.waitSurfaced("wamid.marker")
	stop()
	if got := len(h.statuses.calls); got != 0 {
		t.Errorf("ApplyStatus called %d times for an unknown status, want 0", got)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_status_updates_total", "status", "other", "applied", "false"); got != 1 {
		t.Errorf("status_updates_total{other,false} = %v, want 1", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorInboundReplaySurfacedOnce(t *testing.T) {
	h := newHarness(t)
	reply := messageBody("wamid.r", map[string]any{"type": "text", "text": map[string]any{"body": "sí, escríbanme"},
		"context": map[string]any{"from": "15550783881", "id": "wamid.offer"}})
	// Appended while the processor waits, as webhooks come.
	stop := h.start()
	h.append(reply)
	first := h.waitSurfaced("wamid.r")
	h.append(reply, reply, textBody("wamid.marker", "x"))
	got := append(first, h.waitSurfaced("wamid.marker")...)
	stop()

	if diff := cmp.Diff([]string{"wamid.r", "wamid.marker"}, got); diff != "" {
		t.Errorf("surfaced messages mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"wamid.r", "wamid.marker"}, h.conversions.calls); diff != "" {
		t.Errorf("Convert calls mismatch (-want +got):\n%s", diff)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_conversions_total", "kind", "offer", "via", "reply"); got != 1 {
		t.Errorf("conversions_total{offer,reply} = %v, want 1", got)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_inbound_total", "type", "text"); got != 2 {
		t.Errorf("inbound_total{text} = %v, want 2", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorOptOut(t *testing.T) {
	tests := []struct {
		name        string
		body        []byte
		keywords    []string
		wantOptOuts []optOutCall
		wantConvert bool
	}{
		{
			name:        "keyword with punctuation",
			body:        textBody("wamid.m", "Baja."),
			wantOptOuts: []optOutCall{{testFrom, "BAJA"}},
		},
		{
			name:        "keyword with spaces and accent",
			body:        messageBody("wamid.m", map[string]any{"from": "+54 9 11 5555-1234", "type": "text", "text": map[string]any{"body": "  arrêt "}}),
			wantOptOuts: []optOutCall{{testFrom, "ARRÊT"}},
		},
		{
			name:        "a reply to an offer that says stop is not a conversion",
			body:        messageBody("wamid.m", map[string]any{"type": "text", "text": map[string]any{"body": "STOP"}, "context": map[string]any{"id": "wamid.offer"}}),
			wantOptOuts: []optOutCall{{testFrom, "STOP"}},
		},
		{
			name:        "configured keyword",
			body:        textBody("wamid.m", "No molestar"),
			keywords:    []string{"NO MOLESTAR"},
			wantOptOuts: []optOutCall{{testFrom, "NO MOLESTAR"}},
		},
		{
			name:        "keyword in a sentence",
			body:        textBody("wamid.m", "no quiero la baja, quiero ayuda"),
			wantConvert: true,
		},
		{
			name:        "a button titled like a keyword",
			body:        messageBody("wamid.m", map[string]any{"type": "button", "button": map[string]any{"payload": "stop-reminders", "text": "STOP"}}),
			wantConvert: true,
		},
		{
			name:        "username user without a number",
			body:        messageBody("wamid.m", map[string]any{"from": "", "from_user_id": "AR.9", "type": "text", "text": map[string]any{"body": "stop"}}),
			wantOptOuts: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.OptOutKeywords = tt.keywords
			h.append(tt.body)
			stop := h.start()
			// Opt-outs still reach subscribers: the inbox shows them.
			h.waitSurfaced("wamid.m")
			stop()
			if diff := cmp.Diff(tt.wantOptOuts, h.optOuts.calls); diff != "" {
				t.Errorf("OptOut calls mismatch (-want +got):\n%s", diff)
			}
			if got := len(h.conversions.calls) == 1; got != tt.wantConvert {
				t.Errorf("Convert called: %v, want %v", got, tt.wantConvert)
			}
			if got, want := counter(t, h.reg, "deflectd_whatsapp_optouts_total"), float64(len(tt.wantOptOuts)); got != want {
				t.Errorf("optouts_total = %v, want %v", got, want)
			}
		})
	}
}

func TestProcessorClaimsCrashedConsumer(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.append(textBody("wamid.c", "hola"))
	// Consumer A reads the entry and dies without acknowledging it.
	if err := h.rdb.XGroupCreateMkStream(ctx, h.intake.stream, "deflectd", "0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "deflectd", Consumer: "A",
		Streams: []string{h.intake.stream, ">"}, Count: 10, Block: -1}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
		t.Fatalf("XREADGROUP by A = %v, %v; want the entry", got, err)
	}

	stop := h.start()
	h.waitSurfaced("wamid.c")
	stop()
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorPoisonEntries(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, values := range []any{
		[]any{bodyField, "not json"},
		[]any{bodyField, `{"object":"page","entry":[]}`},
		[]any{"other", "no body field"},
	} {
		if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: h.intake.stream, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	h.append(textBody("wamid.marker", "x"))
	stop := h.start()
	h.waitSurfaced("wamid.marker")
	stop()
	if got := counter(t, h.reg, "deflectd_whatsapp_webhook_processing_errors_total", "reason", "malformed"); got != 3 {
		t.Errorf("processing_errors_total{malformed} = %v, want 3", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0: poison entries must be acknowledged", got)
	}
}

func TestProcessorRetriesStoreErrors(t *testing.T) {
	h := newHarness(t)
	h.statuses.failNext = 1
	h.append(statusBody("wamid.f", "sent"))
	stop := h.start()
	for i := range 2 {
		select {
		case <-h.statuses.called:
		case <-time.After(10 * time.Second):
			t.Fatalf("ApplyStatus call %d did not come within 10 s", i+1)
		}
	}
	// The second call succeeded; stop waits for the entry to be finished.
	stop()
	if got := len(h.statuses.applied); got != 1 {
		t.Errorf("applied %d statuses, want 1", got)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_webhook_processing_errors_total", "reason", "sink"); got != 1 {
		t.Errorf("processing_errors_total{sink} = %v, want 1", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorRetriesOnlyFailedSubscribers(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var secondCalls int
	second := make(chan struct{}, 10)
	h.opts.Subscribers = append(h.opts.Subscribers, func(context.Context, whatsapp.Inbound) error {
		mu.Lock()
		defer mu.Unlock()
		secondCalls++
		second <- struct{}{}
		if secondCalls == 1 {
			return errors.New("inbox down")
		}
		return nil
	})
	h.append(textBody("wamid.p", "hola"))
	stop := h.start()
	for i := range 2 {
		select {
		case <-second:
		case <-time.After(10 * time.Second):
			t.Fatalf("second subscriber call %d did not come within 10 s", i+1)
		}
	}
	stop()
	if got := len(h.surfaced); got != 1 {
		t.Errorf("first subscriber called %d times, want 1: it succeeded the first time", got)
	}
	if got := len(h.conversions.calls); got != 1 {
		t.Errorf("Convert called %d times, want 1", got)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_inbound_total", "type", "text"); got != 1 {
		t.Errorf("inbound_total{text} = %v, want 1", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorWaitsForAnotherInstancesLease(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	keys := h.opts
	keys.Registerer = prometheus.NewRegistry()
	p, err := NewProcessor(keys)
	if err != nil {
		t.Fatal(err)
	}
	// Another instance is handling a delivery of wamid.l right now.
	if err := h.rdb.Set(ctx, p.leaseKey("wamid.l"), "other-instance", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	h.append(textBody("wamid.l", "hola"), textBody("wamid.marker", "x"))
	stop := h.start()
	if got := h.waitSurfaced("wamid.marker"); !cmp.Equal(got, []string{"wamid.marker"}) {
		t.Fatalf("surfaced %q while the lease was held elsewhere, want only the marker", got)
	}
	// The other instance dies without finishing: its lease expires, and
	// the pending entry is retried here.
	if err := h.rdb.Del(ctx, p.leaseKey("wamid.l")).Err(); err != nil {
		t.Fatal(err)
	}
	h.waitSurfaced("wamid.l")
	stop()
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorMetricsInitialised(t *testing.T) {
	h := newHarness(t)
	if _, err := NewProcessor(h.opts); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"deflectd_whatsapp_status_updates_total":            15,
		"deflectd_whatsapp_inbound_total":                   13,
		"deflectd_whatsapp_conversions_total":               12,
		"deflectd_whatsapp_optouts_total":                   1,
		"deflectd_whatsapp_webhook_processing_errors_total": 2,
	} {
		families, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, f := range families {
			if f.GetName() == name {
				got = len(f.GetMetric())
			}
		}
		if got != want {
			t.Errorf("%s has %d series, want %d", name, got, want)
		}
	}
}

func TestNewProcessorValidates(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		modify func(*ProcessorOptions)
	}{
		{"no client", func(o *ProcessorOptions) { o.Client = nil }},
		{"no status store", func(o *ProcessorOptions) { o.Statuses = nil }},
		{"no opt-out store", func(o *ProcessorOptions) { o.OptOuts = nil }},
		{"no conversion store", func(o *ProcessorOptions) { o.Conversions = nil }},
		{"nil subscriber", func(o *ProcessorOptions) { o.Subscribers = append(o.Subscribers, nil) }},
		{"nil status subscriber", func(o *ProcessorOptions) {
			o.StatusSubscribers = []func(context.Context, whatsapp.Status) error{func(context.Context, whatsapp.Status) error { return nil }, nil}
		}},
	}
	for _, tt := range tests {
		opts := h.opts
		opts.Registerer = prometheus.NewRegistry()
		tt.modify(&opts)
		if _, err := NewProcessor(opts); err == nil {
			t.Errorf("NewProcessor(%s) error = nil, want one", tt.name)
		}
	}
}

// statusSubscriber records the statuses it is given; it fails the first
// failFirst calls.
type statusSubscriber struct {
	mu        sync.Mutex
	got       []string // wamid/status
	failFirst int
	called    chan struct{}
}

func newStatusSubscriber(failFirst int) *statusSubscriber {
	return &statusSubscriber{failFirst: failFirst, called: make(chan struct{}, 100)}
}

func (r *statusSubscriber) subscribe(_ context.Context, s whatsapp.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { r.called <- struct{}{} }()
	r.got = append(r.got, s.WAMID+"/"+s.Status)
	if r.failFirst > 0 {
		r.failFirst--
		return errors.New("inbox down")
	}
	return nil
}

func (r *statusSubscriber) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// wait waits for the n-th call.
func (r *statusSubscriber) wait(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-r.called:
		case <-time.After(10 * time.Second):
			t.Fatalf("status subscriber call %d did not come within 10 s", i+1)
		}
	}
}

func TestProcessorStatusSubscribers(t *testing.T) {
	h := newHarness(t)
	first, second := newStatusSubscriber(0), newStatusSubscriber(0)
	h.opts.StatusSubscribers = []func(context.Context, whatsapp.Status) error{first.subscribe, second.subscribe}
	// read is applied; the late sent is not, and is handed on all the
	// same; the repeat of read is remembered and goes nowhere; an
	// unknown status goes nowhere either.
	h.append(statusBody("wamid.s", "read"), statusBody("wamid.s", "sent"), statusBody("wamid.s", "read"),
		statusBody("wamid.s", "held_for_quality_assessment"), textBody("wamid.marker", "x"))
	stop := h.start()
	h.waitSurfaced("wamid.marker")
	stop()

	want := []string{"wamid.s/read", "wamid.s/sent"}
	for i, r := range []*statusSubscriber{first, second} {
		if diff := cmp.Diff(want, r.calls()); diff != "" {
			t.Errorf("status subscriber %d calls mismatch (-want +got):\n%s", i, diff)
		}
	}
	if got := len(h.statuses.calls); got != 2 {
		t.Errorf("ApplyStatus called %d times, want 2", got)
	}
	if got := counter(t, h.reg, "deflectd_whatsapp_status_updates_total", "status", "read", "applied", "duplicate"); got != 1 {
		t.Errorf("status_updates_total{read,duplicate} = %v, want 1", got)
	}
	if got := h.pending(); got != 0 {
		t.Errorf("pending entries = %d, want 0", got)
	}
}

func TestProcessorRetriesFailedStatusSubscribers(t *testing.T) {
	tests := []struct {
		name      string
		statusTTL time.Duration
		// Calls of the store and the first subscriber, which succeeds:
		// a retry repeats them only without the dedupe state.
		wantStore, wantFirst int
		// Calls after a repeat of the status once it was handed on.
		wantAfterRepeat int
	}{
		{"remembered", 0, 1, 1, 0},
		{"not remembered", -1, 2, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.opts.StatusTTL = tt.statusTTL
			first, failing := newStatusSubscriber(0), newStatusSubscriber(1)
			h.opts.StatusSubscribers = []func(context.Context, whatsapp.Status) error{first.subscribe, failing.subscribe}
			h.append(statusBody("wamid.f", "delivered"))
			stop := h.start()
			// The first call fails; the entry is claimed again after
			// ClaimAfter and the second succeeds.
			failing.wait(t, 2)
			if got := counter(t, h.reg, "deflectd_whatsapp_webhook_processing_errors_total", "reason", "sink"); got != 1 {
				t.Errorf("processing_errors_total{sink} = %v, want 1", got)
			}

			// Meta repeats the status once it was handed on everywhere.
			h.append(statusBody("wamid.f", "delivered"), textBody("wamid.marker", "x"))
			h.waitSurfaced("wamid.marker")
			stop()

			if got, want := len(h.statuses.calls), tt.wantStore+tt.wantAfterRepeat; got != want {
				t.Errorf("ApplyStatus called %d times, want %d", got, want)
			}
			if got, want := len(first.calls()), tt.wantFirst+tt.wantAfterRepeat; got != want {
				t.Errorf("succeeding status subscriber called %d times, want %d", got, want)
			}
			if got, want := len(failing.calls()), 2+tt.wantAfterRepeat; got != want {
				t.Errorf("failing status subscriber called %d times, want %d", got, want)
			}
			// The store applied it once, and that is counted once.
			if got := counter(t, h.reg, "deflectd_whatsapp_status_updates_total", "status", "delivered", "applied", "true"); got != 1 {
				t.Errorf("status_updates_total{delivered,true} = %v, want 1", got)
			}
			if got := h.pending(); got != 0 {
				t.Errorf("pending entries = %d, want 0", got)
			}
			var leftover []string
			iter := h.rdb.Scan(context.Background(), 0, h.s.Prefix+"wa:webhooks:statussteps:*", 100).Iterator()
			for iter.Next(context.Background()) {
				leftover = append(leftover, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			if len(leftover) != 0 {
				t.Errorf("status steps left in Redis: %q", leftover)
			}
		})
	}
}

func TestProcessorSurfacesEveryInboundType(t *testing.T) {
	h := newHarness(t)
	h.append(
		messageBody("wamid.i", map[string]any{"type": "image", "image": map[string]any{"id": "1", "mime_type": "image/jpeg"}}),
		messageBody("wamid.r", map[string]any{"type": "reaction", "reaction": map[string]any{"message_id": "wamid.x", "emoji": "👍"}}),
		messageBody("wamid.u", map[string]any{"type": "unsupported", "errors": []any{map[string]any{"code": 131051}}}),
		messageBody("wamid.o", map[string]any{"type": "order", "order": map[string]any{"catalog_id": "1"}}),
	)
	stop := h.start()
	got := h.waitSurfaced("wamid.o")
	stop()
	if diff := cmp.Diff([]string{"wamid.i", "wamid.r", "wamid.u", "wamid.o"}, got); diff != "" {
		t.Errorf("surfaced messages mismatch (-want +got):\n%s", diff)
	}
	for _, typ := range []string{"image", "reaction", "unsupported", "other"} {
		if got := counter(t, h.reg, "deflectd_whatsapp_inbound_total", "type", typ); got != 1 {
			t.Errorf("inbound_total{%s} = %v, want 1", typ, got)
		}
	}
}
