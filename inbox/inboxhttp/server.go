package inboxhttp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/deflectd/deflectd/inbox"
)

// Options configures a Server. Inbox and Redis are required.
type Options struct {
	Inbox *inbox.Inbox
	// Registerer takes the API's metrics (sign-ins); default a registry
	// of its own.
	Registerer prometheus.Registerer
	// Redis holds the sessions, shared by every instance.
	Redis  redis.UniversalClient
	Prefix string
	// SecureCookies marks the session cookie Secure: set it when deflectd
	// is reached over HTTPS (directly or through a proxy).
	SecureCookies bool
	// SessionTTL is how long an idle session lasts. Default 12 h.
	SessionTTL time.Duration
	// MaxBody bounds a request body. Default 64 KiB.
	MaxBody int64
	// Templates lists the templates agents may send (name and language),
	// for the template picker.
	Templates func() []Template
	Now       func() time.Time
	Logger    *zap.Logger
}

// Template is one template of the picker.
type Template struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	Category string `json:"category,omitempty"`
}

// Server is the inbox's HTTP API.
type Server struct {
	opts   Options
	x      *inbox.Inbox
	sess   *sessions
	log    *zap.Logger
	broker *broker
	logins *prometheus.CounterVec
}

// Base is the path every route of the API starts with.
const Base = "/api/v1/inbox/"

// New validates opts and returns a Server. Run its Run for the event
// stream.
func New(opts Options) (*Server, error) {
	if opts.Inbox == nil || opts.Redis == nil {
		return nil, errors.New("inboxhttp: Options.Inbox and Redis are required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "deflectd:"
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, x: opts.Inbox, log: opts.Logger,
		sess: &sessions{rdb: opts.Redis, p: opts.Prefix + "inbox:{sessions}:", ttl: opts.SessionTTL}}
	s.broker = newBroker(opts.Inbox, opts.Logger)
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	s.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deflectd_inbox_logins_total",
		Help: "Password sign-ins to the inbox, by result (ok, bad_credentials, locked_out: refused after 10 failures within a minute)."},
		[]string{"result"})
	if err := opts.Registerer.Register(s.logins); err != nil {
		return nil, fmt.Errorf("inboxhttp: %w", err)
	}
	for _, r := range []string{"ok", "bad_credentials", "locked_out"} {
		s.logins.WithLabelValues(r)
	}
	return s, nil
}

// Run reads the inbox's event stream for this instance's clients until ctx
// ends.
func (s *Server) Run(ctx context.Context) error { return s.broker.run(ctx) }

