package ewt

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The simulation checks the point of this package: in an M/M/s+M queue
// (Poisson arrivals, exponential handle times, exponential patience), the
// queue-length estimate fed from a Queue's own history is closer to the real
// wait than app_queue's EWMA. Everything runs in virtual time from a fixed
// seed, so the figures below are the same on every run.

type scenario struct {
	name     string
	agents   int
	handle   time.Duration // mean, 1/μ
	patience time.Duration // mean, 1/θ
	load     float64       // ρ = λ/(sμ)
	arrivals int
	seed     uint64
}

// simResult holds mean absolute errors over the callers who had to queue and
// were answered: at entry, and at every simProbe of their wait.
type simResult struct {
	samples, probes int
	// At entry.
	ql, announced, hold time.Duration
	// QL given the true μ and θ rather than learnt ones: the floor set by
	// the randomness of the model itself.
	oracle time.Duration
	// During the wait.
	qlWait, announcedWait, holdWait time.Duration
	// The mean real wait at entry, for scale, and what the Queue learnt.
	meanWait    time.Duration
	handle      time.Duration
	abandonRate float64
}

const (
	simWarmup = 1000             // arrivals before errors are counted
	simProbe  = 30 * time.Second // re-estimate every 30 s of wait
)

type simEventKind int

const (
	simArrive simEventKind = iota
	simDepart
	simAbandon
	simProbeEvent
)

type simEvent struct {
	at   time.Duration
	kind simEventKind
	call int
	seq  int // ties broken by scheduling order, for determinism
}

type simEvents []simEvent

func (h simEvents) Len() int { return len(h) }
func (h simEvents) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h simEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *simEvents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// prediction is one estimate given to a caller, kept until its real wait is
// known.
type prediction struct {
	at                           time.Duration
	ql, announced, ewmaW, oracle time.Duration
}

func simulate(t testing.TB, sc scenario) simResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(sc.seed, 0x5eed))
	exp := func(mean time.Duration) time.Duration {
		return time.Duration(rng.ExpFloat64() * float64(mean))
	}
	interarrival := time.Duration(float64(sc.handle) / (sc.load * float64(sc.agents)))

	q := newQueue(t, Options{})
	q.SetAgents(sc.agents, sc.agents)

	var (
		events  simEvents
		seq     int
		busy    int
		line    []int // waiting calls, in order
		waiting = map[int]bool{}
		service = map[int]time.Duration{}
		preds   = map[int][]prediction{}
		res     simResult
		sum     [7]time.Duration
		waited  time.Duration
	)
	schedule := func(at time.Duration, kind simEventKind, call int) {
		seq++
		heap.Push(&events, simEvent{at: at, kind: kind, call: call, seq: seq})
	}
	id := func(call int) string { return fmt.Sprint("call-", call) }
	predict := func(call int, now time.Duration) {
		if call < simWarmup {
			return
		}
		e := q.Estimate(id(call), t0.Add(now))
		if !e.QLOk {
			t.Fatalf("call %d: Estimate().QLOk = false with %d agents", call, sc.agents)
		}
		// The EWMA read most generously: the average wait less the time
		// already waited, not rounded to minutes.
		elapsed := now - waitStart(preds[call], now)
		oracle, _ := QL(e.Ahead, sc.agents, sc.handle, 1/sc.patience.Seconds())
		preds[call] = append(preds[call], prediction{
			at: now, ql: e.QL, announced: e.EWMA, ewmaW: max(e.Hold-elapsed.Truncate(time.Second), 0), oracle: oracle,
		})
	}
	serve := func(call int, now time.Duration) {
		q.Answered(id(call), t0.Add(now))
		busy++
		q.SetAgents(sc.agents, sc.agents-busy)
		service[call] = exp(sc.handle)
		schedule(now+service[call], simDepart, call)
		for i, p := range preds[call] {
			real := now - p.at
			sum[0] += (p.ql - real).Abs()
			sum[1] += (p.announced - real).Abs()
			sum[2] += (p.ewmaW - real).Abs()
			if i == 0 {
				res.samples++
				waited += real
				sum[3] += (p.ql - real).Abs()
				sum[4] += (p.announced - real).Abs()
				sum[5] += (p.ewmaW - real).Abs()
				sum[6] += (p.oracle - real).Abs()
			}
			res.probes++
		}
		delete(preds, call)
	}

	schedule(0, simArrive, 0)
	for events.Len() > 0 {
		ev := heap.Pop(&events).(simEvent)
		now := ev.at
		switch ev.kind {
		case simArrive:
			call := ev.call
			if call+1 < sc.arrivals {
				schedule(now+exp(interarrival), simArrive, call+1)
			}
			q.Entered(id(call), t0.Add(now))
			if busy < sc.agents {
				serve(call, now) // no wait: not counted, no estimate needed
				continue
			}
			line = append(line, call)
			waiting[call] = true
			predict(call, now)
			schedule(now+exp(sc.patience), simAbandon, call)
			schedule(now+simProbe, simProbeEvent, call)
		case simDepart:
			q.Completed(id(ev.call), service[ev.call])
			delete(service, ev.call)
			busy--
			q.SetAgents(sc.agents, sc.agents-busy)
			if len(line) > 0 {
				next := line[0]
				line = line[1:]
				delete(waiting, next)
				serve(next, now)
			}
		case simAbandon:
			if !waiting[ev.call] {
				continue
			}
			delete(waiting, ev.call)
			line = slices.DeleteFunc(line, func(c int) bool { return c == ev.call })
			delete(preds, ev.call)
			q.Abandoned(id(ev.call), t0.Add(now))
		case simProbeEvent:
			if !waiting[ev.call] {
				continue
			}
			predict(ev.call, now)
			schedule(now+simProbe, simProbeEvent, ev.call)
		}
	}
	if res.samples == 0 {
		t.Fatalf("%s: no caller queued and was answered", sc.name)
	}
	res.qlWait = sum[0] / time.Duration(res.probes)
	res.announcedWait = sum[1] / time.Duration(res.probes)
	res.holdWait = sum[2] / time.Duration(res.probes)
	res.ql = sum[3] / time.Duration(res.samples)
	res.announced = sum[4] / time.Duration(res.samples)
	res.hold = sum[5] / time.Duration(res.samples)
	res.oracle = sum[6] / time.Duration(res.samples)
	res.meanWait = waited / time.Duration(res.samples)
	e := q.Joining()
	res.handle, res.abandonRate = e.Handle, e.AbandonRate
	return res
}

