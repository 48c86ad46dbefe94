package whatsapp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// fakeClock is Options.Now for the fake, so the 24-hour window can pass.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newMarkReadClient(t *testing.T, s *whatsapptest.Server, token string) *whatsapp.Client {
	t.Helper()
	c, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: s.URL, PhoneNumberID: s.PhoneNumberID, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// customerWrites has the customer write and returns the message's wamid.
func customerWrites(t *testing.T, s *whatsapptest.Server) string {
	t.Helper()
	id, err := s.SendText(ctxTimeout(t, 10*time.Second), "5491155551234", "hola")
	if !errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		t.Fatalf("SendText() = %v, want only the webhook to fail (no URL)", err)
	}
	return id
}

func TestMarkRead(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1767225600, 0)}
	s := whatsapptest.NewServer(whatsapptest.Options{Token: "tok", Now: clk.Now})
	t.Cleanup(s.Close)
	c := newMarkReadClient(t, s, "tok")
	id := customerWrites(t, s)
	ctx := ctxTimeout(t, 10*time.Second)

	if err := c.MarkRead(ctx, id, false); err != nil {
		t.Fatalf("MarkRead(%s, false) = %v", id, err)
	}
	if err := c.MarkRead(ctx, id, true); err != nil {
		t.Fatalf("MarkRead(%s, true) = %v", id, err)
	}
	want := []whatsapptest.ReadReceipt{
		{Time: clk.now, PhoneNumberID: s.PhoneNumberID, MessageID: id},
		{Time: clk.now, PhoneNumberID: s.PhoneNumberID, MessageID: id, Typing: true},
	}
	if diff := cmp.Diff(want, s.Reads()); diff != "" {
		t.Errorf("Reads() mismatch (-want +got):\n%s", diff)
	}
	var bodies []string
	for _, r := range s.Requests() {
		bodies = append(bodies, string(r.Body))
	}
	wantBodies := []string{
		`{"messaging_product":"whatsapp","status":"read","message_id":"` + id + `"}`,
		`{"messaging_product":"whatsapp","status":"read","message_id":"` + id + `","typing_indicator":{"type":"text"}}`,
	}
	if diff := cmp.Diff(wantBodies, bodies); diff != "" {
		t.Errorf("request bodies mismatch (-want +got):\n%s", diff)
	}
}

func TestMarkReadErrors(t *testing.T) {
	tests := []struct {
		name string
		// prepare gets the fake and the id of a customer's message and
		// returns the id to mark read.
		prepare    func(s *whatsapptest.Server, clk *fakeClock, id string) string
		token      string
		wantStatus int
		wantCode   int
		wantClass  whatsapp.Class
		wantReason string
		inDoubt    bool
	}{
		{
			name:    "unknown message",
			prepare: func(_ *whatsapptest.Server, _ *fakeClock, _ string) string { return "wamid.nope" },
			token:   "tok", wantStatus: 400, wantCode: 100, wantClass: whatsapp.Permanent, wantReason: "unknown",
		},
		{
			name: "window closed",
			prepare: func(_ *whatsapptest.Server, clk *fakeClock, id string) string {
				clk.now = clk.now.Add(24 * time.Hour)
				return id
			},
			token: "tok", wantStatus: 400, wantCode: 131047, wantClass: whatsapp.Permanent, wantReason: "window_closed",
		},
		{
			name:    "expired token",
			prepare: func(_ *whatsapptest.Server, _ *fakeClock, id string) string { return id },
			token:   "stale", wantStatus: 401, wantCode: 190, wantClass: whatsapp.Breaker, wantReason: "token_expired",
		},
		{
			name: "throttled",
			prepare: func(s *whatsapptest.Server, _ *fakeClock, id string) string {
				s.FailNext(1, whatsapptest.Fault{Code: 130429})
				return id
			},
			token: "tok", wantStatus: 429, wantCode: 130429, wantClass: whatsapp.Retry, wantReason: "throughput",
		},
		{
			name: "bare 503",
			prepare: func(s *whatsapptest.Server, _ *fakeClock, id string) string {
				s.FailNext(1, whatsapptest.Fault{Status: 503, NoBody: true})
				return id
			},
			token: "tok", wantStatus: 503, wantClass: whatsapp.Retry, wantReason: "server",
		},
		{
			name: "answer lost",
			prepare: func(s *whatsapptest.Server, _ *fakeClock, id string) string {
				s.FailNext(1, whatsapptest.Fault{Lose: true})
				return id
			},
			token: "tok", wantClass: whatsapp.Retry, wantReason: "network", inDoubt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1767225600, 0)}
			s := whatsapptest.NewServer(whatsapptest.Options{Token: "tok", Now: clk.Now})
			t.Cleanup(s.Close)
			id := tt.prepare(s, clk, customerWrites(t, s))
			err := newMarkReadClient(t, s, tt.token).MarkRead(ctxTimeout(t, 10*time.Second), id, true)
			var e *whatsapp.Error
			if !errors.As(err, &e) {
				t.Fatalf("MarkRead() = %v, want a *whatsapp.Error", err)
			}
			got := []any{e.HTTPStatus, e.Code, e.Class, e.Reason, e.InDoubt}
			want := []any{tt.wantStatus, tt.wantCode, tt.wantClass, tt.wantReason, tt.inDoubt}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("MarkRead() error %v: status, code, class, reason, in doubt (-want +got):\n%s", e, diff)
			}
			wantReads := 0
			if tt.inDoubt {
				wantReads = 1 // it was marked; only the answer was lost
			}
			if got := len(s.Reads()); got != wantReads {
				t.Errorf("Reads() has %d receipts, want %d", got, wantReads)
			}
		})
	}
}

func TestMarkReadWithoutMessageID(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	t.Cleanup(srv.Close)
	c, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: srv.URL, PhoneNumberID: "1", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	var e *whatsapp.Error
	if err := c.MarkRead(context.Background(), "", false); !errors.As(err, &e) || e.Class != whatsapp.Permanent {
		t.Errorf("MarkRead(\"\") = %v, want a permanent *whatsapp.Error", err)
	}
	if calls != 0 {
		t.Errorf("MarkRead(\"\") made %d requests, want none", calls)
	}
}

func TestMarkReadAnswerWithoutSuccess(t *testing.T) {
	for _, answer := range []string{`{"success":false}`, `{}`, `{"messaging_product":"whatsapp"}`, `not json`, ``} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, answer)
		}))
		c, err := whatsapp.NewClient(whatsapp.ClientOptions{BaseURL: srv.URL, PhoneNumberID: "1", Token: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		err = c.MarkRead(ctxTimeout(t, 10*time.Second), "wamid.1", false)
		srv.Close()
		var e *whatsapp.Error
		if !errors.As(err, &e) || e.HTTPStatus != 200 || e.Reason != "bad_answer" || e.Class != whatsapp.Retry {
			t.Errorf("MarkRead() answered 200 %q = %v, want a bad_answer *whatsapp.Error", answer, err)
		}
	}
}
