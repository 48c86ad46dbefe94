//go:build e2e

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/asterisktest"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"gonum.org/v1/plot/plotter"
)

var (
	soakDuration = flag.Duration("soak-duration", 0, "run TestSoak for this long (make soak); 0 skips it")
	soakEvery    = flag.Duration("soak-sample", 10*time.Second, "TestSoak's sampling interval")
	soakCPS      = flag.Float64("soak-cps", 5, "TestSoak's calls per second")
)

// soakRules: the member-less hold queue offers WhatsApp at 2 s, and a
// caller who hangs up after 10 s gets a recovery message.
const soakRules = `route:
  action: none
  short_abandon: 10s
  recover: true
  recover_template: queue_recover_v1
  routes:
    - matchers: ['queue="hold"']
      action: offer
      template: queue_deflect_v1
      sla: 2s
      max_offers: 1
      offer_timeout: 20s
`

// soakDurable are the keys that live without a TTL by design, with why;
// any other key without one, once the calls are over, is a leak.
type durableKey struct {
	re  *regexp.Regexp
	why string
}

var soakDurable = []durableKey{
	{regexp.MustCompile(`inbox:\{[^}]*\}`), "the inbox: conversations, their messages and history, and the views' indexes are its record"},
	{regexp.MustCompile(`wa:outbox$`), "the outbox's job stream: each entry is deleted once its message is sent, so it is empty at rest"},
	{regexp.MustCompile(`wa:webhooks$`), "the webhook intake stream, capped at 100,000 entries"},
	{regexp.MustCompile(`optout`), "opt-outs are kept until the customer opts back in"},
}