// Handler returns the API's handler; it serves paths under Base.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	b := strings.TrimSuffix(Base, "/")
	allow := map[string][]string{} // path -> methods
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+b+path, h)
		allow[path] = append(allow[path], method)
	}
	route("POST", "/login", s.login)
	route("POST", "/logout", s.authed(s.logout))
	route("GET", "/me", s.authed(s.me))
	route("GET", "/counts", s.authed(s.counts))
	route("GET", "/conversations", s.authed(s.list))
	route("GET", "/conversations/{id}", s.authed(s.get))
	route("GET", "/conversations/{id}/quick-replies", s.authed(s.quickReplies))
	route("POST", "/conversations/{id}/claim", s.authed(s.claim))
	route("POST", "/conversations/{id}/reply", s.authed(s.reply))
	route("POST", "/conversations/{id}/template", s.authed(s.template))
	route("POST", "/conversations/{id}/seen", s.authed(s.seen))
	route("POST", "/conversations/{id}/typing", s.authed(s.typing))
	route("POST", "/conversations/{id}/handoff", s.authed(s.handoff))
	route("POST", "/conversations/{id}/resolve", s.authed(s.resolve))
	route("POST", "/conversations/{id}/reopen", s.authed(s.reopen))
	route("POST", "/conversations/{id}/reassign", s.authed(s.reassign))
	route("PUT", "/availability", s.authed(s.availability))
	route("GET", "/agents", s.authed(s.agents))
	route("GET", "/today", s.authed(s.today))
	route("GET", "/templates", s.authed(s.templates))
	route("GET", "/events", s.authed(s.events))
	// The mux's own 405 is plain text; the API's errors are JSON.
	for path, methods := range allow {
		list := strings.Join(methods, ", ")
		mux.HandleFunc(b+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", r.Method+" "+r.URL.Path+": this call takes "+list)
		})
	}
	mux.HandleFunc(b+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "", "no such API call: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// ---- errors ----

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Field, b.Error.Message = code, field, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

// fail answers an operation's error: the inbox's kinds map to statuses.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *inbox.Error
	if !errors.As(err, &e) {
		s.log.Error("inboxhttp: unexpected error", zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "", "internal error")
		return
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(e.Kind, inbox.ErrInvalid) && e.Code == codeTooLarge:
		status = http.StatusRequestEntityTooLarge
	case errors.Is(e.Kind, inbox.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(e.Kind, inbox.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(e.Kind, inbox.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(e.Kind, inbox.ErrConflict):
		status = http.StatusConflict
	case errors.Is(e.Kind, inbox.ErrUnavailable):
		status = http.StatusServiceUnavailable
		s.log.Warn("inboxhttp: unavailable", zap.String("path", r.URL.Path), zap.Error(err))
	}
	msg := e.Message
	if status != http.StatusServiceUnavailable && e.Err != nil {
		msg = e.Error()
	}
	writeError(w, status, e.Code, e.Field, msg)
}

// codeTooLarge is the error code of a body over Options.MaxBody, answered
// with 413.
const codeTooLarge = "too_large"

// decode reads a JSON body strictly into v: one object, known fields
// only, within MaxBody. Its errors name the field at fault.
func decode(r *http.Request, max int64, v any) *inbox.Error {
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return &inbox.Error{Kind: inbox.ErrInvalid, Code: "bad_body", Message: "the request body could not be read"}
	}
	if int64(len(body)) > max {
		return &inbox.Error{Kind: inbox.ErrInvalid, Code: codeTooLarge, Message: fmt.Sprintf("the request body is larger than %d bytes", max)}
	}
	return decodeBytes(body, v)
}

// decodeBytes is decode's parser, on its own so that it can be fuzzed.
func decodeBytes(body []byte, v any) *inbox.Error {
	bad := func(field, format string, a ...any) *inbox.Error {
		return &inbox.Error{Kind: inbox.ErrInvalid, Code: "invalid", Field: field, Message: fmt.Sprintf(format, a...)}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return bad("", "a JSON object is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return bad(te.Field, "want a %s, not a JSON %s", te.Type, te.Value)
		case errors.As(err, &se):
			return bad("", "malformed JSON at byte %d: %v", se.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return bad(f, "unknown field")
		}
		return bad("", "malformed JSON: %v", err)
	}
	if dec.More() {
		return bad("", "one JSON object only")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("", "one JSON object only")
	}
	return nil
}

// ---- authentication ----

type ctxKey struct{}

type principal struct {
	user *inbox.User
	sess *session // nil for a bearer token
}

const cookieName = "deflectd_inbox"

// authed wraps a handler with authentication: a bearer token, or a session
// cookie with its CSRF token on every write.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, p principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody+1)
		if auth := r.Header.Get("Authorization"); auth != "" {
			tok, ok := strings.CutPrefix(auth, "Bearer ")
			u, err := s.x.Users().TokenUser(strings.TrimSpace(tok))
			if !ok || err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="deflectd inbox"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "", "the bearer token is not valid")
				return
			}
			h(w, r, principal{user: u})
			return
		}
		c, err := r.Cookie(cookieName)
		if err != nil || c.Value == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="deflectd inbox"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "", "log in (POST "+Base+"login) or send a bearer token")
			return
		}
		ss, err := s.sess.get(r.Context(), c.Value)
		if errors.Is(err, errNoSession) {
			writeError(w, http.StatusUnauthorized, "session_expired", "", "the session expired: log in again")
			return
		}
		if err != nil {
			s.fail(w, r, &inbox.Error{Kind: inbox.ErrUnavailable, Code: "unavailable", Message: "the session store cannot be reached", Err: err})
			return
		}
		u, ok := s.x.Users().User(ss.User)
		if !ok {
			writeError(w, http.StatusUnauthorized, "session_expired", "", "the user is no longer in the users file")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(ss.CSRF)) != 1 {
			writeError(w, http.StatusForbidden, "csrf", "", "a write with the session cookie needs the session's X-CSRF-Token header")
			return
		}
		h(w, r, principal{user: u, sess: ss})
	}
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// maxFailedLogins bounds password guesses per user per minute.
const maxFailedLogins = 10

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case req.User == "":
		writeError(w, http.StatusBadRequest, "invalid", "user", "required")
		return
	case req.Password == "":
		writeError(w, http.StatusBadRequest, "invalid", "password", "required")
		return
	}
	if n, err := s.sess.failures(r.Context(), req.User); err == nil && n >= maxFailedLogins {
		s.logins.WithLabelValues("locked_out").Inc()
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "", "too many failed logins for this user; wait a minute")
		return
	}
	u, err := s.x.Users().Authenticate(req.User, req.Password)
	if err != nil {
		s.sess.failed(r.Context(), req.User)
		s.logins.WithLabelValues("bad_credentials").Inc()
		writeError(w, http.StatusUnauthorized, "bad_credentials", "", "unknown user or wrong password")
		return
	}
	token, ss, err := s.sess.create(r.Context(), u.ID, s.opts.Now())
	if err != nil {
		s.fail(w, r, &inbox.Error{Kind: inbox.ErrUnavailable, Code: "unavailable", Message: "the session store cannot be reached", Err: err})
		return
	}
	s.logins.WithLabelValues("ok").Inc()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.opts.SessionTTL.Seconds())})
	writeJSON(w, http.StatusOK, map[string]any{"user": u, "csrf_token": ss.CSRF})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p principal) {
	if p.sess != nil {
		if c, err := r.Cookie(cookieName); err == nil {
			s.sess.delete(r.Context(), c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p principal) {
	pr, err := s.x.Presence(r.Context(), p.user.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"user": p.user, "presence": pr, "teams": s.x.Config().TeamNames()}
	if p.sess != nil {
		out["csrf_token"] = p.sess.CSRF
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- the calls ----

func (s *Server) counts(w http.ResponseWriter, r *http.Request, p principal) {
	c, err := s.x.Counts(r.Context(), p.user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, p principal) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "view", "team", "agent", "tag", "priority", "level", "q", "cursor", "limit":
		default:
			writeError(w, http.StatusBadRequest, "invalid", k, "unknown query parameter")
			return
		}
	}
	query := inbox.Query{View: q.Get("view"), Team: q.Get("team"), Agent: q.Get("agent"), Tag: q.Get("tag"),
		Priority: inbox.Priority(q.Get("priority")), Level: q.Get("level"), Search: q.Get("q"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "limit", "want a whole number")
			return
		}
		query.Limit = n
	}
	page, err := s.x.List(r.Context(), p.user, query)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p principal) {
	d, err := s.x.Get(r.Context(), p.user, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) quickReplies(w http.ResponseWriter, r *http.Request, p principal) {
	qr, err := s.x.QuickReplies(r.Context(), p.user, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quick_replies": qr})
}

// noBody refuses a body on calls that take none, so that a client that
// thinks it is sending options learns it is not.
func (s *Server) noBody(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if t := strings.TrimSpace(string(b)); t != "" && t != "{}" {
		writeError(w, http.StatusBadRequest, "invalid", "", "this call takes no body")
		return false
	}
	return true
}

func (s *Server) conversation(w http.ResponseWriter, r *http.Request, c *inbox.Conversation, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) claim(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.noBody(w, r) {
		return
	}
	c, err := s.x.Claim(r.Context(), p.user, r.PathValue("id"))
	s.conversation(w, r, c, err)
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, p principal) {
	var req inbox.ReplyRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.x.Reply(r.Context(), p.user, r.PathValue("id"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) template(w http.ResponseWriter, r *http.Request, p principal) {
	var req inbox.TemplateRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.x.SendTemplate(r.Context(), p.user, r.PathValue("id"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) seen(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.noBody(w, r) {
		return
	}
	c, err := s.x.Seen(r.Context(), p.user, r.PathValue("id"))
	s.conversation(w, r, c, err)
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.noBody(w, r) {
		return
	}
	if err := s.x.Typing(r.Context(), p.user, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) handoff(w http.ResponseWriter, r *http.Request, p principal) {
	var req inbox.HandoffRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.x.Handoff(r.Context(), p.user, r.PathValue("id"), req)
	s.conversation(w, r, c, err)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, p principal) {
	var req inbox.ResolveRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.x.Resolve(r.Context(), p.user, r.PathValue("id"), req)
	s.conversation(w, r, c, err)
}

func (s *Server) reopen(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.noBody(w, r) {
		return
	}
	c, err := s.x.Reopen(r.Context(), p.user, r.PathValue("id"))
	s.conversation(w, r, c, err)
}

func (s *Server) reassign(w http.ResponseWriter, r *http.Request, p principal) {
	var req inbox.ReassignRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.x.Reassign(r.Context(), p.user, r.PathValue("id"), req)
	s.conversation(w, r, c, err)
}

type availabilityRequest struct {
	Status inbox.Availability `json:"status"`
	// Agent is whose availability to set; a supervisor may set anyone's.
	Agent string `json:"agent,omitempty"`
}

func (s *Server) availability(w http.ResponseWriter, r *http.Request, p principal) {
	var req availabilityRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	pr, err := s.x.SetAvailability(r.Context(), p.user, req.Agent, req.Status)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request, p principal) {
	a, err := s.x.Agents(r.Context(), p.user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": a})
}

func (s *Server) today(w http.ResponseWriter, r *http.Request, p principal) {
	t, err := s.x.Today(r.Context(), p.user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) templates(w http.ResponseWriter, r *http.Request, p principal) {
	var out []Template
	if s.opts.Templates != nil {
		out = s.opts.Templates()
	}
	if out == nil {
		out = []Template{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
}
