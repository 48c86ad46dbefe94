package whatsapptest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// FuzzMessagesEndpoint feeds arbitrary bodies to the handler: the fake must
// never panic, and must answer an accepted message, an accepted read
// receipt, or Meta's error object with a code.
func FuzzMessagesEndpoint(f *testing.F) {
	f.Add(goldenTemplate)
	f.Add(`{"messaging_product":"whatsapp","to":"5491155551234","type":"text","text":{"body":"hola"}}`)
	f.Add(`{"messaging_product":"whatsapp","to":"5491155551234","type":"template","template":{"name":"queue_deflect_named","language":{"code":"es_AR"},"components":[{"type":"body","parameters":[{"type":"currency","parameter_name":"reason","currency":{"fallback_value":"$1","code":"ARS","amount_1000":1000}},{"type":"text","parameter_name":"wait","text":"x"}]},{"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"a"}]}]}}`)
	f.Add(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`)
	f.Add(`{"a":1}{"b":2}`)
	s := whatsapptest.New(whatsapptest.Options{Templates: []whatsapptest.Template{deflectTemplate, namedTemplate, pausedTemplate}, MPS: 1 << 30})
	f.Cleanup(s.Close)
	h := s.Handler()
	// A customer's message to mark read; without a webhook URL only the
	// delivery fails.
	inbound, err := s.SendText(context.Background(), customer, "hola")
	if inbound == "" {
		f.Fatalf("SendText() = %v", err)
	}
	read := func(extra string) string {
		return `{"messaging_product":"whatsapp","status":"read","message_id":"` + inbound + `"` + extra + `}`
	}
	f.Add(read(""))
	f.Add(read(`,"typing_indicator":{"type":"text"}`))
	f.Add(read(`,"typing_indicator":{"type":"audio"}`))
	f.Add(read(`,"to":"5491155551234"`))
	f.Add(`{"messaging_product":"whatsapp","status":"read","message_id":"wamid.unknown"}`)
	f.Add(`{"messaging_product":"whatsapp","status":"delivered","message_id":"` + inbound + `"}`)
	f.Add(`{"messaging_product":"whatsapp","status":"read"}`)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v25.0/"+s.PhoneNumberID+"/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var answer struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
			Success bool `json:"success"`
			Error   *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %d %q is not JSON: %v", w.Code, w.Body, err)
		}
		switch {
		case w.Code == http.StatusOK && len(answer.Messages) == 1 && answer.Messages[0].ID != "":
		case w.Code == http.StatusOK && answer.Success && w.Body.String() == `{"success":true}`:
		case w.Code >= 400 && answer.Error != nil && answer.Error.Code != 0:
		default:
			t.Fatalf("answer %d %s is neither a wamid, a read receipt's success nor a Meta error", w.Code, w.Body)
		}
	})
}
