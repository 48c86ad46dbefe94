package whatsapptest_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/google/go-cmp/cmp"
)

type (
	object = map[string]any
	array  = []any
)

// envelope is Meta's notification around one change value.
func envelope(s *whatsapptest.Server, value object) object {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = object{"display_phone_number": s.DisplayPhoneNumber, "phone_number_id": s.PhoneNumberID}
	return object{
		"object": "whatsapp_business_account",
		"entry":  array{object{"id": s.WABAID, "changes": array{object{"field": "messages", "value": value}}}},
	}
}

// decode checks a webhook's headers and returns its decoded body.
func decode(t *testing.T, h hook) object {
	t.Helper()
	if h.method != http.MethodPost || h.header.Get("Content-Type") != "application/json" {
		t.Errorf("webhook %s with Content-Type %q, want POST application/json", h.method, h.header.Get("Content-Type"))
	}
	var v object
	if err := json.Unmarshal(h.body, &v); err != nil {
		t.Fatalf("webhook body %s: %v", h.body, err)
	}
	return v
}

// change returns entry[0].changes[0].value of a decoded webhook.
func change(v object) object {
	return v["entry"].(array)[0].(object)["changes"].(array)[0].(object)["value"].(object)
}

// sendOne sends the deflection message and returns its wamid.
func sendOne(t *testing.T, s *whatsapptest.Server) string {
	t.Helper()
	res, err := newClient(t, s, nil).Send(testContext(t), deflectMessage(customer, "Facturación"))
	if err != nil {
		t.Fatal(err)
	}
	return res.WAMID()
}

