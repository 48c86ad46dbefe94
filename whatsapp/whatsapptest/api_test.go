package whatsapptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
	"github.com/google/go-cmp/cmp"
)

// goldenTemplate is the reference's documented request shape, byte for byte,
// with a job id as biz_opaque_callback_data.
const goldenTemplate = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"5491155551234","type":"template",` +
	`"template":{"name":"queue_deflect_v1","language":{"policy":"deterministic","code":"es_AR"},"components":[` +
	`{"type":"body","parameters":[{"type":"text","text":"Facturación"},{"type":"text","text":"7 min"}]},` +
	`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"dfl:call-1"}]}]},` +
	`"biz_opaque_callback_data":"job-1"}`

func TestTemplateAcceptedByteForByte(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, nil)

	res, err := c.Send(testContext(t), deflectMessage(customer, "Facturación"))
	if err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Messages() has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if got := string(m.Raw); got != goldenTemplate {
		t.Errorf("request body =\n%s\nwant\n%s", got, goldenTemplate)
	}
	if res.WAMID() != m.WAMID || !strings.HasPrefix(m.WAMID, "wamid.") {
		t.Errorf("Send().WAMID() = %q, fake recorded %q", res.WAMID(), m.WAMID)
	}
	if want := "Hola, te escribimos por Facturación. Tu espera estimada era de 7 min."; m.Rendered != want {
		t.Errorf("Rendered = %q, want %q", m.Rendered, want)
	}
	if m.Body.Template == nil || m.Body.BizOpaqueCallbackData != "job-1" || m.Body.Template.Components[1].Parameters[0].Payload != "dfl:call-1" {
		t.Errorf("parsed body = %+v", m.Body)
	}
	req := s.Requests()[0]
	wantReq := []string{req.Method, req.Path, req.Header.Get("Authorization"), req.Header.Get("Content-Type"), req.Outcome, fmt.Sprint(req.Status)}
	if diff := cmp.Diff([]string{"POST", "/v25.0/" + s.PhoneNumberID + "/messages", "Bearer " + s.Token, "application/json", "accepted", "200"}, wantReq); diff != "" {
		t.Errorf("recorded request (-want +got):\n%s", diff)
	}
}

func TestSuccessAnswerShape(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	status, body := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", "application/json", goldenTemplate)
	if status != http.StatusOK {
		t.Fatalf("status = %d %s", status, body)
	}
	id := s.Messages()[0].WAMID
	want := `{"messaging_product":"whatsapp","contacts":[{"input":"5491155551234","wa_id":"5491155551234"}],"messages":[{"id":"` + id + `","message_status":"accepted"}]}`
	if body != want {
		t.Errorf("answer =\n%s\nwant\n%s", body, want)
	}

	// A free-form text has no pacing status; "+" in "to" is accepted and
	// echoed as input, with the digits as wa_id.
	s.OpenWindow("", customer)
	status, body = post(t, s, "/v23.0/"+s.PhoneNumberID+"/messages", "application/json",
		`{"messaging_product":"whatsapp","to":"+5491155551234","type":"text","text":{"body":"hola"}}`)
	id = s.Messages()[1].WAMID
	want = `{"messaging_product":"whatsapp","contacts":[{"input":"+5491155551234","wa_id":"5491155551234"}],"messages":[{"id":"` + id + `"}]}`
	if status != http.StatusOK || body != want {
		t.Errorf("text answer = %d %s\nwant 200 %s", status, body, want)
	}
}

// metaErr is Meta's error object as a test reads it.
type metaErr struct {
	Error struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		ErrorData    *struct {
			MessagingProduct string `json:"messaging_product"`
			Details          string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

func decodeErr(t *testing.T, body string) metaErr {
	t.Helper()
	var e metaErr
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Error.FBTraceID == "" || e.Error.Type == "" || e.Error.Message == "" {
		t.Errorf("error body %s lacks message, type or fbtrace_id", body)
	}
	return e
}

func TestValidation(t *testing.T) {
	tpl := func(name, lang, components string) string {
		return `{"messaging_product":"whatsapp","to":"5491155551234","type":"template","template":{"name":"` + name +
			`","language":{"code":"` + lang + `"},"components":[` + components + `]}}`
	}
	body := func(params ...string) string {
		return `{"type":"body","parameters":[` + strings.Join(params, ",") + `]}`
	}
	text := func(s string) string { b, _ := json.Marshal(s); return `{"type":"text","text":` + string(b) + `}` }
	named := func(name, s string) string {
		return `{"type":"text","parameter_name":"` + name + `","text":"` + s + `"}`
	}
	qr := `{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"p"}]}`
	url := `{"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"abc"}]}`

	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        int
	}{
		{"valid positional", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))+","+qr), 200, 0},
		{"quick reply component is optional", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))), 200, 0},
		{"valid named", "", tpl("queue_deflect_named", "es_AR", body(named("wait", "7 min"), named("reason", "x"))+","+url), 200, 0},
		{"too few params", "", tpl("queue_deflect_v1", "es_AR", body(text("a"))), 400, 132000},
		{"too many params", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"), text("c"))), 400, 132000},
		{"no body component", "", tpl("queue_deflect_v1", "es_AR", ""), 400, 132000},
		{"header not in template", "", tpl("queue_deflect_v1", "es_AR", `{"type":"header","parameters":[{"type":"text","text":"h"}]},`+body(text("a"), text("b"))), 400, 132000},
		{"unknown template", "", tpl("nope", "es_AR", ""), 404, 132001},
		{"wrong language", "", tpl("queue_deflect_v1", "es_MX", body(text("a"), text("b"))), 404, 132001},
		{"empty text param", "", tpl("queue_deflect_v1", "es_AR", body(text(""), text("b"))), 400, 131008},
		{"newline in param", "", tpl("queue_deflect_v1", "es_AR", body(text("a\nb"), text("b"))), 400, 132018},
		{"five spaces in param", "", tpl("queue_deflect_v1", "es_AR", body(text("a     b"), text("b"))), 400, 132018},
		{"param too long", "", tpl("queue_deflect_v1", "es_AR", body(text(strings.Repeat("x", 1025)), text("b"))), 400, 132005},
		{"hydrated body too long", "", tpl("queue_deflect_v1", "es_AR", body(text(strings.Repeat("x", 1000)), text("b"))), 400, 132005},
		{"button wrong sub_type", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))+`,{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"x"}]}`), 400, 131009},
		{"button index out of range", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))+`,{"type":"button","sub_type":"quick_reply","index":"3","parameters":[{"type":"payload","payload":"p"}]}`), 400, 131009},
		{"button index not a string", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))+`,{"type":"button","sub_type":"quick_reply","index":0,"parameters":[{"type":"payload","payload":"p"}]}`), 400, 100},
		{"quick reply without parameters", "", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))+`,{"type":"button","sub_type":"quick_reply","index":"0"}`), 400, 132000},
		{"dynamic url button missing", "", tpl("queue_deflect_named", "es_AR", body(named("wait", "7"), named("reason", "x"))), 400, 132000},
		{"named param without name", "", tpl("queue_deflect_named", "es_AR", body(text("a"), text("b"))+","+url), 400, 131008},
		{"named param unknown name", "", tpl("queue_deflect_named", "es_AR", body(named("wait", "7"), named("motive", "x"))+","+url), 400, 131009},
		{"positional param with name", "", tpl("queue_deflect_v1", "es_AR", body(named("a", "a"), text("b"))), 400, 131009},
		{"paused template", "", tpl("paused_v1", "es_AR", ""), 400, 132015},
		{"missing language", "", `{"messaging_product":"whatsapp","to":"5491155551234","type":"template","template":{"name":"queue_deflect_v1"}}`, 400, 131008},
		{"missing messaging_product", "", `{"to":"5491155551234","type":"text","text":{"body":"x"}}`, 400, 100},
		{"wrong messaging_product", "", `{"messaging_product":"sms","to":"5491155551234","type":"text","text":{"body":"x"}}`, 400, 100},
		{"unknown key", "", `{"messaging_product":"whatsapp","to":"5491155551234","type":"text","text":{"body":"x"},"priority":1}`, 400, 100},
		{"key in another case", "", `{"messaging_product":"whatsapp","To":"5491155551234","type":"text","text":{"body":"x"}}`, 400, 100},
		{"duplicate key", "", `{"messaging_product":"whatsapp","to":"5491155551234","to":"5491155551235","type":"text","text":{"body":"x"}}`, 400, 100},
		{"not JSON", "", `{"messaging_product":`, 400, 100},
		{"to not a number", "", `{"messaging_product":"whatsapp","to":"juan","type":"text","text":{"body":"x"}}`, 400, 131009},
		{"to the business itself", "", `{"messaging_product":"whatsapp","to":"15550000001","type":"text","text":{"body":"x"}}`, 400, 131021},
		{"unsupported type", "", `{"messaging_product":"whatsapp","to":"5491155551234","type":"image","image":{"link":"https://x"}}`, 400, 131051},
		{"template and text", "", `{"messaging_product":"whatsapp","to":"5491155551234","type":"template","text":{"body":"x"}}`, 400, 100},
		// Accepted, and failed in a webhook (TestAsyncFailures); see
		// TestWindow for Options.WindowErrorsInAnswer.
		{"text outside the window", "", `{"messaging_product":"whatsapp","to":"5491155551234","type":"text","text":{"body":"x"}}`, 200, 0},
		{"form content type", "application/x-www-form-urlencoded", tpl("queue_deflect_v1", "es_AR", body(text("a"), text("b"))), 400, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, whatsapptest.Options{})
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			status, got := post(t, s, "/v25.0/"+s.PhoneNumberID+"/messages", ct, tt.body)
			if tt.code == 0 {
				if status != tt.status {
					t.Fatalf("POST = %d %s, want %d", status, got, tt.status)
				}
				return
			}
			e := decodeErr(t, got)
			if status != tt.status || e.Error.Code != tt.code {
				t.Errorf("POST = %d code %d (%s), want %d code %d", status, e.Error.Code, got, tt.status, tt.code)
			}
			if tt.code >= 130000 && (e.Error.ErrorData == nil || e.Error.ErrorData.MessagingProduct != "whatsapp" || e.Error.ErrorData.Details == "") {
				t.Errorf("error %s lacks error_data", got)
			}
			if want := fmt.Sprintf("(#%d) ", tt.code); !strings.HasPrefix(e.Error.Message, want) {
				t.Errorf("message = %q, want the %q prefix", e.Error.Message, want)
			}
			if len(s.Messages()) != 0 {
				t.Errorf("a refused request was recorded as a message")
			}
		})
	}
}

