// Package sim provides a simulated contact center behind the fake Asterisk
// of package aritest: callers arrive at queues, wait for simulated agents,
// lose patience and hang up, hear prompts and press keys, all over ARI's
// real HTTP and websocket, with the event shapes and order a real Asterisk
// 22 produces (docs in asterisk-lab.md, sections 4 to 7).
//
// It exists for `deflectd demo`: the real bridge runs unchanged against it,
// so a newcomer sees the product work without an Asterisk. Time runs Speed
// times faster than the wall clock, and every random choice follows Seed.
package sim

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deflectd/deflectd/ari/aritest"
)

// Queue is one simulated Asterisk queue and the callers who reach it.
type Queue struct {
	// Name is the queue name the dialplan passes as queue=.
	Name string
	// Rate is the mean number of callers arriving per simulated minute
	// (a Poisson process).
	Rate float64
	// Agents serve the queue's callers first come, first served.
	Agents int
	// HandleTime is the mean (exponential) talk time of a served call.
	HandleTime time.Duration
	// Patience is the mean (exponential) time a caller waits before
	// hanging up, counted from arrival.
	Patience time.Duration
	// Entries are the IVR options callers of this queue pick, by weight.
	Entries []Entry
}

// Entry is one way into a queue through the IVR: Stasis(deflect,
// queue=..,option=..,reason=..).
type Entry struct {
	Option, Reason string
	Weight         float64
}

// Options configures a Sim.
type Options struct {
	// Server is the fake Asterisk the simulation runs in; the Sim takes
	// over some of its routes (Handle).
	Server *aritest.Server
	// App is the Stasis application callers enter. Default "deflect".
	App    string
	Queues []Queue
	// Speed is how many simulated seconds pass per real second. Default 1.
	Speed float64
	// Seed makes a run repeatable (given the same requests from the app).
	Seed uint64
	// Duration is how long (simulated) callers keep arriving; 0 means until
	// the context of Run ends.
	Duration time.Duration
	// AcceptRate and DeclineRate are the chances that a caller who heard
	// the WhatsApp offer presses 1 or 2; the others press nothing.
	AcceptRate, DeclineRate float64
	// OfferPrompt is the media of the offer, as the app plays it
	// ("sound:deflect/offer").
	OfferPrompt string
	// RingTime is how long an agent's phone rings before the agent
	// answers. Default 3 s.
	RingTime time.Duration
	// Now is the real clock. Default time.Now.
	Now func() time.Time
}

// Stats are what the simulation saw, as a contact center's switch would
// report it.
type Stats struct {
	// SimTime is the simulated time elapsed.
	SimTime time.Duration
	// Arrivals counts callers who entered the application.
	Arrivals int
	// Waiting is callers in a queue now (not yet with an agent).
	Waiting int
	// Active is callers on the line now.
	Active int
	// Answered counts callers an agent answered; Completed those whose
	// agent then hung up.
	Answered, Completed int
	// Abandoned counts callers who hung up before an agent answered.
	Abandoned int
	// Released counts callers the application hung up before an agent
	// answered: deflected to WhatsApp, or served by a message.
	Released int
	// Offers counts offer prompts heard to the end; Pressed1 and Pressed2
	// the keys pressed after them.
	Offers, Pressed1, Pressed2 int
}

// Sim is a running simulated contact center. Create it with New and run it
// with Run.
type Sim struct {
	o   Options
	srv *aritest.Server
	rng *rand.Rand

	mu      sync.Mutex
	pending []func()
	stats   Stats
	drained chan struct{}
	wake    chan struct{}

	// Owned by the Run goroutine.
	ctx       context.Context
	start     time.Time
	timers    timerHeap
	tseq      int
	seq       int
	callers   map[string]*caller
	byQ1      map[string]*caller
	queues    map[string]*queueState
	playbacks map[string]*playback
	arriving  bool
}

type caller struct {
	leg       leg
	q         *queueState
	entry     Entry
	arrived   time.Duration
	gone      bool // hung up, by itself or by the app
	exited    bool // left the queue with the exit key (EXITWITHKEY), not an abandon
	bridged   string
	answered  bool
	patience  *timer
	q1, q2    *leg
	queued    bool // in q.waiting
	agent     *agent
	ring      *timer
	talkEnd   *timer
	legsAlive bool // the Local halves exist
}

