package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/deflectd/deflectd/internal/retry"
	"go.uber.org/zap"
)

// ConnState is the state of the event websocket.
type ConnState int

// Connection states, as State reports them.
const (
	// StateIdle: Run has not been called.
	StateIdle ConnState = iota
	// StateConnecting: Run is trying to (re)connect.
	StateConnecting
	// StateConnected: events are flowing.
	StateConnected
	// StateStopped: Run returned.
	StateStopped
)

func (s ConnState) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// State returns the connection state now. The event stream tells the same
// story in order (Connected, Disconnected); State is for health checks.
func (c *Client) State() ConnState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Client) setState(s ConnState) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	if s == StateConnected {
		c.metrics.connected.Set(1)
	} else {
		c.metrics.connected.Set(0)
	}
}

// Backlog returns how many events were received and not yet read by Next.
func (c *Client) Backlog() int { return c.queue.len() }

// Next returns the next event, waiting until one arrives or ctx ends. Events
// come in the order Asterisk sent them, with Connected and Disconnected in
// their place. Once Run has returned and the backlog is read, Next returns
// Run's error (ErrApplicationReplaced) or ErrClosed. One goroutine should
// call Next; it may route events onward with ChannelIDs.
func (c *Client) Next(ctx context.Context) (Event, error) {
	it, n, err := c.queue.pop(ctx)
	if err != nil {
		return nil, err
	}
	c.metrics.backlog.Set(float64(n))
	if it.ev != nil {
		return it.ev, nil
	}
	ev, err := DecodeEvent(it.raw)
	if err != nil {
		// Not an event at all: deliver it raw rather than lose it.
		c.metrics.decodeErrors.Inc()
		return &RawEvent{Raw: it.raw, Err: err}, nil
	}
	if raw, ok := ev.(*RawEvent); ok && raw.Err != nil {
		c.metrics.decodeErrors.Inc()
	}
	return ev, nil
}

// Run connects the event websocket and keeps it connected until ctx ends,
// reconnecting with backoff. It returns nil when ctx ends,
// ErrApplicationReplaced when another connection took the application, and
// an *Error when Asterisk refuses the credentials or the application (401,
// 403, 400), which retrying cannot fix. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("ari: Run called twice")
	}
	c.running = true
	c.mu.Unlock()

	err := c.run(ctx)
	c.setState(StateStopped)
	closeErr := err
	if closeErr == nil {
		closeErr = ErrClosed
	}
	c.queue.close(closeErr)
	return err
}

func (c *Client) run(ctx context.Context) error {
	var (
		attempt   int       // failed attempts since the last stable connection
		connected bool      // a connection was made before
		downSince time.Time // when the last connection was lost
	)
	for {
		c.setState(StateConnecting)
		conn, err := c.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if permanent(err, connected) {
				c.log.Error("ARI refused the event connection; not retrying", zap.Error(err))
				return err
			}
			c.metrics.connectFailures.Inc()
			delay := retry.Delay(attempt, c.opts.MinBackoff, c.opts.MaxBackoff, rand.Float64())
			attempt++
			c.log.Warn("ARI event connection failed", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry_in", delay))
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}

		up := time.Now()
		ev := &Connected{EventHeader: c.header(TypeConnected, up), Reconnect: connected}
		if connected {
			ev.Gap = up.Sub(downSince)
			c.metrics.connects.WithLabelValues("reconnect").Inc()
			c.log.Info("ARI event connection restored; events of the gap are lost, resync", zap.Duration("gap", ev.Gap))
		} else {
			c.metrics.connects.WithLabelValues("first").Inc()
			c.log.Info("ARI event connection established", zap.String("app", c.opts.Application))
		}
		connected = true
		c.setState(StateConnected)
		c.queue.push(item{ev: ev})

		err = c.serve(ctx, conn)
		downSince = time.Now()
		reason := disconnectReason(ctx, err)
		c.metrics.disconnects.WithLabelValues(reason).Inc()
		if reason == reasonShutdown {
			c.queue.push(item{ev: &Disconnected{EventHeader: c.header(TypeDisconnected, downSince), Err: context.Cause(ctx)}})
			return nil
		}
		c.queue.push(item{ev: &Disconnected{EventHeader: c.header(TypeDisconnected, downSince), Err: err}})
		if errors.Is(err, ErrApplicationReplaced) {
			c.log.Error("ARI application taken by another connection; stopping", zap.String("app", c.opts.Application))
			return err
		}
		c.log.Warn("ARI event connection lost", zap.String("reason", reason), zap.Error(err))
		// A connection that lived long enough resets the backoff; one that
		// dies at once keeps backing off, so a flapping server is not
		// hammered.
		if downSince.Sub(up) >= c.opts.MaxBackoff {
			attempt = 0
		}
		delay := retry.Delay(attempt, c.opts.MinBackoff, c.opts.MaxBackoff, rand.Float64())
		attempt++
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (c *Client) header(typ string, t time.Time) EventHeader {
	return EventHeader{Type: typ, Application: c.opts.Application, Timestamp: Time{t}}
}

func disconnectReason(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return reasonShutdown
	case errors.Is(err, ErrApplicationReplaced):
		return reasonReplaced
	case errors.Is(err, ErrSlowConsumer):
		return reasonSlowConsumer
	case errors.Is(err, errPingTimeout):
		return reasonPingTimeout
	}
	return reasonClosed
}

var errPingTimeout = errors.New("ari: no pong from Asterisk in time")

// eventsURL is the websocket URL of the event stream.
func (c *Client) eventsURL() string {
	u, _ := url.Parse(c.base) // validated in New
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/events"
	q := url.Values{}
	q.Set("app", c.opts.Application)
	q.Set("subscribeAll", fmt.Sprint(c.opts.SubscribeAll))
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	h := http.Header{}
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(c.opts.Username, c.opts.Password)
	h.Set("Authorization", req.Header.Get("Authorization"))
	conn, resp, err := websocket.Dial(ctx, c.eventsURL(), &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: h,
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			e := &Error{Op: "events", Method: http.MethodGet, Path: "/events", StatusCode: resp.StatusCode}
			if resp.Body != nil {
				var msg struct {
					Message string `json:"message"`
				}
				if b, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096)); rerr == nil && json.Unmarshal(b, &msg) == nil {
					e.Message = msg.Message
				}
			}
			return nil, e
		}
		return nil, fmt.Errorf("ari: connecting events websocket: %w", err)
	}
	// Channel snapshots with many variables exceed the library's 32 KiB
	// default; 16 MiB still bounds a broken server.
	conn.SetReadLimit(16 << 20)
	return conn, nil
}