func TestStatusWebhooks(t *testing.T) {
	clk := newClock()
	ts := "1767225600"
	tests := []struct {
		status string
		opts   []whatsapptest.WebhookOption
		extra  object // beyond id, status, timestamp, recipient_id, biz_opaque_callback_data
	}{
		{"sent", nil, object{
			"conversation": object{"id": "", "expiration_timestamp": "1767312000", "origin": object{"type": "utility"}},
			"pricing":      object{"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}}},
		{"delivered", nil, object{
			"conversation": object{"id": "", "origin": object{"type": "utility"}},
			"pricing":      object{"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}}},
		{"read", nil, object{}},
		{"failed", []whatsapptest.WebhookOption{whatsapptest.WithError(131026)}, object{
			"errors": array{object{"code": 131026.0, "title": "Message undeliverable", "message": "Message undeliverable",
				"error_data": object{"details": "Unable to deliver message."},
				"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
			s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL})
			wamid := sendOne(t, s)
			if err := s.SendStatus(testContext(t), wamid, tt.status, tt.opts...); err != nil {
				t.Fatalf("SendStatus() = %v (the receiver checks the signature)", err)
			}
			got := decode(t, rcv.next(t))
			st := object{"id": wamid, "status": tt.status, "timestamp": ts, "recipient_id": customer, "biz_opaque_callback_data": "job-1"}
			for k, v := range tt.extra {
				st[k] = v
			}
			if conv, ok := st["conversation"].(object); ok {
				// The conversation id is Meta's opaque 32 hex digits.
				id, _ := change(got)["statuses"].(array)[0].(object)["conversation"].(object)["id"].(string)
				if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
					t.Errorf("conversation id %q, want 32 hex digits", id)
				}
				conv["id"] = id
			}
			if diff := cmp.Diff(envelope(s, object{"statuses": array{st}}), got); diff != "" {
				t.Errorf("status webhook (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInboundTextWebhook(t *testing.T) {
	clk := newClock()
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL})

	id, err := s.SendText(testContext(t), "+54 9 11 5555-1234", "BAJA", whatsapptest.WithProfileName("Ana"), whatsapptest.WithUserID("AR.123"))
	if err != nil {
		t.Fatal(err)
	}
	want := envelope(s, object{
		"contacts": array{object{"profile": object{"name": "Ana"}, "wa_id": customer, "user_id": "AR.123"}},
		"messages": array{object{"from": customer, "id": id, "timestamp": "1767225600", "type": "text", "text": object{"body": "BAJA"}}},
	})
	if diff := cmp.Diff(want, decode(t, rcv.next(t))); diff != "" {
		t.Errorf("text webhook (-want +got):\n%s", diff)
	}
}

func TestButtonTapWebhook(t *testing.T) {
	clk := newClock()
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL})
	wamid := sendOne(t, s)

	id, err := s.SendButtonTap(testContext(t), customer, wamid, "dfl:call-1", "Escribime")
	if err != nil {
		t.Fatal(err)
	}
	want := envelope(s, object{
		"contacts": array{object{"profile": object{"name": "Cliente"}, "wa_id": customer}},
		"messages": array{object{
			"context": object{"from": s.DisplayPhoneNumber, "id": wamid},
			"from":    customer, "id": id, "timestamp": "1767225600", "type": "button",
			"button": object{"payload": "dfl:call-1", "text": "Escribime"},
		}},
	})
	if diff := cmp.Diff(want, decode(t, rcv.next(t))); diff != "" {
		t.Errorf("button webhook (-want +got):\n%s", diff)
	}
	// The tap opened the 24-hour window.
	if _, err := newClient(t, s, nil).Send(testContext(t), whatsapp.NewTextMessage(customer, "Hola")); err != nil {
		t.Errorf("free-form text after a tap: %v", err)
	}
}

func TestWebhookEncodedLikeMeta(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL})
	const text = "Facturación / año 😀 <b>&"
	if _, err := s.SendText(testContext(t), customer, text); err != nil {
		t.Fatalf("SendText() = %v (the receiver verifies over the raw bytes)", err)
	}
	h := rcv.next(t)
	for _, want := range []string{`Facturaci\u00f3n \/ a\u00f1o \ud83d\ude00 <b>&`} {
		if !bytes.Contains(h.body, []byte(want)) {
			t.Errorf("body %s does not contain %s", h.body, want)
		}
	}
	msg := change(decode(t, h))["messages"].(array)[0].(object)
	if got := msg["text"].(object)["body"]; got != text {
		t.Errorf("decoded body = %q, want %q", got, text)
	}
}

func TestBadSignatureRefused(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL})
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)

	err := s.SendWebhook(testContext(t), body, "sha256=00")
	var we *whatsapptest.WebhookError
	if !errors.As(err, &we) || we.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SendWebhook() with a bad signature = %v, want a 401 WebhookError", err)
	}
	if h := rcv.next(t); !bytes.Equal(h.body, body) || h.header.Get("X-Hub-Signature-256") != "sha256=00" {
		t.Errorf("receiver got %s with %q", h.body, h.header.Get("X-Hub-Signature-256"))
	}
	if err := s.SendWebhook(testContext(t), body, ""); err != nil {
		t.Errorf("SendWebhook() signed = %v", err)
	}
	d := s.Deliveries()
	if len(d) != 2 || d[0].StatusCode != 401 || d[0].Err == nil || d[1].StatusCode != 200 || d[1].Err != nil ||
		d[1].Signature != whatsapptest.Sign(body, whatsapptest.DefaultAppSecret) {
		t.Errorf("Deliveries() = %+v, want a 401 then a 200", d)
	}
}

func TestWebhookFailuresRecordedAndRetried(t *testing.T) {
	s := newServer(t, whatsapptest.Options{WebhookRetries: 2, WebhookRetryInterval: time.Millisecond})
	if _, err := s.SendText(testContext(t), customer, "hola"); !errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		t.Errorf("SendText() without a URL = %v, want ErrNoWebhookURL", err)
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	s.SetWebhookURL(srv.URL)
	if _, err := s.SendText(testContext(t), customer, "hola"); err != nil {
		t.Errorf("SendText() = %v, want success on the retry", err)
	}
	var got []int
	for _, d := range s.Deliveries() {
		got = append(got, d.Attempt, d.StatusCode)
	}
	if diff := cmp.Diff([]int{1, 0, 1, 503, 2, 200}, got); diff != "" {
		t.Errorf("Deliveries() attempt, status (-want +got):\n%s", diff)
	}
}

