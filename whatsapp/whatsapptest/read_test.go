package whatsapptest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// readBody is a mark-as-read request for wamid.
func readBody(wamid, extra string) string {
	return `{"messaging_product":"whatsapp","status":"read","message_id":"` + wamid + `"` + extra + `}`
}

// inboundID has the customer write to the fake (no webhook URL is
// needed: the message is made up either way) and returns its wamid.
func inboundID(t *testing.T, s *whatsapptest.Server, opts ...whatsapptest.WebhookOption) string {
	t.Helper()
	id, err := s.SendText(testContext(t), customer, "hola", opts...)
	if err != nil && !errors.Is(err, whatsapptest.ErrNoWebhookURL) {
		t.Fatal(err)
	}
	return id
}

func TestReadReceiptAccepted(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now})
	id := inboundID(t, s)
	path := "/v25.0/" + s.PhoneNumberID + "/messages"

	for _, extra := range []string{"", `,"typing_indicator":{"type":"text"}`} {
		status, body := post(t, s, path, "application/json", readBody(id, extra))
		if status != http.StatusOK || body != `{"success":true}` {
			t.Errorf("POST %s = %d %s, want 200 {\"success\":true}", readBody(id, extra), status, body)
		}
	}
	want := []whatsapptest.ReadReceipt{
		{Time: clk.Now(), PhoneNumberID: s.PhoneNumberID, MessageID: id},
		{Time: clk.Now(), PhoneNumberID: s.PhoneNumberID, MessageID: id, Typing: true},
	}
	if diff := cmp.Diff(want, s.Reads()); diff != "" {
		t.Errorf("Reads() mismatch (-want +got):\n%s", diff)
	}
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("Messages() = %+v, want none: a read receipt is not a message", got)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Outcome != whatsapptest.OutcomeAccepted || reqs[0].Status != 200 || reqs[0].WAMID != "" ||
		string(reqs[1].Body) != readBody(id, `,"typing_indicator":{"type":"text"}`) {
		t.Errorf("Requests() = %+v, want both receipts, accepted, without a wamid of their own", reqs)
	}
}

func TestReadReceiptValidation(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now, PhoneNumbers: []whatsapptest.PhoneNumber{
		{ID: whatsapptest.DefaultPhoneNumberID, DisplayPhoneNumber: whatsapptest.DefaultDisplayPhoneNumber},
		{ID: "100000000000002", DisplayPhoneNumber: "15550000002"},
	}})
	id := inboundID(t, s)
	otherNumber := inboundID(t, s, whatsapptest.WithPhoneNumberID("100000000000002"))
	sent := sendOne(t, s) // the business's own message, not the customer's

	tests := []struct {
		name   string
		body   string
		status int
		code   int
	}{
		{"unknown key", readBody(id, `,"to":"`+customer+`"`), 400, 100},
		{"key in another case", `{"messaging_product":"whatsapp","Status":"read","status":"read","message_id":"` + id + `"}`, 400, 100},
		{"not read", `{"messaging_product":"whatsapp","status":"delivered","message_id":"` + id + `"}`, 400, 100},
		{"status not a string", `{"messaging_product":"whatsapp","status":true,"message_id":"` + id + `"}`, 400, 100},
		{"no messaging_product", `{"status":"read","message_id":"` + id + `"}`, 400, 100},
		{"wrong messaging_product", `{"messaging_product":"sms","status":"read","message_id":"` + id + `"}`, 400, 100},
		{"no message_id", `{"messaging_product":"whatsapp","status":"read"}`, 400, 100},
		{"empty message_id", readBody("", ""), 400, 100},
		{"message_id not a string", `{"messaging_product":"whatsapp","status":"read","message_id":7}`, 400, 100},
		{"typing_indicator not an object", readBody(id, `,"typing_indicator":"text"`), 400, 100},
		{"typing_indicator without type", readBody(id, `,"typing_indicator":{}`), 400, 100},
		{"typing_indicator of another type", readBody(id, `,"typing_indicator":{"type":"audio"}`), 400, 100},
		{"typing_indicator with another key", readBody(id, `,"typing_indicator":{"type":"text","ttl":5}`), 400, 100},
		{"a message id never issued", readBody("wamid.nope", ""), 400, 100},
		{"the business's own message", readBody(sent, ""), 400, 100},
		{"a message to another number", readBody(otherNumber, ""), 400, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", tt.body)
			e := decodeErr(t, got)
			if status != tt.status || e.Error.Code != tt.code || !strings.HasPrefix(e.Error.Message, "(#100) ") {
				t.Errorf("POST %s = %d %s, want %d code %d", tt.body, status, got, tt.status, tt.code)
			}
		})
	}
	// The message to the other number can be marked read there.
	if status, got := post(t, s, "/v25.0/100000000000002/messages", "application/json", readBody(otherNumber, "")); status != 200 {
		t.Errorf("read receipt on the number the message went to = %d %s, want 200", status, got)
	}
	if got := len(s.Reads()); got != 1 {
		t.Errorf("Reads() has %d receipts, want only the valid one", got)
	}
}

func TestReadReceiptWindow(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now})
	old := inboundID(t, s)
	clk.Advance(24 * time.Hour)
	status, body := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", readBody(old, ""))
	if e := decodeErr(t, body); status != 400 || e.Error.Code != 131047 || e.Error.ErrorData == nil {
		t.Errorf("read receipt 24 h after the customer wrote = %d %s, want 400 code 131047", status, body)
	}
	// The customer writes again: the window is open, and the old message
	// can be marked read too (which Meta does for every earlier one).
	inboundID(t, s)
	if status, body := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", readBody(old, "")); status != 200 {
		t.Errorf("read receipt after the customer wrote again = %d %s, want 200", status, body)
	}
}

func TestReadReceiptsOutsideThroughput(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now, MPS: 1})
	id := inboundID(t, s)
	sendOne(t, s) // uses up this second
	for range 3 {
		if status, body := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", readBody(id, "")); status != 200 {
			t.Fatalf("read receipt with the throughput used up = %d %s, want 200", status, body)
		}
	}
	if e := sendErr(t, newClient(t, s, nil), deflectMessage(customer, "x")); e.Code != 130429 {
		t.Errorf("second message in the second = %+v, want 130429", e)
	}
	clk.Advance(time.Second)
	// Nor do read receipts fill the next second.
	sendOne(t, s)
}

func TestWaitReads(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	id := inboundID(t, s)
	ctx := testContext(t)
	done := make(chan []whatsapptest.ReadReceipt, 1)
	go func() {
		r, err := s.WaitReads(ctx, 1)
		if err != nil {
			t.Errorf("WaitReads() = %v", err)
		}
		done <- r
	}()
	if status, body := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", readBody(id, "")); status != 200 {
		t.Fatalf("read receipt = %d %s", status, body)
	}
	if r := <-done; len(r) != 1 || r[0].MessageID != id {
		t.Errorf("WaitReads() = %+v, want the receipt of %s", r, id)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WaitReads(canceled, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReads() with a canceled context = %v, want context.Canceled", err)
	}
}
