package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/deflectd/deflectd/whatsapp"
)

// The demo falls back to an embedded miniredis when there is no Redis (see
// demoStore in cmd/deflectd/demo.go), so the outbox's core scenarios must
// hold on it too. miniredis expires keys only on FastForward unless
// ClockTTL is on; the outbox relies on expiry (the pair-spacing and breaker
// keys), so the store is configured exactly as the demo configures it.
func TestMiniredis(t *testing.T) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true) // as in demoStore
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	// redistest.Start uses REDIS_URL, each test under a prefix of its own.
	t.Setenv("REDIS_URL", "redis://"+m.Addr())

	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"EnqueueDuplicatesAcrossInstances", TestEnqueueDuplicatesAcrossInstances},
		{"OptOutHonouredByNextEnqueue", TestOptOutHonouredByNextEnqueue},
		{"TierBudget", TestTierBudget},
		{"RetryTable", TestRetryTable},
		{"UndeliverableMarksNumber", TestUndeliverableMarksNumber},
		{"ApplyStatus", TestApplyStatus},
		{"InDoubtResolvedByWebhook", TestInDoubtResolvedByWebhook},
		{"InDoubtResentAfterGrace", TestInDoubtResentAfterGrace},
		{"CancelMidSend", TestCancelMidSend},
		{"AbandonedEntryClaimed", TestAbandonedEntryClaimed},
		{"Convert", TestConvert},
		{"KeysExpire", testKeysExpire},
	} {
		t.Run(tc.name, tc.f)
	}
}

// testKeysExpire covers what the demo does most and what breaks first
// without expiry: several messages to one caller (offer, then perform or
// recover) spaced by the pair limit, and sends resuming when a breaker's
// cooldown ends.
func testKeysExpire(t *testing.T) {
	e := newEnv(t)
	stub := newStub(func(n int, m *whatsapp.Message) (*whatsapp.SendResult, error) {
		if m.BizOpaqueCallbackData == "c:offer" && n == 1 {
			return nil, apiErr(401, 190) // opens the breaker
		}
		return okResult(m), nil
	})
	o, _ := e.outbox(stub, func(o *Options) {
		o.PairInterval = 50 * time.Millisecond
		o.BreakerCooldown = 300 * time.Millisecond
	})
	ctx := context.Background()
	for _, k := range []string{"a:offer", "a:perform", "a:recover"} {
		if _, err := o.Enqueue(ctx, job(k, "5491100000001")); err != nil {
			t.Fatal(err)
		}
	}
	run(t, o)
	for _, k := range []string{"a:offer", "a:perform", "a:recover"} {
		e.waitState(o, k, "sent")
	}
	if _, err := o.Enqueue(ctx, job("c:offer", "5491100000002")); err != nil {
		t.Fatal(err)
	}
	e.waitState(o, "c:offer", "retry")
	e.waitState(o, "c:offer", "sent") // the breaker closed by itself
	if open, _, _ := o.BreakerState(ctx); open {
		t.Error("breaker still open after its cooldown")
	}
	e.waitQuiet(o)
	if got := stub.total.Load(); got != 5 {
		t.Errorf("sends = %d, want 5", got)
	}
}