func TestVerifyWebhook(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL})
	if err := s.VerifyWebhook(testContext(t), "verify-me"); err != nil {
		t.Errorf("VerifyWebhook() = %v", err)
	}
	var we *whatsapptest.WebhookError
	if err := s.VerifyWebhook(testContext(t), "wrong"); !errors.As(err, &we) || we.StatusCode != http.StatusForbidden {
		t.Errorf("VerifyWebhook() with a wrong token = %v, want a 403 WebhookError", err)
	}
}

// statuses reads n status webhooks for wamid from rcv.
func statuses(t *testing.T, rcv *receiver, n int) (wamids, got []string) {
	t.Helper()
	for range n {
		st := change(decode(t, rcv.next(t)))["statuses"].(array)[0].(object)
		wamids = append(wamids, st["id"].(string))
		got = append(got, st["status"].(string))
	}
	return wamids, got
}

func TestAutoStatus(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL, AutoStatus: &whatsapptest.AutoStatus{}})
	wamid := sendOne(t, s)
	ids, got := statuses(t, rcv, 3)
	if diff := cmp.Diff([]string{"sent", "delivered", "read"}, got); diff != "" || ids[0] != wamid || ids[2] != wamid {
		t.Errorf("automatic statuses for %s: %v (-want +got):\n%s", wamid, ids, diff)
	}
}

func TestAutoStatusShuffledAndDuplicated(t *testing.T) {
	run := func(seed uint64) []string {
		rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
		s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL, Seed: seed,
			AutoStatus: &whatsapptest.AutoStatus{Shuffle: true, Duplicate: true}})
		sendOne(t, s)
		_, got := statuses(t, rcv, 6)
		return got
	}
	first := run(7)
	count := map[string]int{}
	for _, st := range first {
		count[st]++
	}
	if diff := cmp.Diff(map[string]int{"sent": 2, "delivered": 2, "read": 2}, count); diff != "" {
		t.Errorf("statuses %v (-want +got):\n%s", first, diff)
	}
	if again := run(7); !cmp.Equal(first, again) {
		t.Errorf("seed 7 gave %v, then %v; want the same order", first, again)
	}
}

func TestAsyncFailures(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL, WindowErrorsInWebhook: true})
	c := newClient(t, s, nil)

	s.FailRecipient(customer, 1, whatsapptest.Fault{Code: 131026, Async: true})
	wamid := sendOne(t, s)
	text, err := c.Send(testContext(t), whatsapp.NewTextMessage(customer, "hola"))
	if err != nil {
		t.Fatalf("free-form text with window errors in webhooks: %v", err)
	}
	got := map[string]any{}
	for range 2 {
		st := change(decode(t, rcv.next(t)))["statuses"].(array)[0].(object)
		if st["status"] != "failed" {
			t.Errorf("status %v, want failed", st)
		}
		got[st["id"].(string)] = st["errors"].(array)[0].(object)["code"]
	}
	if diff := cmp.Diff(map[string]any{wamid: 131026.0, text.WAMID(): 131047.0}, got); diff != "" {
		t.Errorf("failure codes by wamid (-want +got):\n%s", diff)
	}
}

func TestSimulatedCustomers(t *testing.T) {
	tests := []struct {
		tapRate float64
		want    object
	}{
		{1, object{"type": "button", "button": object{"payload": "dfl:call-1", "text": "Escribime"}}},
		{0, object{"type": "text", "text": object{"body": "Hola"}}},
	}
	for _, tt := range tests {
		rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
		s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL, Customers: &whatsapptest.Customers{ReplyRate: 1, TapRate: tt.tapRate}})
		wamid := sendOne(t, s)
		msg := change(decode(t, rcv.next(t)))["messages"].(array)[0].(object)
		got := object{"type": msg["type"], tt.want["type"].(string): msg[tt.want["type"].(string)]}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("TapRate %v: answer (-want +got):\n%s", tt.tapRate, diff)
		}
		if ctx, ok := msg["context"].(object); tt.tapRate == 1 && (!ok || ctx["id"] != wamid) {
			t.Errorf("tap context = %v, want the template's wamid %s", msg["context"], wamid)
		}
	}
}
