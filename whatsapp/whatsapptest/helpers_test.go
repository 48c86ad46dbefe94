package whatsapptest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// deflectTemplate is the deflection template of the reference, as the fake
// knows it.
var deflectTemplate = whatsapptest.Template{
	Name:     "queue_deflect_v1",
	Language: "es_AR",
	Body:     []string{"1", "2"},
	BodyText: "Hola, te escribimos por {{1}}. Tu espera estimada era de {{2}}.",
	Buttons:  []whatsapptest.Button{{SubType: whatsapptest.ButtonQuickReply, Text: "Escribime"}},
}

var namedTemplate = whatsapptest.Template{
	Name:     "queue_deflect_named",
	Language: "es_AR",
	Body:     []string{"reason", "wait"},
	Buttons: []whatsapptest.Button{
		{SubType: whatsapptest.ButtonQuickReply, Text: "Escribime"},
		{SubType: whatsapptest.ButtonURL, Text: "Ver", Dynamic: true},
	},
}

var pausedTemplate = whatsapptest.Template{Name: "paused_v1", Language: "es_AR", Status: "PAUSED"}

const customer = "5491155551234"

func newServer(t *testing.T, opts whatsapptest.Options) *whatsapptest.Server {
	t.Helper()
	if opts.Templates == nil {
		opts.Templates = []whatsapptest.Template{deflectTemplate, namedTemplate, pausedTemplate}
	}
	s := whatsapptest.NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, s *whatsapptest.Server, mod func(*whatsapp.ClientOptions)) *whatsapp.Client {
	t.Helper()
	o := whatsapp.ClientOptions{BaseURL: s.URL, PhoneNumberID: s.PhoneNumberID, Token: s.Token}
	if mod != nil {
		mod(&o)
	}
	c, err := whatsapp.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deflectMessage is the reference's template message.
func deflectMessage(to, reason string) *whatsapp.Message {
	m := whatsapp.NewTemplateMessage(to, whatsapp.Template{
		Name:     "queue_deflect_v1",
		Language: whatsapp.Language{Policy: "deterministic", Code: "es_AR"},
		Components: []whatsapp.Component{
			{Type: whatsapp.ComponentBody, Parameters: []whatsapp.Parameter{
				{Type: whatsapp.ParamText, Text: reason}, {Type: whatsapp.ParamText, Text: "7 min"}}},
			{Type: whatsapp.ComponentButton, SubType: whatsapp.ButtonQuickReply, Index: "0", Parameters: []whatsapp.Parameter{
				{Type: whatsapp.ParamPayload, Payload: "dfl:call-1"}}},
		},
	})
	m.BizOpaqueCallbackData = "job-1"
	return m
}

// sendErr sends m and returns its *whatsapp.Error, failing if it succeeds.
func sendErr(t *testing.T, c *whatsapp.Client, m *whatsapp.Message) *whatsapp.Error {
	t.Helper()
	res, err := c.Send(testContext(t), m)
	var e *whatsapp.Error
	if !errors.As(err, &e) {
		t.Fatalf("Send() = %+v, %v; want a *whatsapp.Error", res, err)
	}
	return e
}

// post sends a raw request body with the server's token.
func post(t *testing.T, s *whatsapptest.Server, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// clock is a fake clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1767225600, 0)} } // 2026-01-01T00:00:00Z

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hook is one webhook a receiver got.
type hook struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that checks the signature itself (with
// its own HMAC, not the package's Sign) and answers 401 when it is wrong,
// like a real receiver.
type receiver struct {
	URL   string
	hooks chan hook
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{hooks: make(chan hook, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.hooks <- hook{method: req.Method, header: req.Header.Clone(), body: body}
		if req.Method == http.MethodGet {
			q := req.URL.Query()
			if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != "verify-me" {
				http.Error(w, "bad verify token", http.StatusForbidden)
				return
			}
			_, _ = io.WriteString(w, q.Get("hub.challenge"))
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(req.Header.Get("X-Hub-Signature-256")), []byte(want)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// next returns the next webhook received.
func (r *receiver) next(t *testing.T) hook {
	t.Helper()
	select {
	case h := <-r.hooks:
		return h
	case <-testContext(t).Done():
		t.Fatal("no webhook received")
		return hook{}
	}
}
