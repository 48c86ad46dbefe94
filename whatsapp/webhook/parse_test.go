package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deflectd/deflectd/whatsapp"
)

const (
	testPhoneID = "106540352242922"
	testWABA    = "102290129340398"
	testFrom    = "5491155551234"
	testTS      = "1767225600" // 2026-01-01T00:00:00Z
)

var testTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// envelope builds a webhook body around change values, as Meta sends it.
func envelopeOf(changes ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry":  []any{map[string]any{"id": testWABA, "changes": changes}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func messagesChange(value map[string]any) map[string]any {
	v := map[string]any{
		"messaging_product": "whatsapp",
		"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": testPhoneID},
	}
	for k, x := range value {
		v[k] = x
	}
	return map[string]any{"field": "messages", "value": v}
}

func contactOf(waID, name string) map[string]any {
	return map[string]any{"profile": map[string]any{"name": name}, "wa_id": waID}
}

// messageBody is a notification of one inbound message m (with from, id
// and timestamp filled in unless m sets them) from testFrom.
func messageBody(id string, m map[string]any) []byte {
	msg := map[string]any{"from": testFrom, "id": id, "timestamp": testTS}
	for k, x := range m {
		msg[k] = x
	}
	return envelopeOf(messagesChange(map[string]any{
		"contacts": []any{contactOf(testFrom, "Ana")},
		"messages": []any{msg},
	}))
}

func textBody(id, text string) []byte {
	return messageBody(id, map[string]any{"type": "text", "text": map[string]any{"body": text}})
}