type agent struct {
	leg  leg
	n    int
	busy *caller
}

type queueState struct {
	cfg     Queue
	waiting []*caller
	agents  []*agent
}

// leg is a channel the simulation owns, rendered as ARI JSON.
type leg struct {
	id, name, state         string
	number, cidName         string
	context, exten, appData string
	created                 time.Time
}

func (l *leg) json() map[string]any {
	return map[string]any{
		"id": l.id, "name": l.name, "state": l.state, "protocol_id": "",
		"caller":       map[string]any{"name": l.cidName, "number": l.number},
		"connected":    map[string]any{"name": "", "number": ""},
		"accountcode":  "",
		"dialplan":     map[string]any{"context": l.context, "exten": l.exten, "priority": 1, "app_name": "Stasis", "app_data": l.appData},
		"creationtime": l.created.Format("2006-01-02T15:04:05.000-0700"),
		"language":     "es",
	}
}

// New checks the options and returns a Sim; it starts nothing.
func New(o Options) (*Sim, error) {
	if o.Server == nil {
		return nil, fmt.Errorf("sim: Options.Server is required")
	}
	if len(o.Queues) == 0 {
		return nil, fmt.Errorf("sim: no queues")
	}
	if o.App == "" {
		o.App = "deflect"
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.RingTime <= 0 {
		o.RingTime = 3 * time.Second
	}
	if o.OfferPrompt == "" {
		o.OfferPrompt = "sound:deflect/offer"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AcceptRate < 0 || o.DeclineRate < 0 || o.AcceptRate+o.DeclineRate > 1 {
		return nil, fmt.Errorf("sim: AcceptRate %v and DeclineRate %v must be chances adding up to at most 1", o.AcceptRate, o.DeclineRate)
	}
	s := &Sim{o: o, srv: o.Server, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)),
		drained: make(chan struct{}), wake: make(chan struct{}, 1),
		callers: map[string]*caller{}, byQ1: map[string]*caller{}, queues: map[string]*queueState{},
		playbacks: map[string]*playback{}}
	for _, q := range o.Queues {
		if q.Name == "" || q.Rate < 0 || q.Agents < 0 || len(q.Entries) == 0 {
			return nil, fmt.Errorf("sim: queue %q needs a name, a rate, agents and entries", q.Name)
		}
		s.queues[q.Name] = &queueState{cfg: q}
	}
	return s, nil
}

// Stats returns the counts so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if !s.start.IsZero() {
		st.SimTime = time.Duration(float64(s.o.Now().Sub(s.start)) * s.o.Speed)
	}
	return st
}

// Drained is closed once callers stopped arriving (Options.Duration) and
// every caller has left or is talking to an agent: what remains is talk
// time, in which the application has no part.
func (s *Sim) Drained() <-chan struct{} { return s.drained }

// Run waits for the application to connect, then runs the contact center
// until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	s.ctx = ctx
	s.install()
	if err := s.srv.WaitConnected(ctx, s.o.App); err != nil {
		return nil
	}
	s.mu.Lock()
	s.start = s.o.Now()
	s.mu.Unlock()
	s.arriving = true
	for _, q := range s.o.Queues {
		qs := s.queues[q.Name]
		for i := range q.Agents {
			qs.agents = append(qs.agents, &agent{n: i + 1})
		}
		s.setMembers(qs)
		s.scheduleArrival(qs)
	}
	if s.o.Duration > 0 {
		s.at(s.o.Duration, func() { s.arriving = false; s.checkDrained() })
	}
	for {
		s.mu.Lock()
		todo := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, f := range todo {
			f()
		}
		now := s.now()
		for len(s.timers) > 0 && s.timers[0].at <= now {
			t := heap.Pop(&s.timers).(*timer)
			if !t.dead {
				t.dead = true
				t.f()
			}
		}
		var tm *time.Timer
		var wait <-chan time.Time
		if len(s.timers) > 0 {
			tm = time.NewTimer(max(time.Duration(float64(s.timers[0].at-s.now())/s.o.Speed), 0))
			wait = tm.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-wait:
		}
		if tm != nil {
			tm.Stop()
		}
	}
}

