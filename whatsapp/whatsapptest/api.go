package whatsapptest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// maxRequestBody bounds a request body; Meta's messages are a few KB.
const maxRequestBody = 1 << 20

// versionRE is a Graph API version path segment.
var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// window is the customer-service window a customer's message opens.
const window = 24 * time.Hour

// serveHTTP answers POST /{version}/{phone-number-id}/messages: messages
// and read receipts.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	rec := &Request{Time: s.now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if err != nil {
		s.fail(w, rec, paramError("The request body is too large or could not be read."))
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 3 || !versionRE.MatchString(parts[0]) || parts[2] != "messages" {
		s.fail(w, rec, &failure{status: http.StatusBadRequest, err: apiError{
			Message: "Unknown path components: " + r.URL.Path, Type: "OAuthException", Code: 2500}})
		return
	}
	phoneID := parts[1]
	if r.Method != http.MethodPost {
		s.fail(w, rec, unsupportedRequest(r.Method, phoneID))
		return
	}

	f, delay := s.takeNext()
	if !s.sleep(r.Context(), delay+f.Delay) {
		rec.Outcome = OutcomeCanceled
		s.record(rec, nil)
		return
	}
	switch {
	case f.Drop:
		rec.Outcome = OutcomeDropped
		s.drop(w, rec, nil)
		return
	case f.isError():
		s.fail(w, rec, f.failure())
		return
	}

	res := s.process(r, phoneID, body, rec, f)
	switch {
	case res.canceled:
		rec.Outcome = OutcomeCanceled
		s.record(rec, nil)
	case res.drop:
		rec.Outcome = OutcomeDropped
		s.drop(w, rec, nil)
	case res.lose || f.Lose:
		rec.Outcome = OutcomeLost
		s.drop(w, rec, res.read)
	case res.fail != nil:
		s.fail(w, rec, res.fail)
	default:
		rec.Outcome, rec.Status = OutcomeAccepted, http.StatusOK
		s.record(rec, res.read)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.answer) // a client that went away has nothing to read it
	}
}

// result is what process decided.
type result struct {
	answer   []byte       // the success answer
	read     *ReadReceipt // an accepted read receipt, recorded with its request
	fail     *failure     // or the error to answer
	drop     bool         // close the connection; nothing was processed
	lose     bool         // close the connection instead of answering
	canceled bool         // the client went away during a delay
}

// process checks the request and, if it is a valid message within the
// limits, accepts it. next is the FailNext fault, which may be Async.
// rec.WAMID is set when the message was accepted.
func (s *Server) process(r *http.Request, phoneID string, body []byte, rec *Request, next Fault) result {
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		return result{fail: metaError(190, "")}
	}
	s.mu.Lock()
	ph := s.phones[phoneID]
	s.mu.Unlock()
	if ph == nil {
		return result{fail: unsupportedRequest(r.Method, phoneID)}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		// Graph reads anything else as form parameters and finds none.
		return result{fail: paramError("The parameter messaging_product is required.")}
	}
	b, read, fl := parseRequest(body)
	if fl != nil {
		return result{fail: fl}
	}
	if read != nil {
		return s.processRead(phoneID, read, next)
	}
	to := digits(b.To)
	if to == ph.DisplayPhoneNumber {
		return result{fail: metaError(131021, "")}
	}
	var tpl *Template
	rendered := ""
	if b.Type == "template" {
		tpl = s.templates[b.Template.Name+"\x00"+b.Template.LanguageCode]
		if tpl == nil {
			return result{fail: metaError(132001, fmt.Sprintf("template name (%s) does not exist in %s", b.Template.Name, b.Template.LanguageCode))}
		}
		if rendered, fl = tpl.check(b.Template); fl != nil {
			return result{fail: fl}
		}
	} else {
		rendered = b.Text.Body
	}

	rf, _ := s.takeRecipient(to)
	if !s.sleep(r.Context(), rf.Delay) {
		return result{canceled: true}
	}
	switch {
	case rf.Drop:
		return result{drop: true}
	case rf.isError():
		return result{fail: rf.failure()}
	}
	asyncCode := 0
	switch {
	case rf.Async:
		asyncCode = rf.Code
	case next.Async:
		asyncCode = next.Code
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	key := phoneID + "/" + to
	if b.Type == "text" {
		if last, ok := s.lastInbound[key]; !ok || now.Sub(last) >= window {
			if s.opts.WindowErrorsInAnswer {
				return result{fail: metaError(131047, "")}
			}
			asyncCode = 131047
		}
	}
	// Throughput: a strict sliding window of one second over accepted
	// messages. Times are taken under the lock, so they are in order.
	cut := 0
	for cut < len(ph.window) && !ph.window[cut].After(now.Add(-time.Second)) {
		cut++
	}
	ph.window = ph.window[cut:]
	if len(ph.window) >= ph.MPS {
		return result{fail: metaError(130429, "")}
	}
	if s.opts.PairInterval > 0 {
		if last, ok := s.lastSent[key]; ok && now.Sub(last) < s.opts.PairInterval {
			return result{fail: metaError(131056, "")}
		}
	}

	id := s.newID(phoneID, to)
	ph.window = append(ph.window, now)
	s.lastSent[key] = now
	lose := rf.Lose || next.Lose
	m := Message{WAMID: id, PhoneNumberID: phoneID, Time: now, Raw: body, Body: *b, Rendered: rendered, Lost: lose}
	s.byWAMID[id] = len(s.messages)
	s.messages = append(s.messages, m)
	// Visible to Messages and WaitMessages only once its request is
	// recorded too, so a test that saw the message also sees the request.
	s.pending[id] = true
	rec.WAMID = id
	s.followUp(m, tpl, asyncCode)
	s.notify()

	type contact struct {
		Input string `json:"input"`
		WAID  string `json:"wa_id"`
	}
	type message struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status,omitempty"`
	}
	answer := struct {
		MessagingProduct string    `json:"messaging_product"`
		Contacts         []contact `json:"contacts"`
		Messages         []message `json:"messages"`
	}{"whatsapp", []contact{{b.To, to}}, []message{{ID: id}}}
	if tpl != nil {
		// Meta adds the pacing status to template sends.
		answer.Messages[0].MessageStatus = "accepted"
	}
	out, err := json.Marshal(answer)
	if err != nil {
		panic("whatsapptest: encoding an answer: " + err.Error())
	}
	return result{answer: out, lose: lose}
}