// permanent reports whether a dial error cannot be fixed by retrying.
//
// A 404 is permanent only until the first connection: then it means a
// wrong ari.url, which retrying cannot fix. Once connected, it is an
// Asterisk restarting: its HTTP server answers before res_ari is loaded,
// for a second or two, and the client must wait that out rather than
// stop the bridge (the chaos suite's Asterisk restart found this).
func permanent(err error, connected bool) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusNotFound:
		return !connected
	}
	return false
}

// serve reads events until the connection fails, ctx ends, or the
// application is replaced. The read loop does nothing that can wait on the
// consumer: it appends to the queue and reads again.
func (c *Client) serve(ctx context.Context, conn *websocket.Conn) error {
	// Reads do not use ctx: coder/websocket drops the connection without a
	// close handshake when a Read's context ends, and Asterisk logs that as
	// an abrupt close. On shutdown the watcher below closes properly, and
	// the Read returns once Asterisk answers the close. Only a ping timeout
	// cancels reads.
	readCtx, cancelRead := context.WithCancelCause(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		cancelRead(nil)
		conn.CloseNow()
		wg.Wait()
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.pingLoop(readCtx, conn, cancelRead)
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "client shutting down")
		case <-readCtx.Done():
		}
	}()

	slow := false // inside a slow-consumer episode
	for {
		typ, data, err := conn.Read(readCtx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the watcher above closed properly
			}
			if cause := context.Cause(readCtx); cause != nil {
				return cause
			}
			return fmt.Errorf("ari: reading events: %w", err)
		}
		if typ != websocket.MessageText {
			continue // Asterisk sends text only; a binary frame carries no event
		}
		evType, ok := peekType(data)
		if !ok {
			// Find the type the slow way. A frame without one still goes
			// to the consumer, raw.
			var h struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(data, &h)
			evType = h.Type
		}
		c.metrics.events.WithLabelValues(eventLabel(evType)).Inc()
		c.metrics.lastEventSeconds.SetToCurrentTime()
		n := c.queue.push(item{raw: data})
		c.metrics.backlog.Set(float64(n))

		if evType == TypeApplicationReplaced {
			conn.Close(websocket.StatusNormalClosure, "application replaced")
			return ErrApplicationReplaced
		}
		switch {
		case n >= c.opts.MaxBacklog:
			c.log.Error("ARI consumer too slow; closing the event connection, resync follows",
				zap.Int("backlog", n), zap.Int("max_backlog", c.opts.MaxBacklog))
			conn.Close(websocket.StatusTryAgainLater, "consumer too slow")
			return ErrSlowConsumer
		case n >= c.opts.SlowConsumerBacklog && !slow:
			slow = true
			c.metrics.slowConsumer.Inc()
			c.log.Warn("ARI consumer is slow; events are queuing",
				zap.Int("backlog", n), zap.Int("max_backlog", c.opts.MaxBacklog))
		case n < c.opts.SlowConsumerBacklog/2:
			slow = false
		}
	}
}

// pingLoop pings Asterisk every PingInterval; a ping without a pong in
// PongTimeout cancels the connection with errPingTimeout.
func (c *Client) pingLoop(ctx context.Context, conn *websocket.Conn, cancel context.CancelCauseFunc) {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, c.opts.PongTimeout)
		err := conn.Ping(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil {
			cancel(errPingTimeout)
			return
		}
	}
}