func TestWrongParameterCountIsPermanent(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, nil)
	m := deflectMessage(customer, "x")
	m.Template.Components[0].Parameters = m.Template.Components[0].Parameters[:1]

	e := sendErr(t, c, m)
	got := []any{e.HTTPStatus, e.Code, e.Class, e.Message, e.Details}
	want := []any{400, 132000, whatsapp.Permanent, "(#132000) Number of parameters does not match the expected number of params",
		"body: number of localizable_params (1) does not match the expected number of params (2)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Send() error (-want +got):\n%s", diff)
	}
}

func TestBadTokenOpensBreaker(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, func(o *whatsapp.ClientOptions) { o.Token = "stale" })
	e := sendErr(t, c, deflectMessage(customer, "x"))
	if e.HTTPStatus != 401 || e.Code != 190 || e.Class != whatsapp.Breaker || e.Type != "OAuthException" || e.Message != "Invalid OAuth access token." {
		t.Errorf("Send() with a bad token = %+v, want 401 code 190 OAuthException, class breaker", e)
	}

	// The raw answer is Graph's, without error_data.
	status, body := func() (int, string) {
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, s.URL+"/v25.0/"+s.PhoneNumberID+"/messages", strings.NewReader(goldenTemplate))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		return resp.StatusCode, string(b)
	}()
	e2 := decodeErr(t, body)
	if status != 401 || e2.Error.Code != 190 || e2.Error.ErrorData != nil {
		t.Errorf("no token: %d %s, want 401 code 190 without error_data", status, body)
	}
}

