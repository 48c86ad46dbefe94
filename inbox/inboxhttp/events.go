package inboxhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/internal/retry"
)

// broker reads the inbox's live stream once per instance and fans it out
// to the instance's SSE clients, keeping the most recent events so that a
// client reconnecting with Last-Event-ID is replayed from memory.
type broker struct {
	x   *inbox.Inbox
	log *zap.Logger

	mu    sync.Mutex
	buf   []inbox.Event
	last  string
	subs  map[*subscriber]struct{}
	ready chan struct{}
	// done is closed when run returns: the instance is stopping, and its
	// streams end so that the HTTP server can shut down.
	done    chan struct{}
	stopped bool
}

// bufSize is how many recent events a broker keeps for replays.
const bufSize = 4096

// subBuffer is how far a client may fall behind before it is cut off (it
// reconnects with Last-Event-ID and is replayed).
const subBuffer = 512

type subscriber struct {
	ch chan inbox.Event
}

func newBroker(x *inbox.Inbox, log *zap.Logger) *broker {
	return &broker{x: x, log: log, subs: map[*subscriber]struct{}{}, ready: make(chan struct{}), done: make(chan struct{})}
}

// errStopped: the instance is shutting down; the client reconnects, to
// another instance or to this one restarted.
var errStopped = errors.New("inboxhttp: the event stream is stopping")

func (b *broker) run(ctx context.Context) error {
	defer b.stop()
	for attempt := 0; ; attempt++ {
		id, err := b.x.LastEventID(ctx)
		if err == nil {
			b.mu.Lock()
			b.last = id
			b.mu.Unlock()
			close(b.ready)
			break
		}
		if attempt == 0 {
			b.log.Error("inboxhttp: reading the event stream; retrying", zap.Error(err))
		}
		if !retry.Sleep(ctx, retry.Delay(attempt, 100*time.Millisecond, 5*time.Second, 0.5)) {
			return nil
		}
	}
	failures := 0
	for ctx.Err() == nil {
		b.mu.Lock()
		last := b.last
		b.mu.Unlock()
		evs, err := b.x.Events(ctx, last, 2*time.Second)
		switch {
		case errors.Is(err, inbox.ErrEventsLost):
			// This instance fell further behind than the stream keeps:
			// every client reloads.
			b.log.Warn("inboxhttp: the event stream was trimmed past this instance; clients reload")
			id, _ := b.x.LastEventID(ctx)
			b.mu.Lock()
			b.last, b.buf = id, nil
			for s := range b.subs {
				delete(b.subs, s)
				close(s.ch)
			}
			b.mu.Unlock()
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			failures++
			if failures == 1 {
				b.log.Error("inboxhttp: reading the event stream; retrying", zap.Error(err))
			}
			retry.Sleep(ctx, retry.Delay(failures-1, 100*time.Millisecond, 5*time.Second, 0.5))
			continue
		}
		failures = 0
		if len(evs) == 0 {
			continue
		}
		b.mu.Lock()
		b.last = evs[len(evs)-1].ID
		b.buf = append(b.buf, evs...)
		if len(b.buf) > bufSize {
			b.buf = append([]inbox.Event(nil), b.buf[len(b.buf)-bufSize:]...)
		}
		for s := range b.subs {
			for _, e := range evs {
				select {
				case s.ch <- e:
				default:
					delete(b.subs, s)
					close(s.ch)
				}
				if _, ok := b.subs[s]; !ok {
					break
				}
			}
		}
		b.mu.Unlock()
	}
	return nil
}

// stop ends every client's stream and refuses new ones.
func (b *broker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
	close(b.done)
}