// successAnswer is Meta's answer to an accepted read receipt.
const successAnswer = `{"success":true}`

// processRead accepts a read receipt for a message a customer sent to the
// phone number while the customer's window is open. It does not count
// toward the throughput window: it sends the customer nothing. Recipient
// faults do not apply (there is no recipient); FailNext faults did
// already, and Lose closes the connection after accepting it.
func (s *Server) processRead(phoneID string, rb *readBody, next Fault) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.inboundRefs[rb.MessageID]
	if !ok || ref.phoneID != phoneID {
		return result{fail: metaError(100, fmt.Sprintf("Param message_id: %q is not a message this phone number received.", rb.MessageID))}
	}
	// (?) Meta says marking read can fail once the window has closed; the
	// fake assumes it always does, with the free-form message's 131047.
	now := s.now()
	if last, ok := s.lastInbound[phoneID+"/"+ref.waID]; !ok || now.Sub(last) >= window {
		return result{fail: metaError(131047, "")}
	}
	return result{
		answer: []byte(successAnswer),
		read:   &ReadReceipt{Time: now, PhoneNumberID: phoneID, MessageID: rb.MessageID, Typing: rb.Typing},
		lose:   next.Lose,
	}
}

// fail answers f and records the request.
func (s *Server) fail(w http.ResponseWriter, rec *Request, f *failure) {
	rec.Outcome, rec.Status = OutcomeRejected, f.status
	if !f.noBody {
		rec.Code = f.err.Code
	}
	s.mu.Lock()
	s.seq++
	f.err.FBTraceID = "A" + b64(fmt.Appendf(nil, "%08X%08X", s.salt, s.seq))[:22]
	s.mu.Unlock()
	s.record(rec, nil)
	if f.noBody {
		w.WriteHeader(f.status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`OAuth "Facebook Platform" "invalid_token" %q`, f.err.Message))
	}
	w.WriteHeader(f.status)
	_, _ = w.Write(f.encode())
}

// drop closes the connection without answering, after recording the
// request and its read receipt, if any. Hijacking closes it at once; where
// the connection cannot be hijacked (HTTP/2), aborting the handler resets
// the stream instead.
func (s *Server) drop(w http.ResponseWriter, rec *Request, read *ReadReceipt) {
	s.record(rec, read)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close() // the point is to close it; an error changes nothing
}

// record appends a finished request and the read receipt it carried, if
// any, together: a test that saw the receipt also sees the request.
func (s *Server) record(rec *Request, read *ReadReceipt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, *rec)
	delete(s.pending, rec.WAMID)
	if read != nil {
		s.reads = append(s.reads, *read)
	}
	s.notify()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