func TestPathAndPhoneNumber(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	tests := []struct {
		path         string
		code, subcde int
	}{
		{"/v25.0/999/messages", 100, 33},
		{"/v25/" + whatsapptest.DefaultPhoneNumberID + "/messages", 2500, 0},
		{"/v25.0/" + whatsapptest.DefaultPhoneNumberID + "/message", 2500, 0},
	}
	for _, tt := range tests {
		status, body := post(t, s, tt.path, "application/json", goldenTemplate)
		e := decodeErr(t, body)
		if status != 400 || e.Error.Code != tt.code || e.Error.ErrorSubcode != tt.subcde {
			t.Errorf("POST %s = %d %s, want 400 code %d subcode %d", tt.path, status, body, tt.code, tt.subcde)
		}
	}
	c := newClient(t, s, func(o *whatsapp.ClientOptions) { o.PhoneNumberID = "999" })
	if e := sendErr(t, c, deflectMessage(customer, "x")); e.Code != 100 || e.Class != whatsapp.Permanent {
		t.Errorf("Send() to an unknown phone number id = %+v, want code 100, permanent", e)
	}
}

// sendConcurrently sends n messages at once to distinct recipients and
// returns the errors.
func sendConcurrently(t *testing.T, c *whatsapp.Client, n int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.Send(testContext(t), deflectMessage(fmt.Sprintf("54911%08d", i), "x"))
		})
	}
	wg.Wait()
	return errs
}