// subscribe registers a client that has seen the events up to after ("":
// none, start now), and returns what it missed. It returns
// inbox.ErrEventsLost when those events are gone.
func (b *broker) subscribe(ctx context.Context, after string) (string, []inbox.Event, *subscriber, error) {
	select {
	case <-b.ready:
	case <-b.done:
		return "", nil, nil, errStopped
	case <-ctx.Done():
		return "", nil, nil, ctx.Err()
	}
	s := &subscriber{ch: make(chan inbox.Event, subBuffer)}
	var backlog []inbox.Event
	b.mu.Lock()
	inBuf := after == "" || after == b.last || (len(b.buf) > 0 && !idLess(after, b.buf[0].ID))
	b.mu.Unlock()
	if !inBuf {
		// Older than memory: read the stream itself.
		for {
			evs, err := b.x.Events(ctx, after, -1)
			if err != nil {
				return "", nil, nil, err
			}
			if len(evs) == 0 {
				break
			}
			backlog = append(backlog, evs...)
			after = evs[len(evs)-1].ID
			if len(backlog) > 20000 {
				return "", nil, nil, inbox.ErrEventsLost
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return "", nil, nil, errStopped
	}
	if after == "" {
		after = b.last
	} else {
		for _, e := range b.buf {
			if idLess(after, e.ID) {
				backlog = append(backlog, e)
			}
		}
	}
	b.subs[s] = struct{}{}
	return after, backlog, s, nil
}

func (b *broker) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

func idLess(a, b string) bool {
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	return am < bm || am == bm && as < bs
}

// sessionLive reports whether the request's session still exists. A
// store that cannot be reached keeps the stream: the next ping asks again.
func (s *Server) sessionLive(ctx context.Context, r *http.Request) bool {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	_, err = s.sess.get(ctx, c.Value)
	return !errors.Is(err, errNoSession)
}

// pingEvery is how often an idle stream is pinged; pageLapse how long a
// user counts as having the page open after its last ping: three missed
// pings.
const (
	pingEvery = 15 * time.Second
	pageLapse = 3 * pingEvery
)

// events serves the live stream as Server-Sent Events. A client sends
// Last-Event-ID (or ?last_event_id=) to resume; it gets "reset" when the
// events it missed are gone and must reload. The first event of a fresh
// connection is "hello", carrying the id to resume from.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p principal) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "", "streaming is not supported here")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last != "" && !validID(last) {
		writeError(w, http.StatusBadRequest, "invalid", "Last-Event-ID", "want an event id from this stream")
		return
	}
	ctx := r.Context()
	start, backlog, sub, err := s.broker.subscribe(ctx, last)
	reset := errors.Is(err, inbox.ErrEventsLost)
	if reset {
		start, backlog, sub, err = s.broker.subscribe(ctx, "")
	}
	if err != nil {
		s.fail(w, r, &inbox.Error{Kind: inbox.ErrUnavailable, Code: "unavailable", Message: "the event stream cannot be read", Err: err})
		return
	}
	defer s.broker.unsubscribe(sub)
	// A stream lasts: instead of the server's write timeout, each write
	// gets two ping intervals, so that a client that stopped reading is
	// cut off rather than holding the handler. A server without deadlines
	// has nothing to set, hence no error check.
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * pingEvery)) }
	extend()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	sent := start
	if last != "" && !reset {
		sent = last
	}
	write := func(typ, id string, v any) bool {
		extend()
		data, _ := json.Marshal(v)
		if id != "" {
			fmt.Fprintf(w, "id: %s\n", id)
		}
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
		return err == nil
	}
	switch {
	case reset:
		write("reset", start, map[string]any{"last_event_id": start, "reason": "events were missed: reload"})
	case last == "":
		write("hello", start, map[string]any{"last_event_id": start, "user": p.user.ID})
	}
	for _, e := range backlog {
		if idLess(sent, e.ID) && inbox.Visible(p.user, e) {
			write(e.Type, e.ID, e)
		}
		sent = maxID(sent, e.ID)
	}
	fl.Flush()
	// A signed-in browser's stream says its user has the page open; when
	// the last one has been gone for a while, the inbox sets them
	// offline. A token's client (an integration) sets its own.
	beat := func() {
		if p.sess == nil {
			return
		}
		if err := s.x.Heartbeat(ctx, p.user.ID, s.opts.Now().Add(pageLapse)); err != nil && ctx.Err() == nil {
			s.log.Warn("inboxhttp: the page's heartbeat", zap.Error(err))
		}
	}
	beat()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			// A stream lives no longer than its session: after a
			// logout or an expiry it ends, and the browser signs in.
			if p.sess != nil && !s.sessionLive(ctx, r) {
				return
			}
			extend()
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
			beat()
		case e, ok := <-sub.ch:
			if !ok {
				// Cut off (too slow, the stream was trimmed, or this
				// instance is stopping): the client reconnects with
				// Last-Event-ID.
				return
			}
			if !idLess(sent, e.ID) {
				continue
			}
			sent = e.ID
			if inbox.Visible(p.user, e) && !write(e.Type, e.ID, e) {
				return
			}
			fl.Flush()
		}
	}
}

func maxID(a, b string) string {
	if idLess(a, b) {
		return b
	}
	return a
}

func validID(s string) bool {
	if len(s) > 40 {
		return false
	}
	var ms, seq uint64
	n, err := fmt.Sscanf(s, "%d-%d", &ms, &seq)
	return err == nil && n == 2 && fmt.Sprintf("%d-%d", ms, seq) == s
}
