package aritest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Identity of the fake Asterisk, as GET /asterisk/info and /asterisk/ping
// report it. They are those of the lab Asterisk the recordings come from.
const (
	// AsteriskID is the fake's entity id (asterisk_id in events and pings).
	AsteriskID = "02:fc:00:00:00:01"
	// Version is the Asterisk version the fake reports.
	Version = "22.10.1"
)

// timeLayout is Asterisk's timestamp layout (not RFC 3339).
const timeLayout = "2006-01-02T15:04:05.000-0700"

// Server is a fake Asterisk serving ARI under URL. Create one with
// NewServer and stop it with Close. Its methods are safe for concurrent use.
type Server struct {
	// URL is the ARI base URL, e.g. http://127.0.0.1:PORT/ari, as a client
	// takes it in its options.
	URL string
	// Username and Password are the only credentials the server accepts,
	// as Basic auth or as api_key=Username:Password. Do not change them.
	Username, Password string

	hs      *httptest.Server
	started time.Time
	wg      sync.WaitGroup // event socket handlers still running

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change a Wait* may wait for
	closed   bool
	calls    []Call
	handlers []route // overrides from Handle, newest first
	defaults []route
	refuse   int
	noPongs  map[string]bool
	owner    map[string]*eventConn // application -> the socket that holds it
	conns    map[*eventConn]bool
	seq      int // for generated ids and names
	m        model
}

// Call is one HTTP request the server received under /ari, REST or the
// events websocket, as Calls and WaitCall report it.
type Call struct {
	// Method is the HTTP method.
	Method string
	// Path is the path after /ari, unescaped: "/channels/a b/answer".
	Path string
	// RawPath is the path after /ari as the client sent it, escaped.
	RawPath string
	// Query is the parsed query string.
	Query url.Values
	// Body is the request body; nil when empty.
	Body []byte
	// Params are the values of the {name} wildcards of the route that
	// matched, e.g. {"id": "a b"} for /channels/{id}/answer; nil when no
	// route matched.
	Params map[string]string
}

// HandlerFunc answers a REST call. It returns the HTTP status and the body:
// nil for none, a []byte, json.RawMessage or string sent as is, or any
// other value encoded as JSON. A status of 0 means 200 with a body and 204
// without. ctx ends when the client goes away, so a handler that blocks
// should wait on it. Errors should be ErrorBody values, as Asterisk's.
type HandlerFunc func(ctx context.Context, c Call) (status int, body any)

// ErrorBody returns an error body as Asterisk writes it: {"message": msg}.
func ErrorBody(msg string) any { return map[string]string{"message": msg} }

type route struct {
	method string
	segs   []string // pattern segments; "{x}" one segment, "{x...}" the rest
	h      HandlerFunc
}

// NewServer starts a fake Asterisk on 127.0.0.1 with the credentials
// "aritest" / "aritest-secret". Call Close when done.
func NewServer() *Server {
	s := &Server{
		Username: "aritest",
		Password: "aritest-secret",
		started:  time.Now(),
		changed:  make(chan struct{}),
		noPongs:  make(map[string]bool),
		owner:    make(map[string]*eventConn),
		conns:    make(map[*eventConn]bool),
		m:        newModel(),
	}
	s.defaults = s.defaultRoutes()
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL + "/ari"
	return s
}

// Close cuts every event socket, stops the server, and waits for its
// handlers to return. Calling it again does nothing.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*eventConn, 0, len(s.conns))
	for ec := range s.conns {
		conns = append(conns, ec)
	}
	s.mu.Unlock()
	for _, ec := range conns {
		ec.conn.CloseNow()
	}
	s.hs.Close()
	s.wg.Wait()
}

// Handle makes h answer method requests on paths matching pattern, in place
// of the default behaviour, e.g. Handle("POST", "/channels/{id}/answer", h).
// A pattern segment {name} matches one path segment (its value is in
// Call.Params), {name...} the rest of the path. The latest Handle for a
// request wins; a nil h removes the overrides of that method and pattern.
func (s *Server) Handle(method, pattern string, h HandlerFunc) {
	segs := splitPattern(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		s.handlers = slices.DeleteFunc(s.handlers, func(r route) bool {
			return r.method == method && slices.Equal(r.segs, segs)
		})
		return
	}
	s.handlers = slices.Insert(s.handlers, 0, route{method: method, segs: segs, h: h})
}

// Calls returns every request received so far, in order of arrival.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// WaitCall returns the first request with that method and path, waiting
// until one arrives or ctx ends. path is exact, or a prefix when it ends in
// '*' ("/channels/*"); an empty method matches any.
func (s *Server) WaitCall(ctx context.Context, method, path string) (Call, error) {
	calls, err := s.WaitCalls(ctx, method, path, 1)
	if err != nil {
		return Call{}, err
	}
	return calls[0], nil
}