// checkThrottled checks that every error is a 130429, retryable.
func checkThrottled(t *testing.T, errs []error) (accepted int) {
	t.Helper()
	for _, err := range errs {
		if err == nil {
			accepted++
			continue
		}
		var e *whatsapp.Error
		if !errors.As(err, &e) || e.Code != 130429 || e.HTTPStatus != 429 || e.Class != whatsapp.Retry {
			t.Errorf("Send() error = %v, want 130429 (429, retry)", err)
		}
	}
	return accepted
}

func TestThroughputWithFakeClock(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now})
	c := newClient(t, s, nil)

	if got := checkThrottled(t, sendConcurrently(t, c, 200)); got != 80 {
		t.Errorf("accepted %d of 200 in one instant, want 80", got)
	}
	clk.Advance(999 * time.Millisecond)
	if got := checkThrottled(t, sendConcurrently(t, c, 5)); got != 0 {
		t.Errorf("accepted %d within the same second, want 0", got)
	}
	// Exactly one second later the first 80 have left the window.
	clk.Advance(time.Millisecond)
	if got := checkThrottled(t, sendConcurrently(t, c, 100)); got != 80 {
		t.Errorf("accepted %d one second later, want 80", got)
	}
	var accepted, throttled int
	for _, r := range s.Requests() {
		switch {
		case r.Outcome == whatsapptest.OutcomeAccepted:
			accepted++
		case r.Code == 130429 && r.Status == 429:
			throttled++
		default:
			t.Errorf("unexpected request outcome %+v", r)
		}
	}
	if accepted != 160 || throttled != 145 {
		t.Errorf("fake's accounting: %d accepted, %d throttled; want 160, 145", accepted, throttled)
	}
}

func TestThroughputWallClock(t *testing.T) {
	const mps = 80
	s := newServer(t, whatsapptest.Options{MPS: mps})
	c := newClient(t, s, nil)
	accepted := checkThrottled(t, sendConcurrently(t, c, 200))

	// However slow the machine, no one-second window holds more than 80
	// accepted messages, by the fake's own clock readings; the first 80
	// can never be refused.
	msgs := s.Messages()
	if len(msgs) != accepted || accepted < mps {
		t.Fatalf("%d accepted, fake recorded %d; want the same, at least %d", accepted, len(msgs), mps)
	}
	times := make([]time.Time, len(msgs))
	for i, m := range msgs {
		times[i] = m.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		if n > mps {
			t.Fatalf("%d messages accepted in the second from %v, want at most %d", n, times[i], mps)
		}
	}
	if got := len(s.Requests()); got != 200 {
		t.Errorf("fake recorded %d requests, want 200", got)
	}
}

func TestPairRateLimit(t *testing.T) {
	clk := newClock()
	s := newServer(t, whatsapptest.Options{Now: clk.Now, PairInterval: 6 * time.Second})
	c := newClient(t, s, nil)
	if _, err := c.Send(testContext(t), deflectMessage(customer, "x")); err != nil {
		t.Fatal(err)
	}
	if e := sendErr(t, c, deflectMessage(customer, "x")); e.Code != 131056 || e.Class != whatsapp.Retry {
		t.Errorf("second message to the same customer = %+v, want 131056, retry", e)
	}
	if _, err := c.Send(testContext(t), deflectMessage("5491155550000", "x")); err != nil {
		t.Errorf("another customer: %v", err)
	}
	clk.Advance(6 * time.Second)
	if _, err := c.Send(testContext(t), deflectMessage(customer, "x")); err != nil {
		t.Errorf("after the pair interval: %v", err)
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		fault  whatsapptest.Fault
		status int
		code   int
		class  whatsapp.Class
	}{
		{whatsapptest.Fault{Status: 500, NoBody: true}, 500, 0, whatsapp.Retry},
		{whatsapptest.Fault{Status: 503}, 503, 2, whatsapp.Retry},
		{whatsapptest.Fault{Code: 131000}, 500, 131000, whatsapp.Retry},
		{whatsapptest.Fault{Code: 130429}, 429, 130429, whatsapp.Retry},
		{whatsapptest.Fault{Code: 131056}, 429, 131056, whatsapp.Retry},
		{whatsapptest.Fault{Code: 132000}, 400, 132000, whatsapp.Permanent},
		{whatsapptest.Fault{Code: 131026}, 400, 131026, whatsapp.Permanent},
		{whatsapptest.Fault{Code: 190}, 401, 190, whatsapp.Breaker},
		{whatsapptest.Fault{Code: 368}, 403, 368, whatsapp.Breaker},
		{whatsapptest.Fault{Code: 131048}, 429, 131048, whatsapp.Breaker},
		{whatsapptest.Fault{Code: 132000, Status: 500}, 500, 132000, whatsapp.Permanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.fault.Status, tt.fault.Code), func(t *testing.T) {
			s := newServer(t, whatsapptest.Options{})
			c := newClient(t, s, nil)
			s.FailNext(2, tt.fault)
			for range 2 {
				e := sendErr(t, c, deflectMessage(customer, "x"))
				if e.HTTPStatus != tt.status || e.Code != tt.code || e.Class != tt.class || e.InDoubt {
					t.Errorf("Send() = %d code %d %v (in doubt %v), want %d code %d %v",
						e.HTTPStatus, e.Code, e.Class, e.InDoubt, tt.status, tt.code, tt.class)
				}
			}
			if _, err := c.Send(testContext(t), deflectMessage(customer, "x")); err != nil {
				t.Errorf("third Send() = %v, want the fault used up", err)
			}
		})
	}
}

