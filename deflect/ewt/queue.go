package ewt

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Options configure a Queue. Zero values take the defaults named on each
// field.
type Options struct {
	// DefaultHandle is the mean handle time assumed until the first talk
	// time is reported. Default 3 minutes.
	DefaultHandle time.Duration
	// Wrapup is added to every reported talk time, so the handle time
	// includes the after-call work during which app_queue does not offer the
	// agent a call (queues.conf wrapuptime). Default 0.
	Wrapup time.Duration
	// HandleWindow is how many of the most recent talk times are averaged.
	// Default 50.
	HandleWindow int
	// DefaultPatience is the mean time a caller waits before hanging up (1/θ)
	// assumed until MinAbandonSamples waits have been seen. Default 5
	// minutes.
	DefaultPatience time.Duration
	// AbandonWindow is how many of the most recent finished waits θ is
	// estimated from. Default 200.
	AbandonWindow int
	// MinAbandonSamples is how many finished waits (of any outcome, longer
	// than zero) the window must hold before θ is estimated from them rather
	// than taken from DefaultPatience. Default 20; at most AbandonWindow.
	MinAbandonSamples int
}

func (o *Options) setDefaults() error {
	if o.DefaultHandle < 0 || o.Wrapup < 0 || o.DefaultPatience < 0 ||
		o.HandleWindow < 0 || o.AbandonWindow < 0 || o.MinAbandonSamples < 0 {
		return errors.New("ewt: Options must not be negative")
	}
	if o.DefaultHandle == 0 {
		o.DefaultHandle = 3 * time.Minute
	}
	if o.HandleWindow == 0 {
		o.HandleWindow = 50
	}
	if o.DefaultPatience == 0 {
		o.DefaultPatience = 5 * time.Minute
	}
	if o.AbandonWindow == 0 {
		o.AbandonWindow = 200
	}
	if o.MinAbandonSamples == 0 {
		o.MinAbandonSamples = min(20, o.AbandonWindow)
	}
	if o.MinAbandonSamples > o.AbandonWindow {
		return fmt.Errorf("ewt: Options.MinAbandonSamples (%d) above AbandonWindow (%d) would never be reached",
			o.MinAbandonSamples, o.AbandonWindow)
	}
	return nil
}

// Estimate is what a Queue knows about one caller's wait, with the inputs it
// was computed from, so a decision can be explained.
type Estimate struct {
	// QL is the expected remaining wait by the queue-length estimator (see
	// QL); meaningful only when QLOk.
	QL time.Duration
	// QLOk is false when QL is unknown: no agent logged in, or agents never
	// reported.
	QLOk bool
	// EWMA is the hold time app_queue would announce to this caller now
	// (see Announce), in whole minutes; for comparison only.
	EWMA time.Duration
	// Position is the caller's place in line, 1 for the next to be served;
	// 0 when the caller is not waiting in this queue.
	Position int
	// Ahead is the number of callers in line before this one.
	Ahead int
	// Hold is app_queue's EWMA hold time of the queue (see EWMA).
	Hold time.Duration
	// Handle is the mean handle time (1/μ) QL used.
	Handle time.Duration
	// AbandonRate is θ, per second, QL used.
	AbandonRate float64
}

// Queue tracks one Asterisk queue and estimates the wait of each caller in
// it. It is safe for concurrent use: the engine feeds events from its own
// goroutine while a metrics scrape reads Joining.
//
// Callers are ordered by the entry time given to Entered, not by the order of
// the calls, so calls adopted after a restart with their stored entry times
// take their real places. This is app_queue's order for callers of one
// priority.
type Queue struct {
	opts Options

	mu      sync.Mutex
	seq     uint64
	waiting []*waiter // by (entered, seq)
	byID    map[string]*waiter
	talking map[string]time.Time // answered, not yet completed: answer time

	logged, free int

	hold time.Duration // app_queue's EWMA

	handles   ring[time.Duration]
	handleSum time.Duration

	waits    ring[waitSample]
	exposure time.Duration // total wait in waits
	abandons int           // abandons in waits
}

type waiter struct {
	id      string
	entered time.Time
	seq     uint64
}

type waitSample struct {
	wait      time.Duration
	abandoned bool
}

// maxTalking bounds the calls remembered between Answered and Completed; past
// it, calls answered more than staleTalk ago are forgotten (their Completed
// was lost).
const (
	maxTalking = 1024
	staleTalk  = 12 * time.Hour
)

// NewQueue validates opts and returns an empty Queue with no agents known.
func NewQueue(opts Options) (*Queue, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Queue{
		opts:    opts,
		byID:    make(map[string]*waiter),
		talking: make(map[string]time.Time),
		handles: newRing[time.Duration](opts.HandleWindow),
		waits:   newRing[waitSample](opts.AbandonWindow),
	}, nil
}

// Entered records that callID joined the line at now. A call already waiting
// keeps its first entry time.
func (q *Queue) Entered(callID string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.byID[callID]; ok {
		return
	}
	q.seq++
	w := &waiter{id: callID, entered: now, seq: q.seq}
	i, _ := slices.BinarySearchFunc(q.waiting, w, compareWaiters)
	q.waiting = slices.Insert(q.waiting, i, w)
	q.byID[callID] = w
}

// Answered records that an agent took callID at now. Its wait updates
// app_queue's EWMA and counts, without an abandon, towards θ. Calls not
// waiting are ignored.
func (q *Queue) Answered(callID string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait, ok := q.remove(callID, now)
	if !ok {
		return
	}
	q.hold = EWMA(q.hold, wait)
	q.observeWait(wait, false)
	if len(q.talking) >= maxTalking {
		for id, at := range q.talking {
			if now.Sub(at) > staleTalk {
				delete(q.talking, id)
			}
		}
	}
	q.talking[callID] = now
}