func statusBody(wamid, status string) []byte {
	return envelopeOf(messagesChange(map[string]any{
		"statuses": []any{map[string]any{"id": wamid, "status": status, "timestamp": testTS, "recipient_id": testFrom}},
	}))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want *Notification
	}{
		{
			name: "text",
			body: textBody("wamid.1", "hola"),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.1", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID,
				Timestamp: testTime, Type: "text", Text: "hola",
			}}},
		},
		{
			name: "quick-reply tap on a template",
			body: messageBody("wamid.2", map[string]any{
				"type":    "button",
				"button":  map[string]any{"payload": "offer:call-1", "text": "Yes, write me"},
				"context": map[string]any{"from": "15550783881", "id": "wamid.template"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.2", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime,
				Type: "button", ButtonPayload: "offer:call-1", ButtonText: "Yes, write me", ContextID: "wamid.template",
			}}},
		},
		{
			name: "interactive button reply",
			body: messageBody("wamid.3", map[string]any{
				"type": "interactive",
				"interactive": map[string]any{"type": "button_reply",
					"button_reply": map[string]any{"id": "callback", "title": "Call me back"}},
				"context": map[string]any{"from": "15550783881", "id": "wamid.sent"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.3", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime,
				Type: "interactive", ButtonPayload: "callback", ButtonText: "Call me back", ContextID: "wamid.sent",
			}}},
		},
		{
			name: "interactive list reply",
			body: messageBody("wamid.4", map[string]any{
				"type": "interactive",
				"interactive": map[string]any{"type": "list_reply",
					"list_reply": map[string]any{"id": "row-2", "title": "Billing", "description": "x"}},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.4", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime,
				Type: "interactive", ButtonPayload: "row-2", ButtonText: "Billing",
			}}},
		},
		{
			name: "image is kept with its type",
			body: messageBody("wamid.5", map[string]any{"type": "image", "image": map[string]any{"id": "media-1", "mime_type": "image/jpeg"}}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.5", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "image",
			}}},
		},
		{
			name: "business-scoped user id from the contact",
			body: envelopeOf(messagesChange(map[string]any{
				"contacts": []any{map[string]any{"profile": map[string]any{"name": "Bea"}, "wa_id": testFrom, "user_id": "AR.1234567890"}},
				"messages": []any{map[string]any{"from": testFrom, "id": "wamid.6", "timestamp": testTS, "type": "text", "text": map[string]any{"body": "hi"}}},
			})),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.6", From: testFrom, UserID: "AR.1234567890", ProfileName: "Bea", PhoneNumberID: testPhoneID,
				Timestamp: testTime, Type: "text", Text: "hi",
			}}},
		},
		{
			name: "username user without a phone number",
			body: envelopeOf(messagesChange(map[string]any{
				"contacts": []any{
					map[string]any{"profile": map[string]any{"name": "Other"}, "user_id": "AR.1"},
					map[string]any{"profile": map[string]any{"name": "Cleo"}, "user_id": "AR.2"},
				},
				"messages": []any{map[string]any{"from_user_id": "AR.2", "id": "wamid.7", "timestamp": testTS, "type": "text", "text": map[string]any{"body": "hi"}}},
			})),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.7", UserID: "AR.2", ProfileName: "Cleo", PhoneNumberID: testPhoneID,
				Timestamp: testTime, Type: "text", Text: "hi",
			}}},
		},
		{
			name: "statuses, one failed with errors, unknown fields ignored",
			body: envelopeOf(messagesChange(map[string]any{
				"statuses": []any{
					map[string]any{"id": "wamid.a", "status": "delivered", "timestamp": testTS, "recipient_id": testFrom,
						"biz_opaque_callback_data": "job-1",
						"conversation":             map[string]any{"id": "c1", "origin": map[string]any{"type": "utility"}},
						"pricing":                  map[string]any{"billable": true, "pricing_model": "PMP", "category": "utility"}},
					map[string]any{"id": "wamid.b", "status": "failed", "timestamp": json.Number("1767225601"), "recipient_id": testFrom,
						"errors": []any{map[string]any{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
							"error_data": map[string]any{"details": "Message Undeliverable."}, "href": "https://developers.facebook.com/"}}},
				},
				"brand_new_field": []any{1, 2, 3},
			})),
			want: &Notification{Statuses: []whatsapp.Status{
				{WAMID: "wamid.a", Status: "delivered", Timestamp: testTime, RecipientID: testFrom,
					BizOpaqueCallbackData: "job-1", PhoneNumberID: testPhoneID},
				{WAMID: "wamid.b", Status: "failed", Timestamp: testTime.Add(time.Second), RecipientID: testFrom, PhoneNumberID: testPhoneID,
					Errors: []whatsapp.StatusError{{Code: 131026, Title: "Message undeliverable", Message: "Message undeliverable", Details: "Message Undeliverable."}}},
			}},
		},
		{
			name: "other fields are counted and ignored",
			body: envelopeOf(
				map[string]any{"field": "account_update", "value": map[string]any{"event": "VERIFIED_ACCOUNT"}},
				map[string]any{"field": "message_template_status_update", "value": "not even an object"},
			),
			want: &Notification{Other: 2},
		},
		{
			name: "several entries",
			body: []byte(`{"object":"whatsapp_business_account","entry":[
				{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"p1"},
					"statuses":[{"id":"w1","status":"sent","timestamp":"` + testTS + `","recipient_id":"1"}]}}]},
				{"id":"2","changes":[{"field":"account_alerts","value":{}},{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"p2"},
					"statuses":[{"id":"w2","status":"read","timestamp":"` + testTS + `","recipient_id":"2"}]}}]}]}`),
			want: &Notification{Other: 1, Statuses: []whatsapp.Status{
				{WAMID: "w1", Status: "sent", Timestamp: testTime, RecipientID: "1", PhoneNumberID: "p1"},
				{WAMID: "w2", Status: "read", Timestamp: testTime, RecipientID: "2", PhoneNumberID: "p2"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.body)
			if err != nil {
				t.Fatalf("Parse() error = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	msg := func(m map[string]any) []byte {
		return envelopeOf(messagesChange(map[string]any{"messages": []any{m}}))
	}
	st := func(s map[string]any) []byte {
		return envelopeOf(messagesChange(map[string]any{"statuses": []any{s}}))
	}
	tests := []struct {
		name string
		body string
		want string // a part of the error message
	}{
		{"empty body", ``, "malformed JSON"},
		{"not JSON", `<html>`, "malformed JSON"},
		{"trailing garbage", `{"object":"whatsapp_business_account","entry":[]} x`, "malformed JSON"},
		{"wrong type", `{"object":"whatsapp_business_account","entry":{}}`, "malformed JSON"},
		{"no object", `{"entry":[]}`, `object is "", want "whatsapp_business_account"`},
		{"other object", `{"object":"page","entry":[{"id":"1","changes":[]}]}`, `object is "page"`},
		{"no entry", `{"object":"whatsapp_business_account"}`, "no entry"},
		{"empty entry", `{"object":"whatsapp_business_account","entry":[]}`, "no entry"},
		{"no changes", `{"object":"whatsapp_business_account","entry":[{"id":"1"}]}`, "entry[0]: no changes"},
		{"no field", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{}}]}]}`, "entry[0].changes[0]: no field"},
		{"messages without value", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages"}]}]}`, "without a value"},
		{"messages value not an object", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":"x"}]}]}`, "entry[0].changes[0].value"},
		{"wrong product", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"instagram","metadata":{"phone_number_id":"1"}}}]}]}`, "messaging_product"},
		{"no phone number id", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{}}}]}]}`, "no metadata.phone_number_id"},
		{"message without id", string(msg(map[string]any{"from": "1", "timestamp": testTS, "type": "text", "text": map[string]any{"body": "x"}})), "messages[0]: no id"},
		{"message without sender", string(msg(map[string]any{"id": "w", "timestamp": testTS, "type": "text", "text": map[string]any{"body": "x"}})), "neither from nor from_user_id"},
		{"message without type", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS})), "no type"},
		{"message without timestamp", string(msg(map[string]any{"id": "w", "from": "1", "type": "text", "text": map[string]any{"body": "x"}})), "no timestamp"},
		{"timestamp not a number", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": "yesterday", "type": "text", "text": map[string]any{"body": "x"}})), "want unix seconds"},
		{"timestamp an object", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": map[string]any{}, "type": "text", "text": map[string]any{"body": "x"}})), "timestamp"},
		{"text without text", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "text"})), "type text without text"},
		{"button without button", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "button"})), "type button without button"},
		{"interactive without interactive", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "interactive"})), "type interactive without interactive"},
		{"button_reply without button_reply", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "interactive", "interactive": map[string]any{"type": "button_reply"}})), "interactive button_reply without button_reply"},
		{"status without id", string(st(map[string]any{"status": "sent", "timestamp": testTS})), "statuses[0]: no id"},
		{"status without status", string(st(map[string]any{"id": "w", "timestamp": testTS})), "statuses[0]: no status"},
		{"status with negative timestamp", string(st(map[string]any{"id": "w", "status": "sent", "timestamp": "-5"})), "want unix seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse(%.80q) = %+v, want an error containing %q", tt.body, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "webhook: ") {
				t.Errorf("Parse(%.80q) error = %q, want it to start with \"webhook: \" and contain %q", tt.body, err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, b := range [][]byte{
		textBody("wamid.1", "hola"),
		textBody("wamid.2", "BAJA"),
		statusBody("wamid.3", "read"),
		messageBody("wamid.4", map[string]any{"type": "button", "button": map[string]any{"payload": "p", "text": "t"},
			"context": map[string]any{"from": "1", "id": "wamid.t"}}),
		messageBody("wamid.5", map[string]any{"type": "interactive", "interactive": map[string]any{"type": "button_reply",
			"button_reply": map[string]any{"id": "i", "title": "t"}}}),
		envelopeOf(messagesChange(map[string]any{"statuses": []any{map[string]any{"id": "w", "status": "failed", "timestamp": testTS,
			"errors": []any{map[string]any{"code": 131026, "title": "t", "error_data": map[string]any{"details": "d"}}}}}})),
		envelopeOf(map[string]any{"field": "account_update", "value": map[string]any{}}),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":null}]}]}`),
		[]byte(`{}`),
		[]byte(`null`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Parse(body)
		if err != nil {
			if n != nil {
				t.Fatalf("Parse() = %+v, %v; want nil with an error", n, err)
			}
			return
		}
		// What Parse accepts, the processor relies on.
		for _, s := range n.Statuses {
			if s.WAMID == "" || s.Status == "" || s.PhoneNumberID == "" {
				t.Fatalf("Parse() accepted an incomplete status %+v", s)
			}
		}
		for _, m := range n.Messages {
			if m.ID == "" || m.Type == "" || m.PhoneNumberID == "" || m.From == "" && m.UserID == "" {
				t.Fatalf("Parse() accepted an incomplete message %+v", m)
			}
		}
	})
}