func TestFailNextForeverAndClear(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, nil)
	s.FailNext(whatsapptest.Forever, whatsapptest.Fault{Code: 190})
	for range 3 {
		if e := sendErr(t, c, deflectMessage(customer, "x")); e.Code != 190 {
			t.Fatalf("Send() = %v, want 190", e)
		}
	}
	s.ClearFaults()
	if _, err := c.Send(testContext(t), deflectMessage(customer, "x")); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestFailRecipient(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, nil)
	const landline = "541143211234"
	s.FailRecipient("+54 11 4321-1234", 1, whatsapptest.Fault{Code: 131026})

	if _, err := c.Send(testContext(t), deflectMessage(customer, "x")); err != nil {
		t.Fatalf("another recipient: %v", err)
	}
	if e := sendErr(t, c, deflectMessage(landline, "x")); e.Code != 131026 || e.Class != whatsapp.Permanent {
		t.Errorf("Send() = %+v, want 131026, permanent", e)
	}
	if _, err := c.Send(testContext(t), deflectMessage(landline, "x")); err != nil {
		t.Errorf("second send after a one-time fault: %v", err)
	}

	s.FailRecipient(landline, whatsapptest.Forever, whatsapptest.Fault{Code: 131026})
	for range 2 {
		if e := sendErr(t, c, deflectMessage(landline, "x")); e.Code != 131026 {
			t.Errorf("Send() = %+v, want 131026", e)
		}
	}
	// A recipient fault applies only to valid messages.
	bad := deflectMessage(landline, "x")
	bad.Template.Name = "nope"
	if e := sendErr(t, c, bad); e.Code != 132001 {
		t.Errorf("invalid message to a failing recipient = %+v, want 132001", e)
	}
	s.FailRecipient(landline, 0, whatsapptest.Fault{})
	if _, err := c.Send(testContext(t), deflectMessage(landline, "x")); err != nil {
		t.Errorf("after removing the rule: %v", err)
	}
}

func TestDroppedConnectionIsInDoubt(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, nil)
	s.FailNext(1, whatsapptest.Fault{Drop: true})

	e := sendErr(t, c, deflectMessage(customer, "x"))
	if !e.InDoubt || e.Class != whatsapp.Retry || e.HTTPStatus != 0 {
		t.Errorf("Send() = %+v, want in doubt, retry, no status", e)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("a dropped request was sent (%d messages)", n)
	}
	if r := s.Requests(); len(r) != 1 || r[0].Outcome != whatsapptest.OutcomeDropped || len(r[0].Body) == 0 {
		t.Errorf("Requests() = %+v, want one dropped after its body was read", r)
	}
}

