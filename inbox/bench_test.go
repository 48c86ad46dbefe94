package inbox_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/outbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// The inbox at a large contact center's size, on a real Redis (docs/
// benchmarks.md has the figures and how to reproduce them):
//
//	go test ./inbox -run '^$' -bench . -benchtime 2000x
//
// Latencies are reported as p50 and p99 per call (ms), measured around
// each call; ns/op is their mean.

const (
	benchConvs  = 10000
	benchAgents = 100
	benchTeams  = 5
)

// benchClock is a settable clock that may also run: once started, it
// moves with the wall clock from where it was set.
type benchClock struct {
	mu    sync.Mutex
	base  time.Time
	start time.Time // zero: stopped
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.start.IsZero() {
		return c.base
	}
	return c.base.Add(time.Since(c.start))
}

func (c *benchClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.start = t, time.Time{}
}

// Run makes the clock move with the wall clock from t.
func (c *benchClock) Run(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.start = t, time.Now()
}

type benchEnv struct {
	x     *inbox.Inbox
	rdb   *redis.Client
	clock *benchClock
	users *inbox.Directory
	// agents[i] is in team i%benchTeams.
	agents []*inbox.User
	sup    *inbox.User
	teams  []string
	// eventsKey is the live event stream's key.
	eventsKey string
	n         atomic.Int64
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	rs := redistest.Start(b)
	e := &benchEnv{rdb: rs.Client(), clock: &benchClock{base: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)},
		eventsKey: rs.Prefix + "inbox:{inbox}:events"}
	var cfg inbox.Config
	var yaml strings.Builder
	yaml.WriteString("users:\n")
	for t := range benchTeams {
		name := "team" + strconv.Itoa(t)
		e.teams = append(e.teams, name)
		cfg.Teams = append(cfg.Teams, inbox.TeamConfig{Name: name})
	}
	for i := range benchAgents {
		fmt.Fprintf(&yaml, "  - {id: agent%03d, name: Agent %d, role: agent, teams: [%s]}\n", i, i, e.teams[i%benchTeams])
	}
	fmt.Fprintf(&yaml, "  - {id: sup, name: Supervisor, role: supervisor, teams: [%s]}\n", strings.Join(e.teams, ", "))
	users, err := inbox.ParseUsers([]byte(yaml.String()))
	if err != nil {
		b.Fatal(err)
	}
	e.users = users
	for i := range benchAgents {
		u, _ := users.User(fmt.Sprintf("agent%03d", i))
		e.agents = append(e.agents, u)
	}
	e.sup, _ = users.User("sup")
	// Keyword routing spreads the chats over the teams.
	for _, t := range e.teams {
		cfg.Routing.Keywords = append(cfg.Routing.Keywords, inbox.KeywordRoute{Team: t, Words: []string{t}})
	}

	wa := whatsapptest.NewServer(whatsapptest.Options{Token: "tok"})
	b.Cleanup(wa.Close)
	client, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: wa.URL, PhoneNumberID: wa.PhoneNumberID, Token: "tok"})
	if err != nil {
		b.Fatal(err)
	}
	ob, err := outbox.New(outbox.Options{Redis: e.rdb, Prefix: rs.Prefix, Sender: client, PhoneNumberID: wa.PhoneNumberID,
		Now: e.clock.Now, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	off := false
	cfg.MarkRead = &off
	e.x, err = inbox.New(inbox.Options{Redis: e.rdb, Prefix: rs.Prefix, Config: &cfg, Users: users, Outbox: ob,
		Now: e.clock.Now, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// customer makes a new customer of team write n messages and returns the
// conversation id.
func (e *benchEnv) customer(ctx context.Context, team string, n int) (string, error) {
	from := fmt.Sprintf("54911%08d", e.n.Add(1))
	for i := range n {
		in := whatsapp.Inbound{ID: fmt.Sprintf("wamid.%s.%d", from, i), From: from, ProfileName: "Cliente " + from[len(from)-4:],
			Type: whatsapp.InboundText, Text: fmt.Sprintf("Hola, escribo por %s: mensaje %d de mi consulta", team, i), Timestamp: e.clock.Now()}
		if err := e.x.Ingest(ctx, in); err != nil {
			return "", err
		}
	}
	return inbox.ConversationID(from, ""), nil
}

// fill opens benchConvs chats spread over the teams; every other one is
// claimed by an agent of its team, so each agent owns about 50.
func (e *benchEnv) fill(b *testing.B) (unassigned map[string][]string) {
	b.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	unassigned = map[string][]string{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range benchConvs {
		g.Go(func() error {
			team := i % benchTeams
			id, err := e.customer(gctx, e.teams[team], 1)
			if err != nil {
				return err
			}
			if i%2 == 0 {
				// The team's agents in turn.
				agent := e.agents[(i/(2*benchTeams))%(benchAgents/benchTeams)*benchTeams+team]
				_, err := e.x.Claim(gctx, agent, id)
				return err
			}
			mu.Lock()
			unassigned[e.teams[team]] = append(unassigned[e.teams[team]], id)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return unassigned
}

// latencies collects per-call durations and reports their percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 { return float64(l[min(len(l)-1, int(q*float64(len(l))))]) / 1e6 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkInbox measures the views and the claim with 10,000 open
// conversations and 100 agents.
func BenchmarkInbox(b *testing.B) {
	e := newBenchEnv(b)
	unassigned := e.fill(b)
	ctx := context.Background()
	if c, err := e.x.Counts(ctx, e.sup); err != nil || c.Pending != benchConvs {
		b.Fatalf("after the fill: counts %+v, %v; want %d pending", c, err, benchConvs)
	}

	view := func(name string, who func(i int) *inbox.User, q inbox.Query) {
		b.Run(name, func(b *testing.B) {
			lat := make(latencies, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				p, err := e.x.List(ctx, who(i), q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Items) == 0 {
					b.Fatalf("%s: empty page", name)
				}
			}
			lat.report(b)
		})
	}
	agent := func(i int) *inbox.User { return e.agents[i%benchAgents] }
	view("list/agent-unassigned", agent, inbox.Query{View: inbox.ViewUnassigned})
	view("list/agent-mine", agent, inbox.Query{View: inbox.ViewMine})
	view("list/supervisor-pending", func(int) *inbox.User { return e.sup }, inbox.Query{View: inbox.ViewPending})
	view("list/supervisor-filtered", func(int) *inbox.User { return e.sup }, inbox.Query{View: inbox.ViewPending, Level: "normal", Priority: inbox.PriorityMedium})
	b.Run("counts/agent", func(b *testing.B) {
		lat := make(latencies, 0, b.N)
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			_, err := e.x.Counts(ctx, agent(i))
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		lat.report(b)
	})

	b.Run("claim", func(b *testing.B) {
		lat := make(latencies, 0, b.N)
		for i := 0; b.Loop(); i++ {
			u := agent(i)
			team := u.Teams[0]
			if len(unassigned[team]) == 0 {
				b.StopTimer()
				id, err := e.customer(ctx, team, 1)
				if err != nil {
					b.Fatal(err)
				}
				unassigned[team] = append(unassigned[team], id)
				b.StartTimer()
			}
			id := unassigned[team][0]
			unassigned[team] = unassigned[team][1:]
			start := time.Now()
			_, err := e.x.Claim(ctx, u, id)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		lat.report(b)
	})
}

// BenchmarkEscalationBurst measures how late the policy acts when 1,000
// chats reach their 15-minute escalation within the same second, with the
// timer worker running as deflectd runs it (polling every 100 ms).
// Lateness is the escalation event's time minus the chat's escalation
// time, on a clock that runs with the wall clock.
func BenchmarkEscalationBurst(b *testing.B) {
	const burst = 1000
	ctx := context.Background()
	var lat latencies
	for b.Loop() {
		b.StopTimer()
		e := newBenchEnv(b)
		t0 := e.clock.Now()
		due := map[string]time.Time{}
		for i := range burst {
			// Arrivals spread over one second.
			e.clock.Set(t0.Add(time.Duration(i) * time.Millisecond))
			id, err := e.customer(ctx, e.teams[i%benchTeams], 1)
			if err != nil {
				b.Fatal(err)
			}
			due[id] = e.clock.Now().Add(inbox.DefaultEscalateAfter)
		}
		last, err := e.x.LastEventID(ctx)
		if err != nil {
			b.Fatal(err)
		}
		// Jump to just before the first escalation (the chats turn
		// critical at once), then let time run.
		e.clock.Run(t0.Add(inbox.DefaultEscalateAfter - 200*time.Millisecond))
		b.StartTimer()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.x.Run(runCtx) }()
		seen := 0
		for seen < burst {
			evs, err := e.x.Events(ctx, last, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				b.Fatalf("%d of %d escalations after the stream went quiet", seen, burst)
			}
			for _, ev := range evs {
				last = ev.ID
				if ev.Type != inbox.EvEscalation {
					continue
				}
				d, ok := due[ev.Conv]
				if !ok {
					b.Fatalf("escalation of unknown %s", ev.Conv)
				}
				delete(due, ev.Conv)
				lat = append(lat, ev.At.Sub(d))
				seen++
			}
		}
		stop()
		<-done
	}
	lat.report(b)
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}

// BenchmarkMemoryPerConversation reports Redis memory per conversation of
// 20 customer messages.
func BenchmarkMemoryPerConversation(b *testing.B) {
	const convs, msgs = 500, 20
	ctx := context.Background()
	for b.Loop() {
		e := newBenchEnv(b)
		before := usedMemory(b, e.rdb)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i := range convs {
			g.Go(func() error { _, err := e.customer(gctx, e.teams[i%benchTeams], msgs); return err })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		total := usedMemory(b, e.rdb) - before
		// The live event stream is shared and capped (20,000 events),
		// so it is reported apart: it does not grow with the chats.
		stream, err := e.rdb.MemoryUsage(ctx, e.eventsKey).Result()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(total-stream)/convs, "redis-bytes/conv")
		b.ReportMetric(float64(stream)/(convs*msgs), "stream-bytes/event")
	}
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