// now is the simulated time since the start.
func (s *Sim) now() time.Duration {
	return time.Duration(float64(s.o.Now().Sub(s.start)) * s.o.Speed)
}

// post runs f on the Run goroutine.
func (s *Sim) post(f func()) {
	s.mu.Lock()
	s.pending = append(s.pending, f)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sim) at(d time.Duration, f func()) *timer {
	s.tseq++
	t := &timer{at: d, seq: s.tseq, f: f}
	heap.Push(&s.timers, t)
	return t
}

func (s *Sim) after(d time.Duration, f func()) *timer { return s.at(s.now()+d, f) }

func (s *Sim) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func (s *Sim) send(ev map[string]any) {
	// ErrNotConnected: the event happened anyway (the model has it); the
	// app resyncs when it reconnects.
	s.srv.Send(s.ctx, s.o.App, ev)
}

func (s *Sim) nextID() string {
	s.seq++
	return fmt.Sprintf("%d.%d", s.start.Unix(), s.seq)
}

// install takes over the routes whose side effects a real Asterisk turns
// into events: the model answers first (Default), then the simulation acts.
func (s *Sim) install() {
	wrap := func(method, pattern string, then func(c aritest.Call, body any)) {
		s.srv.Handle(method, pattern, func(ctx context.Context, c aritest.Call) (int, any) {
			status, body := s.srv.Default(ctx, c)
			if status == 0 || status < 300 {
				s.post(func() { then(c, body) })
			}
			return status, body
		})
	}
	wrap(http.MethodPost, "/channels/{id}/answer", func(c aritest.Call, _ any) { s.answered(c.Params["id"]) })
	wrap(http.MethodPost, "/bridges/{id}/addChannel", func(c aritest.Call, _ any) {
		for _, id := range strings.Split(arg(c, "channel"), ",") {
			s.enteredBridge(c.Params["id"], id)
		}
	})
	originate := func(c aritest.Call, _ any) {
		ep, args := arg(c, "endpoint"), arg(c, "appArgs")
		q, ok := strings.CutPrefix(ep, "Local/")
		callerID, proxy := strings.CutPrefix(args, "qproxy,")
		if !ok || !proxy {
			return
		}
		q, ctxName, _ := strings.Cut(strings.TrimSuffix(q, "/n"), "@")
		id := c.Params["id"]
		if id == "" {
			id = arg(c, "channelId")
		}
		s.queueEnter(callerID, q, ctxName, id, arg(c, "otherChannelId"))
	}
	wrap(http.MethodPost, "/channels", originate)
	wrap(http.MethodPost, "/channels/{id}", originate)
	wrap(http.MethodDelete, "/channels/{id}", func(c aritest.Call, _ any) { s.hungUpByApp(c.Params["id"]) })
	wrap(http.MethodPost, "/channels/{id}/dtmf", func(c aritest.Call, _ any) { s.exitedWithKey(c.Params["id"], arg(c, "dtmf")) })
	play := func(c aritest.Call, body any) {
		raw, _ := body.(json.RawMessage)
		var pb map[string]any
		if json.Unmarshal(raw, &pb) == nil {
			s.playStarted(c.Params["id"], pb)
		}
	}
	wrap(http.MethodPost, "/channels/{id}/play", play)
	wrap(http.MethodPost, "/channels/{id}/play/{playbackId}", play)
	wrap(http.MethodDelete, "/playbacks/{id}", func(c aritest.Call, _ any) { s.playStopped(c.Params["id"]) })
}

// arg reads a parameter from the query or a JSON body, as ARI allows.
func arg(c aritest.Call, name string) string {
	if c.Query.Has(name) {
		return c.Query.Get(name)
	}
	var body map[string]any
	if json.Unmarshal(c.Body, &body) == nil {
		if v, ok := body[name].(string); ok {
			return v
		}
	}
	return ""
}

