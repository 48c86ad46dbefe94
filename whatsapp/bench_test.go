package whatsapp_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deflectd/deflectd/whatsapp/outbox"
)

// BenchmarkOutboxAt1000MPS pushes messages through the whole send path
// (Redis outbox, shared rate limit, real client, fake Cloud API over
// loopback HTTP) with the number's limit at 1,000 messages per second, the
// highest tier Meta grants. It reports the throughput reached, the latency
// from Enqueue to the API accepting the message, and checks that no
// one-second window held more than 1,000 requests. Each iteration sends
// 3,000 messages enqueued up front by two instances.
func BenchmarkOutboxAt1000MPS(b *testing.B) {
	for range b.N {
		benchOutbox(b, 1000, 3000)
	}
}

func benchOutbox(b *testing.B, mps, n int) {
	b.StopTimer()
	s := newStack(b, stackOptions{noWebhook: true, mps: mps})
	var outs []*outbox.Outbox
	for range 2 {
		outs = append(outs, s.outbox(func(o *outbox.Options) { o.MPS = mps; o.Workers = 32; o.Observe = nil }))
	}
	ctx := context.Background()
	enqueued := make(map[string]time.Time, n)
	for i := range n {
		j := s.deflection(fmt.Sprintf("b%d", i), fmt.Sprintf("54911%08d", i))
		if _, err := outs[i%2].Enqueue(ctx, j); err != nil {
			b.Fatal(err)
		}
		enqueued[j.Key] = time.Now()
	}
	b.StartTimer()
	start := time.Now()
	for _, o := range outs {
		runCtx(b, o.Run)
	}
	msgs, err := s.fake.WaitMessages(ctxTimeout(b, time.Minute), n)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	// Time in the outbox: mostly the wait for the rate limit, as all n
	// were enqueued at once.
	var lat []time.Duration
	for _, m := range msgs {
		lat = append(lat, m.Time.Sub(enqueued[m.Body.BizOpaqueCallbackData]))
	}
	slices.Sort(lat)
	reqs := s.fake.Requests()
	worst := 0
	for i, r := range reqs {
		if r.Code == 130429 {
			b.Fatalf("request %d answered 130429", i)
		}
		in := 0
		for _, q := range reqs[i:] {
			if q.Time.Sub(r.Time) >= time.Second {
				break
			}
			in++
		}
		worst = max(worst, in)
	}
	if worst > mps {
		b.Fatalf("%d requests in one second, want ≤ %d", worst, mps)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(worst), "max-per-1s")
	b.ReportMetric(lat[len(lat)/2].Seconds()*1000, "p50-in-outbox-ms")
	b.ReportMetric(lat[len(lat)*99/100].Seconds()*1000, "p99-in-outbox-ms")
}
