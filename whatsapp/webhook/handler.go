package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Intake keeps a verified webhook body durably until a Processor has
// handled it. Append must not return before the body is safe: the handler
// answers Meta 200 right after it, and Meta never sends it again.
type Intake interface {
	Append(ctx context.Context, body []byte) error
}

// HandlerOptions configures a Handler. AppSecret, VerifyToken and Intake
// are required.
type HandlerOptions struct {
	// AppSecret is the Meta app's secret, the key of X-Hub-Signature-256.
	// It is never logged.
	AppSecret []byte
	// VerifyToken is the token configured with the webhook URL in Meta's
	// dashboard; Meta echoes it in the GET handshake.
	VerifyToken string
	// MaxBodyBytes bounds a POST body; larger ones get 413. Default 1 MiB,
	// far above any real notification.
	MaxBodyBytes int64
	// IntakeTimeout bounds Intake.Append, so a stuck store answers Meta
	// 503 (and Meta retries) before Meta gives up on the request. Default
	// 5 s.
	IntakeTimeout time.Duration
	// Intake receives every verified, well-formed body.
	Intake Intake
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Registerer registers the handler's metrics. Default: a private
	// registry, so that nothing is exported.
	Registerer prometheus.Registerer
}

// DefaultMaxBodyBytes is HandlerOptions.MaxBodyBytes when unset.
const DefaultMaxBodyBytes = 1 << 20

// Results of a webhook POST, the values of the result label of
// deflectd_whatsapp_webhooks_total.
const (
	resultOK           = "ok"
	resultBadSignature = "bad_signature"
	resultBadRequest   = "bad_request"
	resultTooLarge     = "too_large"
	resultIntakeError  = "intake_error"
)

// Handler is the webhook endpoint Meta calls: the GET verification
// handshake and signed POST notifications. It does no processing beyond
// validation: a valid POST is appended to the Intake and answered at once.
type Handler struct {
	opts    HandlerOptions
	log     *zap.Logger
	results *prometheus.CounterVec
}

// NewHandler validates opts and returns a Handler.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if len(opts.AppSecret) == 0 {
		return nil, errors.New("webhook: HandlerOptions.AppSecret is required")
	}
	if opts.VerifyToken == "" {
		return nil, errors.New("webhook: HandlerOptions.VerifyToken is required")
	}
	if opts.Intake == nil {
		return nil, errors.New("webhook: HandlerOptions.Intake is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.IntakeTimeout <= 0 {
		opts.IntakeTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	h := &Handler{
		opts: opts,
		log:  opts.Logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deflectd_whatsapp_webhooks_total",
			Help: "Webhook POSTs received from Meta, by result.",
		}, []string{"result"}),
	}
	if err := opts.Registerer.Register(h.results); err != nil {
		return nil, err
	}
	for _, r := range []string{resultOK, resultBadSignature, resultBadRequest, resultTooLarge, resultIntakeError} {
		h.results.WithLabelValues(r)
	}
	return h, nil
}

// ServeHTTP answers the GET handshake and POST notifications; other
// methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		h.verify(w, r)
	case http.MethodPost:
		h.notify(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// verify is the subscription handshake: Meta proves it knows the verify
// token, and the endpoint proves it is alive by echoing the challenge.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("hub.verify_token")
	if q.Get("hub.mode") != "subscribe" || subtle.ConstantTimeCompare([]byte(token), []byte(h.opts.VerifyToken)) != 1 {
		h.log.Warn("webhook verification refused: wrong mode or verify token",
			zap.String("mode", q.Get("hub.mode")), zap.String("remote", r.RemoteAddr))
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	// The challenge goes back as plain text, never interpreted as HTML:
	// it is attacker-chosen for anyone who knows the token.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, q.Get("hub.challenge"))
}

func (h *Handler) notify(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		h.fail(w, r, resultTooLarge, http.StatusRequestEntityTooLarge, "body too large", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.fail(w, r, resultTooLarge, http.StatusRequestEntityTooLarge, "body too large", nil)
			return
		}
		h.fail(w, r, resultBadRequest, http.StatusBadRequest, "reading the body failed", err)
		return
	}
	if err := VerifySignature(body, r.Header.Get(SignatureHeader), h.opts.AppSecret); err != nil {
		h.fail(w, r, resultBadSignature, http.StatusUnauthorized, "bad signature", err)
		return
	}
	// Parsed only to refuse what is not a notification while Meta is
	// still listening; the Processor parses it again from the Intake.
	if _, err := Parse(body); err != nil {
		h.fail(w, r, resultBadRequest, http.StatusBadRequest, err.Error(), err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.IntakeTimeout)
	defer cancel()
	if err := h.opts.Intake.Append(ctx, body); err != nil {
		h.results.WithLabelValues(resultIntakeError).Inc()
		h.log.Error("webhook not stored; answering 503 so that Meta retries", zap.Error(err))
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	h.results.WithLabelValues(resultOK).Inc()
	w.WriteHeader(http.StatusOK)
}

// fail answers a request refused for the caller's fault. These are logged
// at Warn: they are expected from scanners and misconfigured secrets, and
// the caller, not deflectd, owns the fix.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, result string, code int, msg string, err error) {
	h.results.WithLabelValues(result).Inc()
	h.log.Warn("webhook refused", zap.String("result", result), zap.Int("status", code),
		zap.String("remote", r.RemoteAddr), zap.Error(err))
	http.Error(w, msg, code)
}