// Abandoned records that callID hung up while waiting, at now. Calls not
// waiting are ignored.
func (q *Queue) Abandoned(callID string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if wait, ok := q.remove(callID, now); ok {
		q.observeWait(wait, true)
	}
}

// Left records that callID left the line at now for a reason that is neither
// an agent nor a hang-up: deflected to WhatsApp, a key press, the queue's
// timeout. Its wait counts towards θ without an abandon (the caller had not
// run out of patience). Calls not waiting are ignored.
func (q *Queue) Left(callID string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if wait, ok := q.remove(callID, now); ok {
		q.observeWait(wait, false)
	}
}

// Completed records the talk time of a call this Queue saw answered; its
// handle time is talk plus Options.Wrapup. A second report of the same call,
// or a call not seen answered (answered before a restart, or in another
// queue), is ignored.
func (q *Queue) Completed(callID string, talk time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.talking[callID]; !ok {
		return
	}
	delete(q.talking, callID)
	h := max(talk, 0) + q.opts.Wrapup
	if h <= 0 {
		return
	}
	if old, evicted := q.handles.push(h); evicted {
		q.handleSum -= old
	}
	q.handleSum += h
}

// SetAgents records the agents logged in to the queue and, of those, the
// ones free to take a call now: QUEUE_MEMBER(<q>,logged) and
// QUEUE_MEMBER(<q>,ready) (not "free", which also counts agents still in
// wrap-up). logged is s in QL; each free agent is counted as about to take one
// caller from the head of the line. Pass free 0 when it is not known: the
// estimate then assumes every agent busy, the cautious side for an offer.
func (q *Queue) SetAgents(logged, free int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.logged = max(logged, 0)
	q.free = min(max(free, 0), q.logged)
}

// Len returns the number of callers waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// Position returns callID's place in line, 1 for the next to be served, or 0
// when it is not waiting.
func (q *Queue) Position(callID string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.byID[callID]
	if !ok {
		return 0
	}
	return q.index(w) + 1
}

// Estimate returns callID's expected remaining wait at now. A call not
// waiting gets the zero Estimate (Position 0, QLOk false).
func (q *Queue) Estimate(callID string, now time.Time) Estimate {
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.byID[callID]
	if !ok {
		return Estimate{}
	}
	return q.estimate(q.index(w), now.Sub(w.entered))
}

// Joining returns the estimate for a caller who would join the line now,
// behind everyone waiting: the queue's EWT, as a metric would show it.
func (q *Queue) Joining() Estimate {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.estimate(len(q.waiting), 0)
}

func (q *Queue) estimate(ahead int, elapsed time.Duration) Estimate {
	e := Estimate{
		Position:    ahead + 1,
		Ahead:       ahead,
		EWMA:        Announce(q.hold, elapsed),
		Hold:        q.hold,
		Handle:      q.handle(),
		AbandonRate: q.abandonRate(),
	}
	if n := ahead - q.free; n < 0 && q.logged > 0 {
		e.QL, e.QLOk = 0, true // a free agent is about to take this caller
	} else {
		e.QL, e.QLOk = QL(n, q.logged, e.Handle, e.AbandonRate)
	}
	return e
}

// handle returns 1/μ: the mean of the recent handle times, or the default.
func (q *Queue) handle() time.Duration {
	if q.handles.len() == 0 {
		return q.opts.DefaultHandle
	}
	return q.handleSum / time.Duration(q.handles.len())
}

// abandonRate returns θ per second: the maximum-likelihood estimate for
// exponential patience from the recent waits (abandons over total waiting
// time), or the default while there are too few.
func (q *Queue) abandonRate() float64 {
	if q.waits.len() < q.opts.MinAbandonSamples || q.exposure <= 0 {
		return 1 / q.opts.DefaultPatience.Seconds()
	}
	return float64(q.abandons) / q.exposure.Seconds()
}

// observeWait adds a finished wait to the θ window. A zero wait says nothing
// about patience and would only push informative waits out of the window.
func (q *Queue) observeWait(wait time.Duration, abandoned bool) {
	if wait <= 0 {
		return
	}
	if old, evicted := q.waits.push(waitSample{wait, abandoned}); evicted {
		q.exposure -= old.wait
		if old.abandoned {
			q.abandons--
		}
	}
	q.exposure += wait
	if abandoned {
		q.abandons++
	}
}

// remove takes callID out of the line and returns how long it waited.
func (q *Queue) remove(callID string, now time.Time) (time.Duration, bool) {
	w, ok := q.byID[callID]
	if !ok {
		return 0, false
	}
	q.waiting = slices.Delete(q.waiting, q.index(w), q.index(w)+1)
	delete(q.byID, callID)
	return max(now.Sub(w.entered), 0), true
}

// index returns w's index in q.waiting, which must hold it.
func (q *Queue) index(w *waiter) int {
	i, _ := slices.BinarySearchFunc(q.waiting, w, compareWaiters)
	return i
}

func compareWaiters(a, b *waiter) int {
	if c := a.entered.Compare(b.entered); c != 0 {
		return c
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// ring keeps the last cap values pushed.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

// push adds v and returns the value it evicted, if the ring was full.
func (r *ring[T]) push(v T) (old T, evicted bool) {
	old, evicted = r.buf[r.next], r.full
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	return old, evicted
}

func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}