func (s *Sim) scheduleArrival(q *queueState) {
	if q.cfg.Rate <= 0 {
		return
	}
	gap := time.Duration(s.rng.ExpFloat64() * float64(time.Minute) / q.cfg.Rate)
	s.after(gap, func() {
		if !s.arriving {
			return
		}
		s.arrive(q)
		s.scheduleArrival(q)
	})
}

func (s *Sim) pickEntry(q *queueState) Entry {
	total := 0.0
	for _, e := range q.cfg.Entries {
		total += e.Weight
	}
	r := s.rng.Float64() * total
	for _, e := range q.cfg.Entries {
		if r -= e.Weight; r < 0 {
			return e
		}
	}
	return q.cfg.Entries[len(q.cfg.Entries)-1]
}

// arrive is a caller reaching Stasis from the IVR (asterisk-lab.md §4).
func (s *Sim) arrive(q *queueState) {
	e := s.pickEntry(q)
	id := s.nextID()
	appData := fmt.Sprintf("%s,queue=%s,option=%s,reason=%s", s.o.App, q.cfg.Name, e.Option, e.Reason)
	c := &caller{q: q, entry: e, arrived: s.now(), leg: leg{
		id: id, name: fmt.Sprintf("PJSIP/trunk-%08x", s.seq), state: "Ring",
		// +54 9 11 5xxx-xxxx: a Buenos Aires mobile, as WhatsApp needs.
		number: fmt.Sprintf("+549115%07d", s.rng.IntN(10_000_000)), cidName: "Caller " + strconv.Itoa(s.seq),
		context: "from-trunk", exten: "100", appData: appData, created: s.o.Now(),
	}}
	s.callers[id] = c
	s.count(func(st *Stats) { st.Arrivals++; st.Active++ })
	s.send(map[string]any{"type": "StasisStart", "args": strings.Split(appData, ",")[1:], "channel": c.leg.json()})
	c.patience = s.after(s.exp(q.cfg.Patience), func() { s.callerHangsUp(c) })
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Sim) answered(id string) {
	c := s.callers[id]
	if c == nil || c.gone || c.leg.state == "Up" {
		return
	}
	c.leg.state = "Up"
	s.send(map[string]any{"type": "ChannelStateChange", "channel": c.leg.json()})
}

func (s *Sim) bridgeJSON(id string) map[string]any {
	raw, ok := s.srv.Bridge(id)
	var b map[string]any
	if !ok || json.Unmarshal(raw, &b) != nil {
		return nil
	}
	return b
}

func (s *Sim) enteredBridge(bridge, id string) {
	var l *leg
	if c := s.callers[id]; c != nil && !c.gone {
		c.bridged, l = bridge, &c.leg
	} else if c := s.byQ1[id]; c != nil && c.legsAlive {
		l = c.q1
	}
	if b := s.bridgeJSON(bridge); l != nil && b != nil {
		s.send(map[string]any{"type": "ChannelEnteredBridge", "bridge": b, "channel": l.json()})
	}
}

// queueEnter is the app's originate of Local/<queue>@<context>/n: ;2 runs
// Answer() and Queue(), ;1 enters Stasis with the app args (§6a).
func (s *Sim) queueEnter(callerID, queue, ctxName, q1, q2 string) {
	c := s.callers[callerID]
	qs := s.queues[queue]
	base := fmt.Sprintf("Local/%s@%s-%08x", queue, ctxName, s.seq)
	s.seq++
	mk := func(id, suffix string) *leg {
		l := &leg{id: id, name: base + suffix, state: "Down", context: ctxName, exten: queue, created: s.o.Now()}
		if c != nil {
			l.number, l.cidName = c.leg.number, c.leg.cidName
		}
		return l
	}
	l1, l2 := mk(q1, ";1"), mk(q2, ";2")
	l1.appData = s.o.App + ",qproxy," + callerID
	dialstring := queue + "@" + ctxName + "/n"
	s.send(map[string]any{"type": "Dial", "dialstatus": "", "forward": "", "dialstring": dialstring, "peer": l1.json()})
	l2.state, l1.state = "Up", "Up"
	s.send(map[string]any{"type": "ChannelStateChange", "channel": l2.json()})
	s.send(map[string]any{"type": "ChannelStateChange", "channel": l1.json()})
	s.send(map[string]any{"type": "Dial", "dialstatus": "ANSWER", "forward": "", "dialstring": dialstring, "peer": l1.json()})
	s.send(map[string]any{"type": "StasisStart", "args": []string{"qproxy", callerID}, "channel": l1.json()})
	if c == nil || qs == nil {
		return
	}
	c.q1, c.q2, c.legsAlive = l1, l2, true
	s.byQ1[q1] = c
	s.send(map[string]any{"type": "ChannelVarset", "variable": "QUEUEWAIT", "value": "", "channel": l2.json()})
	c.queued = true
	qs.waiting = append(qs.waiting, c)
	s.count(func(st *Stats) { st.Waiting++ })
	s.dispatch(qs)
}

