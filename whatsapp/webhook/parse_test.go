package webhook

import (
	"bytes"
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
			name: "quoted reply",
			body: messageBody("wamid.q", map[string]any{
				"type":    "text",
				"text":    map[string]any{"body": "¿y esto?"},
				"context": map[string]any{"from": "15550783881", "id": "wamid.agent"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.q", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime,
				Type: "text", Text: "¿y esto?", ContextID: "wamid.agent",
			}}},
		},
		{
			name: "image with a caption, quoting a message",
			body: messageBody("wamid.5", map[string]any{
				"type":    "image",
				"image":   map[string]any{"caption": "la factura", "mime_type": "image/jpeg", "sha256": "gUaTCqy9Yw1rDsGQ4BN0BPFRRZ/E9m9ZkvBh4uLGMy8=", "id": "1234567890123456", "url": "https://lookaside.fbsbx.com/x"},
				"context": map[string]any{"from": "15550783881", "id": "wamid.agent"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.5", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "image",
				ContextID: "wamid.agent",
				Media:     &whatsapp.Media{ID: "1234567890123456", MimeType: "image/jpeg", SHA256: "gUaTCqy9Yw1rDsGQ4BN0BPFRRZ/E9m9ZkvBh4uLGMy8=", Caption: "la factura"},
			}}},
		},
		{
			name: "voice note",
			body: messageBody("wamid.a", map[string]any{
				"type":  "audio",
				"audio": map[string]any{"mime_type": "audio/ogg; codecs=opus", "sha256": "s", "id": "2", "voice": true},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.a", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "audio",
				Media: &whatsapp.Media{ID: "2", MimeType: "audio/ogg; codecs=opus", SHA256: "s", Voice: true},
			}}},
		},
		{
			name: "video",
			body: messageBody("wamid.v", map[string]any{
				"type":  "video",
				"video": map[string]any{"caption": "así hace el ruido", "mime_type": "video/mp4", "sha256": "s", "id": "3"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.v", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "video",
				Media: &whatsapp.Media{ID: "3", MimeType: "video/mp4", SHA256: "s", Caption: "así hace el ruido"},
			}}},
		},
		{
			name: "document",
			body: messageBody("wamid.d", map[string]any{
				"type":     "document",
				"document": map[string]any{"caption": "contrato", "filename": "contrato.pdf", "mime_type": "application/pdf", "sha256": "s", "id": "4"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.d", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "document",
				Media: &whatsapp.Media{ID: "4", MimeType: "application/pdf", SHA256: "s", Caption: "contrato", Filename: "contrato.pdf"},
			}}},
		},
		{
			name: "animated sticker",
			body: messageBody("wamid.st", map[string]any{
				"type":    "sticker",
				"sticker": map[string]any{"mime_type": "image/webp", "sha256": "s", "id": "5", "animated": true},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.st", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "sticker",
				Media: &whatsapp.Media{ID: "5", MimeType: "image/webp", SHA256: "s", Animated: true},
			}}},
		},
		{
			name: "reaction",
			body: messageBody("wamid.re", map[string]any{
				"type":     "reaction",
				"reaction": map[string]any{"message_id": "wamid.agent", "emoji": "👍"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.re", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "reaction",
				Reaction: &whatsapp.Reaction{MessageID: "wamid.agent", Emoji: "👍"},
			}}},
		},
		{
			name: "reaction removed",
			body: messageBody("wamid.re2", map[string]any{
				"type":     "reaction",
				"reaction": map[string]any{"message_id": "wamid.agent"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.re2", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "reaction",
				Reaction: &whatsapp.Reaction{MessageID: "wamid.agent"},
			}}},
		},
		{
			name: "location",
			body: messageBody("wamid.l", map[string]any{
				"type": "location",
				"location": map[string]any{"latitude": -34.6037, "longitude": -58.3816,
					"name": "Obelisco", "address": "Av. 9 de Julio s/n, CABA"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.l", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "location",
				Location: &whatsapp.Location{Latitude: -34.6037, Longitude: -58.3816, Name: "Obelisco", Address: "Av. 9 de Julio s/n, CABA"},
			}}},
		},
		{
			name: "location with coordinates as strings and no name",
			body: messageBody("wamid.l2", map[string]any{
				"type":     "location",
				"location": map[string]any{"latitude": "-34.5", "longitude": "0"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.l2", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "location",
				Location: &whatsapp.Location{Latitude: -34.5},
			}}},
		},
		{
			name: "contacts",
			body: messageBody("wamid.c", map[string]any{
				"type": "contacts",
				"contacts": []any{
					map[string]any{"name": map[string]any{"formatted_name": "Juan Pérez", "first_name": "Juan"},
						"phones": []any{map[string]any{"phone": "+54 9 11 5555-0000", "wa_id": "5491155550000", "type": "CELL"}}},
					map[string]any{"phones": []any{map[string]any{"phone": "+54 11 4321-1234"}}},
				},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.c", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "contacts",
				Contacts: []string{"Juan Pérez", ""},
			}}},
		},
		{
			name: "unsupported",
			body: messageBody("wamid.u", map[string]any{
				"type": "unsupported",
				"errors": []any{map[string]any{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
					"error_data": map[string]any{"details": "Message type is currently not supported."}}},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.u", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "unsupported",
			}}},
		},
		{
			name: "a type Meta adds later",
			body: messageBody("wamid.f", map[string]any{
				"type":     "hologram",
				"hologram": map[string]any{"id": "6"},
				"context":  map[string]any{"id": "wamid.agent"},
			}),
			want: &Notification{Messages: []whatsapp.Inbound{{
				ID: "wamid.f", From: testFrom, ProfileName: "Ana", PhoneNumberID: testPhoneID, Timestamp: testTime, Type: "hologram",
				ContextID: "wamid.agent",
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
			// Raw is each message as sent: a part of the body that
			// decodes to an object with the message's id. Its exact bytes
			// are TestParseRaw's.
			for i := range got.Messages {
				m := &got.Messages[i]
				var id struct{ ID string }
				if err := json.Unmarshal(m.Raw, &id); err != nil || id.ID != m.ID || !bytes.Contains(tt.body, m.Raw) {
					t.Errorf("Parse().Messages[%d].Raw = %s, want the message %s as it is in the body", i, m.Raw, m.ID)
				}
				m.Raw = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRaw(t *testing.T) {
	// Two messages as Meta encodes them (escaped non-ASCII and "/"), with
	// whitespace Meta does not send: Raw keeps every byte of each.
	first := `{"from":"5491155551234","id":"wamid.r1","timestamp":"1767225600","text":{"body":"Facturaci\u00f3n \/ 2"},"type":"text"}`
	second := `{ "from" : "5491155551234", "id": "wamid.r2", "timestamp": "1767225600", "type": "sticker",
		"sticker": {"mime_type": "image\/webp", "sha256": "a+b\/c=", "id": "77", "animated": false} }`
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp",` +
		`"metadata":{"display_phone_number":"15550783881","phone_number_id":"` + testPhoneID + `"},` +
		`"messages":[` + first + `,` + second + `]},"field":"messages"}]}]}`
	n, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	var got []string
	for _, m := range n.Messages {
		got = append(got, string(m.Raw))
	}
	if diff := cmp.Diff([]string{first, second}, got); diff != "" {
		t.Errorf("Parse() Raw mismatch (-want +got):\n%s", diff)
	}
	if got, want := n.Messages[0].Text, "Facturación / 2"; got != want {
		t.Errorf("Parse() Text = %q, want %q", got, want)
	}
	if got, want := n.Messages[1].Media, (&whatsapp.Media{ID: "77", MimeType: "image/webp", SHA256: "a+b/c="}); !cmp.Equal(got, want) {
		t.Errorf("Parse() Media = %+v, want %+v", got, want)
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
		{"image without image", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "image"})), "type image without image"},
		{"image without id", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "image", "image": map[string]any{"mime_type": "image/jpeg"}})), "image without id"},
		{"audio in the wrong object", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "audio", "voice": map[string]any{"id": "1"}})), "type audio without audio"},
		{"video without id", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "video", "video": map[string]any{}})), "video without id"},
		{"document without document", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "document", "image": map[string]any{"id": "1"}})), "type document without document"},
		{"sticker without sticker", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "sticker"})), "type sticker without sticker"},
		{"media id not a string", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "image", "image": map[string]any{"id": 5}})), "messages[0]"},
		{"reaction without reaction", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "reaction"})), "type reaction without reaction"},
		{"reaction without message_id", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "reaction", "reaction": map[string]any{"emoji": "👍"}})), "reaction without message_id"},
		{"location without location", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "location"})), "type location without location"},
		{"latitude not a number", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "location", "location": map[string]any{"latitude": "north"}})), "coordinate"},
		{"contacts without contacts", string(msg(map[string]any{"id": "w", "from": "1", "timestamp": testTS, "type": "contacts"})), "type contacts without contacts"},
		{"message not an object", string(envelopeOf(messagesChange(map[string]any{"messages": []any{"wamid.1"}}))), "messages[0]"},
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
		messageBody("wamid.6", map[string]any{"type": "text", "text": map[string]any{"body": "y?"}, "context": map[string]any{"from": "1", "id": "wamid.a"}}),
		messageBody("wamid.7", map[string]any{"type": "image", "image": map[string]any{"caption": "c", "mime_type": "image/jpeg", "sha256": "s", "id": "1"}}),
		messageBody("wamid.8", map[string]any{"type": "audio", "audio": map[string]any{"mime_type": "audio/ogg", "sha256": "s", "id": "2", "voice": true}}),
		messageBody("wamid.9", map[string]any{"type": "video", "video": map[string]any{"mime_type": "video/mp4", "id": "3"}}),
		messageBody("wamid.10", map[string]any{"type": "document", "document": map[string]any{"filename": "f.pdf", "mime_type": "application/pdf", "id": "4"}}),
		messageBody("wamid.11", map[string]any{"type": "sticker", "sticker": map[string]any{"mime_type": "image/webp", "id": "5", "animated": true}}),
		messageBody("wamid.12", map[string]any{"type": "reaction", "reaction": map[string]any{"message_id": "wamid.a", "emoji": "👍"}}),
		messageBody("wamid.13", map[string]any{"type": "reaction", "reaction": map[string]any{"message_id": "wamid.a", "emoji": ""}}),
		messageBody("wamid.14", map[string]any{"type": "location", "location": map[string]any{"latitude": -34.6, "longitude": "-58.4", "name": "n", "address": "a"}}),
		messageBody("wamid.15", map[string]any{"type": "contacts", "contacts": []any{map[string]any{"name": map[string]any{"formatted_name": "J"},
			"phones": []any{map[string]any{"phone": "+1", "wa_id": "1"}}}}}),
		messageBody("wamid.16", map[string]any{"type": "unsupported", "errors": []any{map[string]any{"code": 131051, "title": "Message type unknown"}}}),
		messageBody("wamid.17", map[string]any{"type": "order", "order": map[string]any{"catalog_id": "1"}}),
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
			// Nothing inbound is lost: Raw is the message from the body.
			if !json.Valid(m.Raw) || !bytes.Contains(body, m.Raw) {
				t.Fatalf("Parse() Raw = %q, want a JSON value from the body", m.Raw)
			}
			switch m.Type {
			case whatsapp.InboundImage, whatsapp.InboundAudio, whatsapp.InboundVideo, whatsapp.InboundDocument, whatsapp.InboundSticker:
				if m.Media == nil || m.Media.ID == "" {
					t.Fatalf("Parse() accepted %s without a media id: %+v", m.Type, m)
				}
			case whatsapp.InboundReaction:
				if m.Reaction == nil || m.Reaction.MessageID == "" {
					t.Fatalf("Parse() accepted a reaction without its message: %+v", m)
				}
			case whatsapp.InboundLocation:
				if m.Location == nil {
					t.Fatalf("Parse() accepted a location without one: %+v", m)
				}
			case whatsapp.InboundContacts:
				if m.Contacts == nil {
					t.Fatalf("Parse() accepted contacts without cards: %+v", m)
				}
			}
		}
	})
}
