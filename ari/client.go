package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options configures a Client. URL, Username, Password and Application are
// required; every other field has a default.
type Options struct {
	// URL is the ARI base URL, e.g. http://127.0.0.1:8088/ari. The event
	// websocket is derived from it (ws://…/ari/events, wss for https).
	URL string
	// Username and Password are an ARI user of ari.conf.
	Username, Password string
	// Application is the Stasis application name the dialplan uses, as in
	// Stasis(deflect,...).
	Application string
	// SubscribeAll asks Asterisk for the events of every channel and
	// bridge, not only those in or subscribed to the application.
	SubscribeAll bool

	// RequestTimeout bounds each REST call unless the caller's context
	// ends sooner. Default 5 s.
	RequestTimeout time.Duration
	// DialTimeout bounds opening the websocket. Default 10 s.
	DialTimeout time.Duration
	// PingInterval is how often the client pings Asterisk, which sends no
	// pings of its own; PongTimeout is how long it waits for the pong
	// before it declares the connection dead. Defaults 10 s and 5 s.
	PingInterval, PongTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between reconnect attempts,
	// which doubles per failed attempt with jitter. Defaults 250 ms, 30 s.
	MinBackoff, MaxBackoff time.Duration
	// SlowConsumerBacklog is the backlog of unread events past which the
	// consumer is reported slow (metric and log). Default 1,000.
	SlowConsumerBacklog int
	// MaxBacklog is the backlog past which the client closes the websocket
	// with ErrSlowConsumer instead of growing further. Default 100,000.
	MaxBacklog int

	// HTTPClient sends REST requests and opens the websocket. Default: a
	// client of its own, without a global timeout (RequestTimeout applies),
	// with at most MaxConnections connections to Asterisk.
	HTTPClient *http.Client
	// MaxConnections bounds the HTTP connections of the default client:
	// Asterisk refuses sessions past http.conf's sessionlimit (100 by
	// default, the event websocket included), so a burst of calls must
	// queue its requests here rather than fail there. Default 32.
	MaxConnections int
	// Logger receives the client's logs. Default: none.
	Logger *zap.Logger
	// Registerer receives the client's metrics. Default: a private registry.
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() error {
	if o.URL == "" || o.Application == "" || o.Username == "" {
		return errors.New("ari: Options.URL, Username and Application are required")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("ari: Options.URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("ari: Options.URL %q: scheme must be http or https", o.URL)
	}
	if strings.ContainsAny(o.Application, ",/?&# ") {
		return fmt.Errorf("ari: Options.Application %q: one application name, without separators", o.Application)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, 5*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.PingInterval, 10*time.Second)
	def(&o.PongTimeout, 5*time.Second)
	def(&o.MinBackoff, 250*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.SlowConsumerBacklog <= 0 {
		o.SlowConsumerBacklog = 1000
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 100_000
	}
	if o.MaxBacklog < o.SlowConsumerBacklog {
		o.MaxBacklog = o.SlowConsumerBacklog
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 32
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxConnsPerHost, t.MaxIdleConnsPerHost = o.MaxConnections, o.MaxConnections
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return nil
}

// Client talks to one Asterisk over ARI: REST calls at any time, and the
// event stream of one application while Run runs. It is safe for concurrent
// use. Events are read with Next by one consumer.
type Client struct {
	opts    Options
	base    string // URL without a trailing slash
	log     *zap.Logger
	metrics *metrics
	queue   *queue

	mu      sync.Mutex
	running bool
	state   ConnState
}

// New validates opts and returns a Client. It starts nothing: call Run for
// the event stream. REST calls work without Run.
func New(opts Options) (*Client, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ari: registering metrics: %w", err)
	}
	return &Client{
		opts:    opts,
		base:    strings.TrimSuffix(opts.URL, "/"),
		log:     opts.Logger,
		metrics: m,
		queue:   newQueue(),
	}, nil
}

// Application returns the name of the client's Stasis application.
func (c *Client) Application() string { return c.opts.Application }

// request is one REST call. query values of more than one item are sent
// comma-joined under one key, as ARI expects.
type request struct {
	op     string
	method string
	path   string // relative to the base, with ids already escaped
	query  url.Values
	body   any // JSON-encoded when non-nil
}

// do sends r and decodes a 2xx JSON answer into out (when out is non-nil and
// there is a body). A non-2xx answer is an *Error.
func (c *Client) do(ctx context.Context, r request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()

	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("ari: %s: encoding body: %w", r.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("ari: %s: %w", r.op, err)
	}
	req.SetBasicAuth(c.opts.Username, c.opts.Password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := c.opts.HTTPClient.Do(req)
	c.metrics.requestDuration.WithLabelValues(r.op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.requests.WithLabelValues(r.op, "error").Inc()
		return fmt.Errorf("ari: %s (%s %s): %w", r.op, r.method, r.path, err)
	}
	defer resp.Body.Close()
	c.metrics.requests.WithLabelValues(r.op, strconv.Itoa(resp.StatusCode)).Inc()

	// ARI answers are small; 4 MiB bounds a broken or hostile server.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("ari: %s (%s %s): reading answer: %w", r.op, r.method, r.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Op: r.op, Method: r.method, Path: r.path, StatusCode: resp.StatusCode}
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &msg) == nil {
			e.Message = msg.Message
		}
		return e
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ari: %s (%s %s): decoding answer: %w", r.op, r.method, r.path, err)
	}
	return nil
}

// seg escapes one path segment (an id chosen by the caller may hold any
// character).
func seg(s string) string { return url.PathEscape(s) }

// params builds a url.Values from key/value pairs, skipping empty values so
// that Asterisk's defaults apply.
func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}