// WaitCalls waits until n requests match method and path (as in WaitCall)
// and returns all those that match, in order.
func (s *Server) WaitCalls(ctx context.Context, method, path string, n int) ([]Call, error) {
	var got []Call
	err := s.wait(ctx, func() bool {
		got = got[:0]
		for _, c := range s.calls {
			if callMatches(c, method, path) {
				got = append(got, c)
			}
		}
		return len(got) >= n
	})
	if err != nil {
		return nil, fmt.Errorf("aritest: waiting for %d× %s %s (%d so far): %w", n, method, path, len(got), err)
	}
	return slices.Clone(got), nil
}

func callMatches(c Call, method, path string) bool {
	if method != "" && c.Method != method {
		return false
	}
	if prefix, ok := strings.CutSuffix(path, "*"); ok {
		return strings.HasPrefix(c.Path, prefix)
	}
	return c.Path == path
}

// wait returns once cond, called with s.mu held, is true, or when ctx ends.
func (s *Server) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes every wait. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) authorized(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return u == s.Username && p == s.Password
	}
	if k := r.URL.Query().Get("api_key"); k != "" {
		return k == s.Username+":"+s.Password
	}
	return false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/ari")
	if !ok || (rest != "" && rest[0] != '/') {
		writeBody(w, http.StatusNotFound, ErrorBody("Not found"))
		return
	}
	segs, err := splitPath(rest)
	if err != nil {
		writeBody(w, http.StatusBadRequest, ErrorBody("Invalid path"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeBody(w, http.StatusBadRequest, ErrorBody("Cannot read body"))
		return
	}
	c := Call{
		Method:  r.Method,
		Path:    "/" + strings.Join(segs, "/"),
		RawPath: rest,
		Query:   r.URL.Query(),
	}
	if len(body) > 0 {
		c.Body = body
	}

	s.mu.Lock()
	h, params, methodOK := s.lookupLocked(r.Method, segs)
	c.Params = params
	s.calls = append(s.calls, c)
	s.notifyLocked()
	s.mu.Unlock()

	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		writeBody(w, http.StatusUnauthorized, ErrorBody("Authentication required"))
		return
	}
	if c.Path == "/events" && r.Method == http.MethodGet {
		s.serveEvents(w, r)
		return
	}
	switch {
	case h != nil:
		status, out := h(r.Context(), c)
		writeBody(w, status, out)
	case methodOK:
		writeBody(w, http.StatusMethodNotAllowed, ErrorBody("Invalid method"))
	default:
		writeBody(w, http.StatusNotFound, ErrorBody("Not found"))
	}
}

// lookupLocked finds the handler for a request: overrides first, then the
// defaults. methodOK reports that some route has the path but another
// method.
func (s *Server) lookupLocked(method string, segs []string) (h HandlerFunc, params map[string]string, methodOK bool) {
	for _, table := range [][]route{s.handlers, s.defaults} {
		for _, rt := range table {
			p, ok := matchSegs(rt.segs, segs)
			if !ok {
				continue
			}
			if rt.method != method {
				methodOK = true
				continue
			}
			return rt.h, p, false
		}
	}
	return nil, nil, methodOK
}

func splitPattern(pattern string) []string {
	return strings.Split(strings.Trim(pattern, "/"), "/")
}

// splitPath splits an escaped path into unescaped segments, so that an id
// holding an escaped '/' stays one segment.
func splitPath(escaped string) ([]string, error) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, err
		}
		parts[i] = u
	}
	return parts, nil
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		name, isVar := strings.CutPrefix(p, "{")
		name, _ = strings.CutSuffix(name, "}")
		if rest, ok := strings.CutSuffix(name, "..."); isVar && ok {
			if i >= len(segs) {
				return nil, false
			}
			params[rest] = strings.Join(segs[i:], "/")
			return params, true
		}
		if i >= len(segs) {
			return nil, false
		}
		switch {
		case isVar && segs[i] != "":
			params[name] = segs[i]
		case !isVar && p == segs[i]:
		default:
			return nil, false
		}
	}
	return params, len(segs) == len(pattern)
}

func writeBody(w http.ResponseWriter, status int, body any) {
	var data []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		data = b
	case json.RawMessage:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			status, data = http.StatusInternalServerError, []byte(`{"message":"aritest: cannot encode the answer"}`)
		}
	}
	if status == 0 {
		status = http.StatusOK
		if data == nil {
			status = http.StatusNoContent
		}
	}
	if data != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(data)
}

// errClosed is returned by Send after Close.
var errClosed = errors.New("aritest: server closed")
