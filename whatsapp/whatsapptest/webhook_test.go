package whatsapptest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/webhook"
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
	s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL, WindowErrorsInAnswer: true})
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
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL})
	c := newClient(t, s, nil)

	s.FailRecipient(customer, 1, whatsapptest.Fault{Code: 131026, Async: true})
	wamid := sendOne(t, s)
	// Outside the window, as the customer never wrote: accepted, and
	// failed in a webhook, as Meta does by default.
	text, err := c.Send(testContext(t), whatsapp.NewTextMessage(customer, "hola"))
	if err != nil {
		t.Fatalf("free-form text outside the window = %v, want it accepted", err)
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

func TestInboundWebhooks(t *testing.T) {
	type sent struct {
		id, mediaID string
	}
	tests := []struct {
		name string
		send func(ctx context.Context, s *whatsapptest.Server, quoted string) (sent, error)
		// msg is the message object beyond from, id and timestamp; a
		// media object's id and sha256 are checked apart.
		msg func(s *whatsapptest.Server, quoted string) object
		// order is a part of the raw body, in Meta's key order.
		order string
		// parsed is what package webhook reads from it, beyond the ids.
		parsed func(quoted string) whatsapp.Inbound
	}{
		{
			name: "image",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaImage, whatsapptest.MediaSpec{Caption: "la factura"})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "image", "image": object{"caption": "la factura", "mime_type": "image/jpeg"}}
			},
			order: `"timestamp":"1767225600","type":"image","image":{"caption":"la factura","mime_type":"image\/jpeg","sha256":"`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "image", Media: &whatsapp.Media{MimeType: "image/jpeg", Caption: "la factura"}}
			},
		},
		{
			name: "voice note",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaAudio, whatsapptest.MediaSpec{Voice: true, Caption: "dropped"})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "audio", "audio": object{"mime_type": "audio/ogg; codecs=opus", "voice": true}}
			},
			order: `"type":"audio","audio":{"mime_type":"audio\/ogg; codecs=opus","sha256":"`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "audio", Media: &whatsapp.Media{MimeType: "audio/ogg; codecs=opus", Voice: true}}
			},
		},
		{
			name: "audio file",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaAudio, whatsapptest.MediaSpec{MimeType: "audio/mpeg"})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "audio", "audio": object{"mime_type": "audio/mpeg", "voice": false}}
			},
			order: `","voice":false}`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "audio", Media: &whatsapp.Media{MimeType: "audio/mpeg"}}
			},
		},
		{
			name: "video",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaVideo, whatsapptest.MediaSpec{Caption: "así suena"})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "video", "video": object{"caption": "así suena", "mime_type": "video/mp4"}}
			},
			order: `"video":{"caption":"as\u00ed suena","mime_type":"video\/mp4","sha256":"`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "video", Media: &whatsapp.Media{MimeType: "video/mp4", Caption: "así suena"}}
			},
		},
		{
			name: "document",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaDocument,
					whatsapptest.MediaSpec{Caption: "contrato", Filename: "contrato.pdf", Voice: true})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "document", "document": object{"caption": "contrato", "filename": "contrato.pdf", "mime_type": "application/pdf"}}
			},
			order: `"document":{"caption":"contrato","filename":"contrato.pdf","mime_type":"application\/pdf","sha256":"`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "document", Media: &whatsapp.Media{MimeType: "application/pdf", Caption: "contrato", Filename: "contrato.pdf"}}
			},
		},
		{
			name: "sticker",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, media, err := s.SendMedia(ctx, customer, whatsapptest.MediaSticker, whatsapptest.MediaSpec{Animated: true, Caption: "dropped"})
				return sent{id, media}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "sticker", "sticker": object{"mime_type": "image/webp", "animated": true}}
			},
			order: `","animated":true}`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "sticker", Media: &whatsapp.Media{MimeType: "image/webp", Animated: true}}
			},
		},
		{
			name: "reaction",
			send: func(ctx context.Context, s *whatsapptest.Server, quoted string) (sent, error) {
				id, err := s.SendReaction(ctx, customer, quoted, "👍")
				return sent{id: id}, err
			},
			msg: func(_ *whatsapptest.Server, quoted string) object {
				return object{"type": "reaction", "reaction": object{"message_id": quoted, "emoji": "👍"}}
			},
			order: `"timestamp":"1767225600","reaction":{"message_id":"`,
			parsed: func(quoted string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "reaction", Reaction: &whatsapp.Reaction{MessageID: quoted, Emoji: "👍"}}
			},
		},
		{
			name: "reaction removed",
			send: func(ctx context.Context, s *whatsapptest.Server, quoted string) (sent, error) {
				id, err := s.SendReaction(ctx, customer, quoted, "")
				return sent{id: id}, err
			},
			msg: func(_ *whatsapptest.Server, quoted string) object {
				return object{"type": "reaction", "reaction": object{"message_id": quoted, "emoji": ""}}
			},
			order: `"emoji":""},"type":"reaction"}`,
			parsed: func(quoted string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "reaction", Reaction: &whatsapp.Reaction{MessageID: quoted}}
			},
		},
		{
			name: "quoted reply",
			send: func(ctx context.Context, s *whatsapptest.Server, quoted string) (sent, error) {
				id, err := s.SendReply(ctx, customer, quoted, "¿y esto?")
				return sent{id: id}, err
			},
			msg: func(s *whatsapptest.Server, quoted string) object {
				return object{"context": object{"from": s.DisplayPhoneNumber, "id": quoted}, "type": "text", "text": object{"body": "¿y esto?"}}
			},
			order: `"messages":[{"context":{"from":"` + whatsapptest.DefaultDisplayPhoneNumber + `","id":"`,
			parsed: func(quoted string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "text", Text: "¿y esto?", ContextID: quoted}
			},
		},
		{
			name: "location",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, err := s.SendLocation(ctx, customer, -34.6037, -58.3816, "Obelisco", "Av. 9 de Julio s/n")
				return sent{id: id}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "location", "location": object{"latitude": -34.6037, "longitude": -58.3816, "name": "Obelisco", "address": "Av. 9 de Julio s/n"}}
			},
			order: `","location":{"latitude":-34.6037,"longitude":-58.3816,"name":"Obelisco","address":"Av. 9 de Julio s\/n"},"timestamp":"`,
			parsed: func(string) whatsapp.Inbound {
				return whatsapp.Inbound{Type: "location", Location: &whatsapp.Location{Latitude: -34.6037, Longitude: -58.3816, Name: "Obelisco", Address: "Av. 9 de Julio s/n"}}
			},
		},
		{
			name: "unsupported",
			send: func(ctx context.Context, s *whatsapptest.Server, _ string) (sent, error) {
				id, err := s.SendUnsupported(ctx, customer)
				return sent{id: id}, err
			},
			msg: func(*whatsapptest.Server, string) object {
				return object{"type": "unsupported", "errors": array{object{"code": 131051.0, "title": "Message type unknown",
					"message": "Message type unknown", "error_data": object{"details": "Message type is currently not supported."}}}}
			},
			order:  `"errors":[{"code":131051,"title":"Message type unknown",`,
			parsed: func(string) whatsapp.Inbound { return whatsapp.Inbound{Type: "unsupported"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
			s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL, WindowErrorsInAnswer: true})
			quoted := sendOne(t, s)
			got, err := tt.send(testContext(t), s, quoted)
			if err != nil {
				t.Fatalf("send = %v (the receiver checks the signature)", err)
			}
			h := rcv.next(t)
			if !bytes.Contains(h.body, []byte(tt.order)) {
				t.Errorf("body %s does not contain %s", h.body, tt.order)
			}
			v := decode(t, h)
			msgs, _ := change(v)["messages"].(array)
			if len(msgs) != 1 {
				t.Fatalf("webhook %s: want one message", h.body)
			}
			msg := tt.msg(s, quoted)
			msg["from"], msg["id"], msg["timestamp"] = customer, got.id, "1767225600"
			var wantMedia *whatsapp.Media
			if got.mediaID != "" {
				// The media id is numeric like Meta's, and the hash a
				// base64 SHA-256.
				gotMedia := msgs[0].(object)[msg["type"].(string)].(object)
				if _, err := strconv.ParseUint(got.mediaID, 10, 64); err != nil || len(got.mediaID) != 16 || gotMedia["id"] != got.mediaID {
					t.Errorf("media id %q, webhook %v; want the same 16 digits", got.mediaID, gotMedia["id"])
				}
				sum, _ := gotMedia["sha256"].(string)
				if b, err := base64.StdEncoding.DecodeString(sum); err != nil || len(b) != 32 {
					t.Errorf("sha256 %q, want a base64 SHA-256", sum)
				}
				want := msg[msg["type"].(string)].(object)
				want["id"], want["sha256"] = got.mediaID, sum
				wantMedia = &whatsapp.Media{ID: got.mediaID, SHA256: sum}
			}
			want := envelope(s, object{
				"contacts": array{object{"profile": object{"name": "Cliente"}, "wa_id": customer}},
				"messages": array{msg},
			})
			if diff := cmp.Diff(want, v); diff != "" {
				t.Errorf("webhook (-want +got):\n%s", diff)
			}

			// The webhook receiver reads what the fake means.
			n, err := webhook.Parse(h.body)
			if err != nil || len(n.Messages) != 1 {
				t.Fatalf("webhook.Parse() = %+v, %v; want one message", n, err)
			}
			in := n.Messages[0]
			wantIn := tt.parsed(quoted)
			wantIn.ID, wantIn.From, wantIn.ProfileName, wantIn.PhoneNumberID, wantIn.Timestamp = got.id, customer, "Cliente", s.PhoneNumberID, clk.Now().UTC()
			if wantMedia != nil {
				wantIn.Media.ID, wantIn.Media.SHA256 = wantMedia.ID, wantMedia.SHA256
			}
			in.Raw = nil
			if diff := cmp.Diff(wantIn, in); diff != "" {
				t.Errorf("webhook.Parse() mismatch (-want +got):\n%s", diff)
			}

			// Whatever the customer sent, it opened the 24-hour window.
			if _, err := newClient(t, s, nil).Send(testContext(t), whatsapp.NewTextMessage(customer, "Hola")); err != nil {
				t.Errorf("free-form text after the customer's %s: %v", tt.name, err)
			}
		})
	}
}

func TestInboundSendErrors(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	ctx := testContext(t)
	if _, _, err := s.SendMedia(ctx, customer, "gif", whatsapptest.MediaSpec{}); err == nil || errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		t.Errorf("SendMedia(gif) = %v, want an error naming the kind", err)
	}
	for _, c := range [][2]float64{{91, 0}, {0, -181}, {math.NaN(), 0}, {0, math.Inf(1)}} {
		if _, err := s.SendLocation(ctx, customer, c[0], c[1], "", ""); err == nil || errors.Is(err, whatsapptest.ErrNoWebhookURL) {
			t.Errorf("SendLocation(%v, %v) = %v, want an error", c[0], c[1], err)
		}
	}
	if _, err := s.SendUnsupported(ctx, customer, whatsapptest.WithPhoneNumberID("999")); err == nil || errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		t.Errorf("SendUnsupported() to an unknown number = %v, want an error", err)
	}
}
