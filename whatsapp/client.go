package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientOptions configures a Client. PhoneNumberID and Token are required.
type ClientOptions struct {
	// BaseURL is the Graph API root. Default https://graph.facebook.com;
	// tests and the demo point it at whatsapptest.
	BaseURL string
	// Version is the Graph API version, e.g. v25.0 (the default).
	Version string
	// PhoneNumberID is the business phone number's id (not the number).
	PhoneNumberID string
	// Token is the system-user access token. It is sent as a bearer token
	// and never logged or put in an error.
	Token string
	// Timeout bounds one request (a send or a read receipt). Default 10 s.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client of its own.
	HTTPClient *http.Client
}

// DefaultVersion is the Graph API version used when none is configured.
const DefaultVersion = "v25.0"

// Client sends messages, and read receipts, from one business phone
// number. It is safe for concurrent use. It makes exactly one attempt per
// call: retries, rate limits and deduplication belong to the outbox, which
// knows what was already sent.
type Client struct {
	opts     ClientOptions
	endpoint string
}

// NewClient validates opts and returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.PhoneNumberID == "" || opts.Token == "" {
		return nil, errors.New("whatsapp: ClientOptions.PhoneNumberID and Token are required")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = "https://graph.facebook.com"
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if !strings.HasPrefix(opts.Version, "v") {
		return nil, fmt.Errorf("whatsapp: ClientOptions.Version %q: want a Graph API version such as %s", opts.Version, DefaultVersion)
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("whatsapp: ClientOptions.BaseURL %q: want an http(s) URL", opts.BaseURL)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	return &Client{
		opts:     opts,
		endpoint: strings.TrimSuffix(opts.BaseURL, "/") + "/" + opts.Version + "/" + url.PathEscape(opts.PhoneNumberID) + "/messages",
	}, nil
}

// Send posts one message. Every failure is an *Error with its Class.
func (c *Client) Send(ctx context.Context, m *Message) (*SendResult, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, &Error{Class: Permanent, Reason: "encoding", Err: fmt.Errorf("encoding the message: %w", err)}
	}
	status, data, e := c.post(ctx, body)
	if e != nil {
		return nil, e
	}
	var r SendResult
	if err := json.Unmarshal(data, &r); err != nil || r.WAMID() == "" {
		return nil, &Error{HTTPStatus: status, Class: Retry, Reason: "bad_answer", InDoubt: true,
			Err: fmt.Errorf("answer without a message id: %.200q", data)}
	}
	return &r, nil
}

// readRequest is the body that marks an inbound message read, Meta's
// "mark as read" on the messages endpoint.
type readRequest struct {
	MessagingProduct string           `json:"messaging_product"`
	Status           string           `json:"status"`
	MessageID        string           `json:"message_id"`
	TypingIndicator  *typingIndicator `json:"typing_indicator,omitempty"`
}

type typingIndicator struct {
	Type string `json:"type"`
}

// MarkRead marks the inbound message messageID (its wamid) read, which
// shows the customer two blue ticks on it and on every earlier message of
// the chat. With typing, the customer also sees a typing indicator until
// the business replies or for about 25 s: pass it only when a reply is
// coming. Marking read can fail once the customer's 24-hour window has
// closed (131047). Every failure is an *Error classified as Send's are; a
// read receipt is idempotent, so one in doubt can simply be sent again.
func (c *Client) MarkRead(ctx context.Context, messageID string, typing bool) error {
	if messageID == "" {
		return &Error{Class: Permanent, Reason: "request", Err: errors.New("marking read: no message id")}
	}
	r := readRequest{MessagingProduct: "whatsapp", Status: "read", MessageID: messageID}
	if typing {
		r.TypingIndicator = &typingIndicator{Type: "text"}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return &Error{Class: Permanent, Reason: "encoding", Err: fmt.Errorf("encoding the read receipt: %w", err)}
	}
	status, data, e := c.post(ctx, body)
	if e != nil {
		return e
	}
	var answer struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || !answer.Success {
		return &Error{HTTPStatus: status, Class: Retry, Reason: "bad_answer", InDoubt: true,
			Err: fmt.Errorf("answer without success: %.200q", data)}
	}
	return nil
}

// post makes one POST of body to the messages endpoint and returns the
// status and body of a 2xx answer, or the classified failure.
func (c *Client) post(ctx context.Context, body []byte) (int, []byte, *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, &Error{Class: Permanent, Reason: "request", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	req.Header.Set("Content-Type", "application/json")

	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		// The status line came back, so Meta decided; a 2xx whose body
		// was lost is in doubt (for a send, the wamid is unknown).
		e := transportError(err)
		e.HTTPStatus = resp.StatusCode
		e.InDoubt = resp.StatusCode < 300
		return 0, nil, e
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return 0, nil, apiError(resp.StatusCode, data)
	}
	return resp.StatusCode, data, nil
}

// apiError decodes Meta's {"error":{...}} body.
func apiError(status int, data []byte) *Error {
	var body struct {
		Error struct {
			Message      string `json:"message"`
			Type         string `json:"type"`
			Code         int    `json:"code"`
			ErrorSubcode int    `json:"error_subcode"`
			ErrorData    struct {
				Details string `json:"details"`
			} `json:"error_data"`
			FBTraceID string `json:"fbtrace_id"`
		} `json:"error"`
	}
	e := &Error{HTTPStatus: status}
	code := noCode
	if err := json.Unmarshal(data, &body); err == nil && (body.Error.Code != 0 || body.Error.Message != "") {
		b := body.Error
		e.Code, e.Subcode, e.Type, e.Message, e.Details, e.FBTraceID = b.Code, b.ErrorSubcode, b.Type, b.Message, b.ErrorData.Details, b.FBTraceID
		code = b.Code
	} else {
		// Not Meta's error object (a proxy's page, say): the HTTP status
		// alone decides.
		e.Message = fmt.Sprintf("%.200q", data)
		e.NoCode = true
	}
	e.Class, e.Reason = Classify(status, code)
	return e
}

// transportError classifies a failure without an answer. A request that
// never left (connection refused, DNS) is safe to retry; one that may have
// been written (a timeout or reset while waiting) is in doubt.
func transportError(err error) *Error {
	e := &Error{Class: Retry, Reason: "network", Err: err, InDoubt: true}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		e.InDoubt = false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		e.InDoubt = false
	}
	if errors.Is(err, context.Canceled) && !e.InDoubt {
		e.Reason = "canceled"
	}
	return e
}