func TestLostAnswerIsInDoubtButSent(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{WebhookURL: rcv.URL, AutoStatus: &whatsapptest.AutoStatus{Statuses: []string{"sent"}}})
	c := newClient(t, s, nil)
	s.FailNext(1, whatsapptest.Fault{Lose: true})

	m := deflectMessage(customer, "x")
	m.BizOpaqueCallbackData = "job-7"
	e := sendErr(t, c, m)
	if !e.InDoubt || e.Class != whatsapp.Retry {
		t.Errorf("Send() = %+v, want in doubt, retry", e)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !msgs[0].Lost {
		t.Fatalf("Messages() = %+v, want one lost message", msgs)
	}
	if r := s.Requests()[0]; r.Outcome != whatsapptest.OutcomeLost || r.WAMID != msgs[0].WAMID || r.Status != 0 {
		t.Errorf("request = %+v, want lost with the wamid", r)
	}
	// Only the status webhook can resolve the doubt: it names the job.
	var n struct {
		Entry []struct {
			Changes []struct {
				Value struct {
					Statuses []struct {
						ID                    string `json:"id"`
						BizOpaqueCallbackData string `json:"biz_opaque_callback_data"`
					} `json:"statuses"`
				} `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(rcv.next(t).body, &n); err != nil {
		t.Fatal(err)
	}
	st := n.Entry[0].Changes[0].Value.Statuses[0]
	if st.ID != msgs[0].WAMID || st.BizOpaqueCallbackData != "job-7" {
		t.Errorf("status = %+v, want wamid %s with job-7", st, msgs[0].WAMID)
	}
}

func TestSlowAnswerHonoursContext(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	c := newClient(t, s, func(o *whatsapp.ClientOptions) { o.Timeout = 50 * time.Millisecond })
	s.SetDelay(time.Hour)

	e := sendErr(t, c, deflectMessage(customer, "x"))
	if !e.InDoubt || e.Class != whatsapp.Retry {
		t.Errorf("Send() = %+v, want in doubt, retry", e)
	}
	reqs, err := s.WaitRequests(testContext(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if reqs[0].Outcome != whatsapptest.OutcomeCanceled || len(s.Messages()) != 0 {
		t.Errorf("request = %+v with %d messages, want canceled and nothing sent", reqs[0], len(s.Messages()))
	}

	// A delayed fault answers after its delay.
	s.SetDelay(0)
	s.FailNext(1, whatsapptest.Fault{Delay: time.Millisecond, Code: 131000})
	if e := sendErr(t, newClient(t, s, nil), deflectMessage(customer, "x")); e.Code != 131000 {
		t.Errorf("delayed fault = %+v, want 131000", e)
	}
}

func TestWindow(t *testing.T) {
	clk := newClock()
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := newServer(t, whatsapptest.Options{Now: clk.Now, WebhookURL: rcv.URL, WindowErrorsInAnswer: true})
	c := newClient(t, s, nil)
	reply := whatsapp.NewTextMessage(customer, "Hola, soy Ana de Facturación")

	if e := sendErr(t, c, reply); e.Code != 131047 || e.Class != whatsapp.Permanent {
		t.Errorf("free-form text before the customer wrote = %+v, want 131047, permanent", e)
	}
	if _, err := s.SendText(testContext(t), customer, "hola"); err != nil {
		t.Fatal(err)
	}
	rcv.next(t)
	if _, err := c.Send(testContext(t), reply); err != nil {
		t.Errorf("free-form text inside the window: %v", err)
	}
	clk.Advance(24 * time.Hour)
	if e := sendErr(t, c, reply); e.Code != 131047 {
		t.Errorf("free-form text 24 h later = %+v, want 131047", e)
	}
}

func TestWaitMessagesHonoursContext(t *testing.T) {
	s := newServer(t, whatsapptest.Options{})
	ctx := testContext(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.WaitMessages(ctx, 1)
		done <- err
	}()
	if _, err := newClient(t, s, nil).Send(ctx, deflectMessage(customer, "x")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("WaitMessages() = %v after a send", err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WaitMessages(canceled, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitMessages() with a canceled context = %v, want context.Canceled", err)
	}
}

func TestCloseEndsPendingWork(t *testing.T) {
	rcv := newReceiver(t, whatsapptest.DefaultAppSecret)
	s := whatsapptest.NewServer(whatsapptest.Options{
		Templates:  []whatsapptest.Template{deflectTemplate},
		WebhookURL: rcv.URL,
		AutoStatus: &whatsapptest.AutoStatus{Interval: time.Hour},
	})
	if _, err := newClient(t, s, nil).Send(testContext(t), deflectMessage(customer, "x")); err != nil {
		t.Fatal(err)
	}
	s.Close() // must not wait an hour
	if d := s.Deliveries(); len(d) != 0 {
		t.Errorf("Deliveries() = %d, want none before the interval", len(d))
	}
}