// TestSoak runs deflectd against the real Asterisk with sipp placing about
// 5 calls a second, some 100 callers waiting at a time, and a mix of
// outcomes: 40 % press 1 (deflected), 30 % press 2 and hang up after
// 35 s, 30 % hang up after 20 s without a key (recovered). The fake Cloud
// API's customers answer half the messages, so the inbox fills too. Every
// -soak-sample it samples deflectd's RSS, Go heap, goroutines and open
// files, and Redis's keys and memory. It fails if a process figure grows
// steadily over the second half of the run (a least-squares slope above
// its bound), or if keys without a TTL remain that are not durable by
// design. make soak runs it:
//
//	sudo make soak SOAK_DURATION=10m
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("make soak runs it (-soak-duration)")
	}
	d := *soakDuration
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Minute)
	defer cancel()
	users := "users:\n  - {id: ana, name: Ana, role: agent, teams: [support], tokens: [\"sha256:" + strings.Repeat("0", 64) + "\"]}\n"
	st := newStackWith(t, ctx, soakRules, stackOptions{
		customers: &whatsapptest.Customers{ReplyRate: 0.5, TapRate: 0.5, Text: "Hola, sigo por acá", Delay: 2 * time.Second},
		extra:     "inbox:\n  users_file: users.yaml\n  teams: [{name: support}]\n",
		files:     map[string]string{"users.yaml": users},
	})
	p := startConnected(t, st.dir, st.env, 30*time.Second)
	st.wa.SetWebhookURL("http://" + p.addr + "/webhook")
	rdb := st.rs.Client()

	type sample struct {
		at                         time.Duration
		rss, heap, goroutines, fds float64
		redisKeys, redisMemory     float64
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	start := time.Now()
	take := func() {
		s := sample{at: time.Since(start)}
		s.rss = procStatus(p.cmd.Process.Pid, "VmRSS") * 1024
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)); err == nil {
			s.fds = float64(len(ents))
		}
		m := scrape(t, "http://"+p.addr+"/metrics")
		s.heap, s.goroutines = m["go_memstats_heap_inuse_bytes"], m["go_goroutines"]
		s.redisKeys = float64(rdb.DBSize(ctx).Val())
		if info, err := rdb.Info(ctx, "memory").Result(); err == nil {
			s.redisMemory = infoField(info, "used_memory")
		}
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(*soakEvery)
		defer tick.Stop()
		for {
			take()
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// The load, in rounds of 20 s of arrivals, overlapping as the calls
	// last; each round is three sipp processes, one per outcome.
	type group struct {
		name  string
		share float64
		opts  asterisktest.CallOptions
	}
	groups := []group{
		{"deflected", 0.4, asterisktest.CallOptions{DTMF: []asterisktest.DTMF{{After: 4 * time.Second, Digit: "1"}}, HangupAfter: 60 * time.Second}},
		{"declined", 0.3, asterisktest.CallOptions{DTMF: []asterisktest.DTMF{{After: 4 * time.Second, Digit: "2"}}, HangupAfter: 35 * time.Second}},
		{"abandoned", 0.3, asterisktest.CallOptions{HangupAfter: 20 * time.Second}},
	}
	const round = 20 * time.Second
	cps := *soakCPS
	var loads []*asterisktest.SIPp
	calls, seq := 0, 0
	for r := 0; time.Since(start) < d; r++ {
		roundStart := time.Now()
		for _, g := range groups {
			n := int(g.share * cps * round.Seconds())
			var numbers []string
			for range n {
				numbers = append(numbers, fmt.Sprintf("+54911%08d", seq))
				seq++
			}
			o := g.opts
			o.Exten, o.CallerNumbers, o.Rate, o.Timeout = "103", numbers, g.share*cps, 2*time.Minute // the longest call lasts 60 s
			l, err := st.sb.Call(ctx, o)
			if err != nil {
				t.Fatalf("round %d, %s: %v", r, g.name, err)
			}
			loads = append(loads, l)
			calls += n
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(round - time.Since(roundStart)):
		}
	}
	failed := 0
	for _, l := range loads {
		res, err := l.Wait()
		if err != nil {
			failed += res.Failed
		}
	}
	// The calls are over: let the last messages, replies and timers
	// settle, then sample once more.
	settle := time.After(30 * time.Second)
	<-settle
	stopSampling()
	wg.Wait()
	take()
	elapsed := time.Since(start)

	// The figures.
	mu.Lock()
	defer mu.Unlock()
	if len(samples) < 6 {
		t.Fatalf("%d samples: run longer (-soak-duration) or sample more often (-soak-sample)", len(samples))
	}
	// The second half of the load (the settle samples excluded), past
	// warm-up.
	load := samples[:len(samples)-1]
	for len(load) > 0 && load[len(load)-1].at > d {
		load = load[:len(load)-1]
	}
	half := load[len(load)/2:]
	type figure struct {
		name  string
		get   func(sample) float64
		bound float64 // per minute
		unit  string
	}
	figures := []figure{
		{"RSS", func(s sample) float64 { return s.rss }, 2 << 20, "B"},
		{"Go heap in use", func(s sample) float64 { return s.heap }, 1 << 20, "B"},
		{"goroutines", func(s sample) float64 { return s.goroutines }, 5, ""},
		{"open files", func(s sample) float64 { return s.fds }, 2, ""},
		{"Redis keys", func(s sample) float64 { return s.redisKeys }, -1, ""},
		{"Redis memory", func(s sample) float64 { return s.redisMemory }, -1, "B"},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "soak: %v of load, %d calls placed (%d failed in sipp), %d samples every %v, %v in all\n",
		d, calls, failed, len(samples), *soakEvery, elapsed.Round(time.Second))
	fmt.Fprintf(&report, "| figure | first | last of load | after the calls | slope, 2nd half (/min) | bound (/min) |\n|---|---:|---:|---:|---:|---:|\n")
	for _, f := range figures {
		slope := slopePerMinute(half, func(s sample) (float64, float64) { return s.at.Minutes(), f.get(s) })
		bound := "reported"
		if f.bound >= 0 {
			bound = fmt.Sprintf("%.0f %s", f.bound, f.unit)
			if slope > f.bound {
				t.Errorf("%s grows by %.0f %s a minute over the second half (bound %.0f): a leak", f.name, slope, f.unit, f.bound)
			}
		}
		fmt.Fprintf(&report, "| %s | %.0f | %.0f | %.0f | %.0f | %s |\n", f.name, f.get(samples[0]), f.get(load[len(load)-1]),
			f.get(samples[len(samples)-1]), slope, bound)
	}

	// The bridge kept up: a call it handed back to the dialplan's Queue()
	// (deflectd_calls_fallback_total), because Asterisk did not answer in
	// time, is a call the soak did not exercise. Past 2 % the load is more
	// than this machine's Asterisk carries, and the run proves nothing.
	fallbacks := scrape(t, "http://"+p.addr+"/metrics")["deflectd_calls_fallback_total"]
	fmt.Fprintf(&report, "calls handed back to the dialplan (deflectd_calls_fallback_total): %.0f of %d\n", fallbacks, calls)
	if fallbacks > 0.02*float64(calls) {
		t.Errorf("%.0f of %d calls fell back to the dialplan: Asterisk did not keep up with %v calls a second; lower -soak-cps", fallbacks, calls, cps)
	}

	// Keys without a TTL once the calls are over.
	undue := map[string]int{}
	durable := 0
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if ttl := rdb.TTL(ctx, k).Val(); ttl != -1 { // -1: no TTL (Go maps it to -1 ns)
			continue
		}
		if slices.ContainsFunc(soakDurable, func(d durableKey) bool { return d.re.MatchString(k) }) {
			durable++
			continue
		}
		undue[regexp.MustCompile(`[0-9]+`).ReplaceAllString(k, "N")]++
	}
	fmt.Fprintf(&report, "keys without a TTL after the calls: %d durable by design, %d others\n", durable, len(undue))
	for k, n := range undue {
		t.Errorf("%d keys like %s have no TTL once the calls are over", n, k)
	}
	t.Log(report.String())
	if dir := os.Getenv("DEFLECTD_ARTIFACTS"); dir != "" {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "soak.md"), []byte(report.String()), 0o644)
		var csv strings.Builder
		csv.WriteString("seconds,rss_bytes,heap_bytes,goroutines,fds,redis_keys,redis_memory_bytes\n")
		for _, s := range samples {
			fmt.Fprintf(&csv, "%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", s.at.Seconds(), s.rss, s.heap, s.goroutines, s.fds, s.redisKeys, s.redisMemory)
		}
		os.WriteFile(filepath.Join(dir, "soak-samples.csv"), []byte(csv.String()), 0o644)
		var series []soakSeries
		for _, f := range figures {
			s := soakSeries{title: f.name, unit: f.unit}
			if s.unit == "B" {
				s.unit = "MiB"
			}
			for _, x := range samples {
				v := f.get(x)
				if f.unit == "B" {
					v /= 1 << 20
				}
				s.xy = append(s.xy, plotter.XY{X: x.at.Minutes(), Y: v})
			}
			series = append(series, s)
		}
		if err := plotSoak(filepath.Join(dir, "soak.png"), series, d.Minutes()); err != nil {
			t.Errorf("drawing the soak's curves: %v", err)
		}
	}
}

// slopePerMinute fits y = a + b·x by least squares and returns b.
func slopePerMinute[S any](ss []S, xy func(S) (float64, float64)) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := xy(s)
		n++
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if n < 2 || den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// procStatus reads a "kB" field of /proc/<pid>/status.
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return f
		}
	}
	return 0
}

// scrape reads the unlabelled series of a /metrics page.
func scrape(t *testing.T, url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("scrape: %v", err)
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && !strings.HasPrefix(l, "#") && !strings.Contains(f[0], "{") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out
}

func infoField(info, name string) float64 {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
