//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/asterisktest"
)

// benchRules offers at 2 s in the member-less "hold" queue.
const benchRules = `route:
  action: none
  routes:
    - matchers: ['queue="hold"']
      action: offer
      template: queue_deflect_v1
      sla: 2s
      max_offers: 1
      offer_timeout: 30s
`

// BenchmarkE2EDeflectionLoad runs the real deflectd against the real
// Asterisk under a sipp load: Calls callers arrive at Rate per second in
// the member-less queue, are offered WhatsApp at 2 s, and press 1 at 4 s.
// It reports the latency from Asterisk seeing the "1" to the Cloud API
// receiving the message (p50, p99), and the CPU deflectd and Asterisk used
// during the load. Run it with -benchtime=1x (one load per run):
//
//	sudo go test -tags e2e -run '^$' -bench BenchmarkE2EDeflectionLoad -benchtime 1x ./cmd/deflectd/
func BenchmarkE2EDeflectionLoad(b *testing.B) {
	calls, rate := 100, 10.0
	if v, err := strconv.Atoi(os.Getenv("DEFLECTD_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	for range b.N {
		benchLoad(b, calls, rate)
	}
}

func benchLoad(b *testing.B, calls int, rate float64) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := newStack(b, ctx, benchRules)
	p := startDeflectd(b, st.dir, st.env)
	p.waitLines(b, "the ARI connection", 1, 30*time.Second, msg("ARI event connection established"))

	var numbers []string
	for i := range calls {
		numbers = append(numbers, fmt.Sprintf("+549115556%04d", i))
	}
	cpuD0, cpuA0 := cpuTicks(p.cmd.Process.Pid), cpuTicks(st.sb.PID)
	start := time.Now()
	b.StartTimer()
	load, err := st.sb.Call(ctx, asterisktest.CallOptions{Exten: "103", CallerNumbers: numbers, Rate: rate,
		DTMF: []asterisktest.DTMF{{After: 4 * time.Second, Digit: "1"}}, Timeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := st.wa.WaitMessages(ctx, calls)
	if err != nil {
		b.Fatal(err)
	}
	res, err := load.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	cpuD, cpuA := cpuTicks(p.cmd.Process.Pid)-cpuD0, cpuTicks(st.sb.PID)-cpuA0
	if err != nil || res.Successful != calls {
		b.Fatalf("sipp: %d of %d calls successful (%v)\n%s", res.Successful, calls, err, res.Output)
	}

	// Latency: Asterisk's timestamp of the key press (logged by the bridge
	// as "pressed") to the message's arrival at the API.
	pressed := map[string]time.Time{}
	for _, l := range p.waitLines(b, "every acceptance", calls, time.Minute, msg("deflect: the caller accepted WhatsApp")) {
		// zap's production encoder writes times as epoch seconds.
		sec, ok := l["pressed"].(float64)
		if !ok {
			b.Fatalf("pressed = %v, want epoch seconds", l["pressed"])
		}
		pressed[fmt.Sprint(l["call"])] = time.Unix(0, int64(sec*1e9))
	}
	var lat []time.Duration
	for _, m := range msgs {
		id, _ := strings.CutSuffix(m.Body.BizOpaqueCallbackData, ":offer")
		if t, ok := pressed[id]; ok {
			lat = append(lat, m.Time.Sub(t))
		}
	}
	if len(lat) != calls {
		b.Fatalf("matched %d of %d messages to their key press", len(lat), calls)
	}
	slices.Sort(lat)
	hz := 100.0 // USER_HZ on Linux
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-dtmf-to-post-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-dtmf-to-post-ms")
	b.ReportMetric(float64(cpuD)/hz/elapsed.Seconds()*100, "deflectd-cpu-%")
	b.ReportMetric(float64(cpuA)/hz/elapsed.Seconds()*100, "asterisk-cpu-%")
	b.ReportMetric(float64(cpuD)/hz/float64(calls)*1000, "deflectd-cpu-ms/call")
	b.ReportMetric(float64(calls), "calls")
}

// cpuTicks returns a process's user+system CPU time in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