// dispatch rings a free agent for the longest-waiting caller nobody rings.
func (s *Sim) dispatch(q *queueState) {
	for _, a := range q.agents {
		if a.busy != nil {
			continue
		}
		var next *caller
		for _, c := range q.waiting {
			if c.agent == nil {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		s.ring(a, next)
	}
	s.setMembers(q)
}

// setMembers keeps QUEUE_MEMBER(q,logged|ready) what app_queue would say.
func (s *Sim) setMembers(q *queueState) {
	ready := 0
	for _, a := range q.agents {
		if a.busy == nil {
			ready++
		}
	}
	s.srv.SetVar("", "QUEUE_MEMBER("+q.cfg.Name+",logged)", strconv.Itoa(len(q.agents)))
	s.srv.SetVar("", "QUEUE_MEMBER("+q.cfg.Name+",ready)", strconv.Itoa(ready))
}

func (s *Sim) ring(a *agent, c *caller) {
	a.busy, c.agent = c, a
	a.leg = leg{id: s.nextID(), name: fmt.Sprintf("PJSIP/agent%d-%08x", a.n, s.seq), state: "Down",
		number: fmt.Sprintf("%d", 200+a.n), context: "agents", exten: "s", created: s.o.Now()}
	ds := fmt.Sprintf("PJSIP/agent%d", a.n)
	s.send(map[string]any{"type": "Dial", "dialstatus": "", "forward": "", "dialstring": ds, "caller": c.q2.json(), "peer": a.leg.json()})
	a.leg.state = "Ringing"
	s.send(map[string]any{"type": "Dial", "dialstatus": "RINGING", "forward": "", "dialstring": ds, "caller": c.q2.json(), "peer": a.leg.json()})
	c.ring = s.after(s.o.RingTime, func() { s.agentAnswers(a, c) })
}

// agentAnswers connects the caller (§6a "AGENT CONNECTED").
func (s *Sim) agentAnswers(a *agent, c *caller) {
	c.ring = nil
	a.leg.state = "Up"
	ds := fmt.Sprintf("PJSIP/agent%d", a.n)
	s.send(map[string]any{"type": "Dial", "dialstatus": "ANSWER", "forward": "", "dialstring": ds, "caller": c.q2.json(), "peer": a.leg.json()})
	wait := int((s.now() - c.arrived).Seconds())
	for _, v := range [][2]string{{"QUEUEPOSITION", "1"}, {"QUEUEWAIT", strconv.Itoa(wait)},
		{"QUEUEWAIT_MS", strconv.Itoa(wait * 1000)}, {"BRIDGEPEER", a.leg.name}} {
		s.send(map[string]any{"type": "ChannelVarset", "variable": v[0], "value": v[1], "channel": c.q2.json()})
	}
	c.answered = true
	s.unqueue(c)
	if c.patience != nil {
		c.patience.dead = true
	}
	s.count(func(st *Stats) { st.Answered++ })
	c.talkEnd = s.after(s.exp(c.q.cfg.HandleTime), func() { s.agentHangsUp(a, c) })
	s.checkDrained()
}

// agentHangsUp ends a served call from the agent's side (§6e); the app
// then hangs the caller up.
func (s *Sim) agentHangsUp(a *agent, c *caller) {
	if c.legsAlive {
		s.send(map[string]any{"type": "ChannelVarset", "variable": "BRIDGEPEER", "value": "", "channel": c.q2.json()})
		s.send(map[string]any{"type": "ChannelHangupRequest", "cause": 16, "soft": true, "channel": c.q2.json()})
		s.send(map[string]any{"type": "ChannelHangupRequest", "cause": 16, "channel": c.q1.json()})
		s.send(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": c.q2.json()})
		s.destroyLegs(c, false)
	}
	s.freeAgent(a)
	s.count(func(st *Stats) { st.Completed++ })
	s.dispatch(c.q)
}

func (s *Sim) freeAgent(a *agent) {
	if a.busy != nil {
		a.busy.agent = nil
	}
	a.busy = nil
}

// destroyLegs ends both Local halves: ;1 leaves the bridge and Stasis.
func (s *Sim) destroyLegs(c *caller, appHangup bool) {
	c.legsAlive = false
	delete(s.byQ1, c.q1.id)
	if b := s.bridgeJSON("br-" + c.leg.id); b != nil {
		s.send(map[string]any{"type": "ChannelLeftBridge", "bridge": b, "channel": c.q1.json()})
	}
	s.send(map[string]any{"type": "StasisEnd", "channel": c.q1.json()})
	if appHangup {
		s.send(map[string]any{"type": "ChannelHangupRequest", "cause": 16, "channel": c.q2.json()})
		if a := c.agent; a != nil && c.ring != nil {
			c.ring.dead, c.ring = true, nil
			s.send(map[string]any{"type": "Dial", "dialstatus": "CANCEL", "forward": "", "dialstring": "", "caller": c.q2.json(), "peer": a.leg.json()})
			s.freeAgent(a)
		}
		wait := strconv.Itoa(int((s.now() - c.arrived).Seconds()))
		s.send(map[string]any{"type": "ChannelVarset", "variable": "QUEUEWAIT", "value": wait, "channel": c.q2.json()})
		if !c.answered && !c.exited {
			s.send(map[string]any{"type": "ChannelVarset", "variable": "ABANDONED", "value": "TRUE", "channel": c.q2.json()})
		}
	}
	s.send(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": c.q1.json()})
	if appHangup {
		s.send(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing", "channel": c.q2.json()})
	}
	s.unqueue(c)
}

func (s *Sim) unqueue(c *caller) {
	if !c.queued {
		return
	}
	c.queued = false
	for i, w := range c.q.waiting {
		if w == c {
			c.q.waiting = append(c.q.waiting[:i], c.q.waiting[i+1:]...)
			break
		}
	}
	s.count(func(st *Stats) { st.Waiting-- })
}

// callerHangsUp is the caller's patience running out (§7).
func (s *Sim) callerHangsUp(c *caller) {
	if c.gone || c.answered {
		return
	}
	s.send(map[string]any{"type": "ChannelHangupRequest", "channel": c.leg.json()})
	s.leave(c)
	s.count(func(st *Stats) { st.Abandoned++ })
	// The app sees StasisEnd only; the channel itself is gone from the
	// switch (no ChannelDestroyed reaches the app after StasisEnd, §4).
	s.srv.Default(s.ctx, aritest.Call{Method: http.MethodDelete, RawPath: "/channels/" + c.leg.id})
	s.checkDrained()
}

// leave takes the caller out of the bridge and the application.
func (s *Sim) leave(c *caller) {
	c.gone = true
	if c.patience != nil {
		c.patience.dead = true
	}
	for id, p := range s.playbacks {
		if p.c == c {
			p.t.dead = true
			delete(s.playbacks, id)
		}
	}
	if c.bridged != "" {
		if b := s.bridgeJSON(c.bridged); b != nil {
			s.send(map[string]any{"type": "ChannelLeftBridge", "bridge": b, "channel": c.leg.json()})
		}
	}
	s.send(map[string]any{"type": "StasisEnd", "channel": c.leg.json()})
	delete(s.callers, c.leg.id)
	s.count(func(st *Stats) { st.Active-- })
}

// exitedWithKey follows POST /channels/{id}/dtmf of the queue exit key
// into a waiting caller's ;1 half: as configs/asterisk does (queues.conf
// context=queue-exit), Queue() lets the caller go with EXITWITHKEY and
// both halves end, without the ABANDONED a hang-up sets.
func (s *Sim) exitedWithKey(id, digits string) {
	c := s.byQ1[id]
	if c == nil || !c.legsAlive || c.answered || digits != "D" {
		return
	}
	c.exited = true
	s.destroyLegs(c, true)
	s.dispatch(c.q)
}

// hungUpByApp follows DELETE /channels/{id}: the caller released (§4), or
// the queue half cancelled (§6b).
func (s *Sim) hungUpByApp(id string) {
	if c := s.callers[id]; c != nil && !c.gone {
		s.send(map[string]any{"type": "ChannelHangupRequest", "cause": 32, "soft": true, "channel": c.leg.json()})
		if !c.answered {
			s.count(func(st *Stats) { st.Released++ })
		}
		s.leave(c)
		s.checkDrained()
		return
	}
	if c := s.byQ1[id]; c != nil && c.legsAlive {
		s.send(map[string]any{"type": "ChannelHangupRequest", "cause": 32, "soft": true, "channel": c.q1.json()})
		a := c.agent
		talking := c.answered && a != nil && c.ring == nil
		s.destroyLegs(c, true)
		if talking {
			if c.talkEnd != nil {
				c.talkEnd.dead = true
			}
			s.freeAgent(a)
			s.count(func(st *Stats) { st.Completed++ })
		}
		s.dispatch(c.q)
	}
}

func (s *Sim) checkDrained() {
	if s.arriving {
		return
	}
	for _, c := range s.callers {
		if !c.answered {
			return
		}
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}

// playStarted follows POST /channels/{id}/play: PlaybackStarted now,
// PlaybackFinished when the prompt ends, and after the offer the caller's
// key, if any (§4, §5).
func (s *Sim) playStarted(chID string, pb map[string]any) {
	c := s.callers[chID]
	if c == nil || c.gone {
		return
	}
	id, _ := pb["id"].(string)
	media, _ := pb["media_uri"].(string)
	pb["state"] = "playing"
	s.send(map[string]any{"type": "PlaybackStarted", "playback": pb})
	length := 3 * time.Second
	offer := media == s.o.OfferPrompt
	if offer {
		length = 6 * time.Second
	}
	s.playbacks[id] = &playback{c: c, t: s.after(length, func() {
		delete(s.playbacks, id)
		done := map[string]any{}
		for k, v := range pb {
			done[k] = v
		}
		done["state"] = "done"
		s.send(map[string]any{"type": "PlaybackFinished", "playback": done})
		if offer && !c.gone {
			s.heardOffer(c)
		}
	})}
}

// playback is a prompt playing to a caller.
type playback struct {
	c *caller
	t *timer
}

func (s *Sim) heardOffer(c *caller) {
	s.count(func(st *Stats) { st.Offers++ })
	r := s.rng.Float64()
	var digit string
	switch {
	case r < s.o.AcceptRate:
		digit = "1"
	case r < s.o.AcceptRate+s.o.DeclineRate:
		digit = "2"
	default:
		return
	}
	think := 500*time.Millisecond + time.Duration(s.rng.Float64()*float64(2*time.Second))
	s.after(think, func() {
		if c.gone {
			return
		}
		s.count(func(st *Stats) {
			if digit == "1" {
				st.Pressed1++
			} else {
				st.Pressed2++
			}
		})
		s.send(map[string]any{"type": "ChannelDtmfReceived", "digit": digit, "duration_ms": 160, "channel": c.leg.json()})
	})
}

func (s *Sim) playStopped(id string) {
	p := s.playbacks[id]
	if p == nil {
		return
	}
	p.t.dead = true
	delete(s.playbacks, id)
	s.send(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{"id": id, "state": "done"}})
}

// timer is one scheduled step of the simulation, at a simulated time.
type timer struct {
	at   time.Duration
	seq  int
	f    func()
	dead bool
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
