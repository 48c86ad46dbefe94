package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/deflectd/deflectd/internal/redistest"
)

const (
	testSecret      = "app-secret"
	testVerifyToken = "verify-me"
)

type intakeFunc func(ctx context.Context, body []byte) error

func (f intakeFunc) Append(ctx context.Context, body []byte) error { return f(ctx, body) }

// counter reads one counter from reg; labels are name, value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%q", name, labels)
	return 0
}

func TestHandlerGet(t *testing.T) {
	h, err := NewHandler(HandlerOptions{AppSecret: []byte(testSecret), VerifyToken: testVerifyToken,
		Intake: intakeFunc(func(context.Context, []byte) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		query    url.Values
		wantCode int
		wantBody string
	}{
		{"ok", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {testVerifyToken}, "hub.challenge": {"1158201444"}}, 200, "1158201444"},
		{"wrong token", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"guess"}, "hub.challenge": {"1"}}, 403, "forbidden\n"},
		{"token prefix", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {testVerifyToken[:3]}, "hub.challenge": {"1"}}, 403, "forbidden\n"},
		{"missing token", url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1"}}, 403, "forbidden\n"},
		{"wrong mode", url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {testVerifyToken}, "hub.challenge": {"1"}}, 403, "forbidden\n"},
		{"missing mode", url.Values{"hub.verify_token": {testVerifyToken}, "hub.challenge": {"1"}}, 403, "forbidden\n"},
		{"nothing", nil, 403, "forbidden\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/webhook?"+tt.query.Encode(), nil))
			if w.Code != tt.wantCode || w.Body.String() != tt.wantBody {
				t.Errorf("GET ?%s = %d %q, want %d %q", tt.query.Encode(), w.Code, w.Body, tt.wantCode, tt.wantBody)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("GET ?%s Content-Type = %q, want text/plain", tt.query.Encode(), ct)
			}
		})
	}
}

func TestHandlerPost(t *testing.T) {
	s := redistest.Start(t)
	rdb := s.Client()
	good := textBody("wamid.1", "hola")
	big := textBody("wamid.big", strings.Repeat("x", 2048))
	const maxBody = 1024

	tests := []struct {
		name       string
		method     string
		body       []byte
		sign       func(body []byte) string
		chunked    bool // no Content-Length, so only reading finds the size
		intakeErr  error
		wantCode   int
		wantBody   string // a part of the answer
		wantStored bool
		wantResult string // result label counted, "" for none
	}{
		{name: "ok", body: good, wantCode: 200, wantStored: true, wantResult: "ok"},
		{name: "other fields only", body: envelopeOf(map[string]any{"field": "account_update", "value": map[string]any{}}),
			wantCode: 200, wantStored: true, wantResult: "ok"},
		{name: "no signature", body: good, sign: func([]byte) string { return "" }, wantCode: 401, wantResult: "bad_signature"},
		{name: "wrong secret", body: good, sign: func(b []byte) string { return Sign(b, []byte("other")) }, wantCode: 401, wantResult: "bad_signature"},
		{name: "signature of another body", body: good, sign: func([]byte) string { return Sign(textBody("wamid.2", "x"), []byte(testSecret)) },
			wantCode: 401, wantResult: "bad_signature"},
		{name: "malformed signature", body: good, sign: func([]byte) string { return "sha256=nope" }, wantCode: 401, wantResult: "bad_signature"},
		{name: "malformed JSON", body: []byte(`{"object":`), wantCode: 400, wantBody: "malformed JSON", wantResult: "bad_request"},
		{name: "wrong object", body: []byte(`{"object":"page","entry":[]}`), wantCode: 400, wantBody: `object is "page"`, wantResult: "bad_request"},
		{name: "no changes", body: []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1"}]}`), wantCode: 400, wantBody: "no changes", wantResult: "bad_request"},
		{name: "too large", body: big, wantCode: 413, wantResult: "too_large"},
		{name: "too large, chunked", body: big, chunked: true, wantCode: 413, wantResult: "too_large"},
		{name: "intake fails", body: good, intakeErr: errors.New("redis down"), wantCode: 503, wantResult: "intake_error"},
		{name: "PUT", method: http.MethodPut, body: good, wantCode: 405},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			redisIntake, err := NewRedisIntake(RedisIntakeOptions{Client: rdb, Prefix: s.Prefix + string(rune('a'+i)) + ":"})
			if err != nil {
				t.Fatal(err)
			}
			var intake Intake = redisIntake
			if tt.intakeErr != nil {
				intake = intakeFunc(func(context.Context, []byte) error { return tt.intakeErr })
			}
			h, err := NewHandler(HandlerOptions{AppSecret: []byte(testSecret), VerifyToken: testVerifyToken,
				MaxBodyBytes: maxBody, Intake: intake, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, "/webhook", bytes.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(bytes.NewReader(tt.body))
			}
			sig := Sign(tt.body, []byte(testSecret))
			if tt.sign != nil {
				sig = tt.sign(tt.body)
			}
			if sig != "" {
				r.Header.Set(SignatureHeader, sig)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("%s = %d %q, want %d containing %q", method, w.Code, w.Body, tt.wantCode, tt.wantBody)
			}
			entries, err := rdb.XRange(context.Background(), redisIntake.stream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			var stored [][]byte
			for _, e := range entries {
				stored = append(stored, []byte(e.Values[bodyField].(string)))
			}
			var want [][]byte
			if tt.wantStored {
				want = [][]byte{tt.body}
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored bodies mismatch (-want +got):\n%s", diff)
			}
			if n, err := testutil.GatherAndCount(reg, "deflectd_whatsapp_webhooks_total"); err != nil || n != 5 {
				t.Errorf("deflectd_whatsapp_webhooks_total has %d series (%v), want 5, all initialised", n, err)
			}
			for _, result := range []string{"ok", "bad_signature", "bad_request", "too_large", "intake_error"} {
				want := 0.0
				if result == tt.wantResult {
					want = 1
				}
				if got := counter(t, reg, "deflectd_whatsapp_webhooks_total", "result", result); got != want {
					t.Errorf("deflectd_whatsapp_webhooks_total{result=%q} = %v, want %v", result, got, want)
				}
			}
		})
	}
}

func TestNewHandlerValidates(t *testing.T) {
	intake := intakeFunc(func(context.Context, []byte) error { return nil })
	tests := []struct {
		name string
		opts HandlerOptions
	}{
		{"no secret", HandlerOptions{VerifyToken: "t", Intake: intake}},
		{"no verify token", HandlerOptions{AppSecret: []byte("s"), Intake: intake}},
		{"no intake", HandlerOptions{AppSecret: []byte("s"), VerifyToken: "t"}},
	}
	for _, tt := range tests {
		if _, err := NewHandler(tt.opts); err == nil {
			t.Errorf("NewHandler(%s) error = nil, want one", tt.name)
		}
	}
}