// waitStart returns when a caller started waiting: its first prediction, or
// now for the first one.
func waitStart(ps []prediction, now time.Duration) time.Duration {
	if len(ps) == 0 {
		return now
	}
	return ps[0].at
}

var simScenarios = []scenario{
	{name: "5 agents, 5 min handle, 10 min patience, ρ=0.95", agents: 5, handle: 5 * time.Minute, patience: 10 * time.Minute, load: 0.95, arrivals: 20000, seed: 1},
	{name: "5 agents, 5 min handle, 10 min patience, ρ=1.2", agents: 5, handle: 5 * time.Minute, patience: 10 * time.Minute, load: 1.2, arrivals: 20000, seed: 2},
	{name: "20 agents, 4 min handle, 5 min patience, ρ=1.1", agents: 20, handle: 4 * time.Minute, patience: 5 * time.Minute, load: 1.1, arrivals: 40000, seed: 3},
	{name: "3 agents, 6 min handle, 8 min patience, ρ=1.5", agents: 3, handle: 6 * time.Minute, patience: 8 * time.Minute, load: 1.5, arrivals: 20000, seed: 4},
}

func TestSimulationQLBeatsEWMA(t *testing.T) {
	for _, sc := range simScenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := simulate(t, sc)
			t.Logf("%d callers queued and answered, mean wait %v, %d estimates; learnt handle %v (true %v), patience %v (true %v)",
				r.samples, r.meanWait.Round(time.Second), r.probes, r.handle.Round(time.Second), sc.handle,
				time.Duration(float64(time.Second)/r.abandonRate).Round(time.Second), sc.patience)
			t.Logf("MAE at entry:    QL %v (with the true μ, θ: %v), app_queue announced %v, app_queue holdtime %v",
				r.ql.Round(time.Second), r.oracle.Round(time.Second), r.announced.Round(time.Second), r.hold.Round(time.Second))
			t.Logf("MAE during wait: QL %v, app_queue announced %v, app_queue holdtime−elapsed %v",
				r.qlWait.Round(time.Second), r.announcedWait.Round(time.Second), r.holdWait.Round(time.Second))
			if r.ql >= r.announced || r.ql >= r.hold {
				t.Errorf("MAE at entry: QL %v, want below app_queue's %v (announced) and %v (holdtime)", r.ql, r.announced, r.hold)
			}
			if r.qlWait >= r.announcedWait || r.qlWait >= r.holdWait {
				t.Errorf("MAE during wait: QL %v, want below app_queue's %v (announced) and %v (holdtime−elapsed)", r.qlWait, r.announcedWait, r.holdWait)
			}
		})
	}
}
