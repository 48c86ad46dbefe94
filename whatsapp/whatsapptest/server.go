package whatsapptest

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults used when Options leaves a field empty. The numbers are in the
// 555 range, which no real subscriber has.
const (
	DefaultToken              = "whatsapptest-token"
	DefaultAppSecret          = "whatsapptest-app-secret"
	DefaultPhoneNumberID      = "100000000000001"
	DefaultDisplayPhoneNumber = "15550000001"
	DefaultWABAID             = "100000000000000"
	// DefaultMPS is Meta's default throughput per business phone number.
	DefaultMPS = 80
)

// Options configures a Server. The zero value is a working fake with one
// phone number, no templates and no webhook target.
type Options struct {
	// Token is the access token requests must carry as a bearer token.
	Token string
	// PhoneNumbers are the business phone numbers the fake serves. Default:
	// one, DefaultPhoneNumberID / DefaultDisplayPhoneNumber.
	PhoneNumbers []PhoneNumber
	// WABAID is the WhatsApp Business Account id webhooks carry in
	// entry[].id.
	WABAID string
	// Templates are the approved templates; sends of any other fail with
	// 132001. NewServer panics on a template it cannot model.
	Templates []Template
	// MPS is the throughput limit of each phone number, in accepted
	// messages per second over a sliding one-second window (default 80);
	// PhoneNumber.MPS overrides it per number.
	MPS int
	// PairInterval, when positive, is the pair rate limit: a second message
	// to the same recipient from the same number within it fails with
	// 131056. Meta's is about one message per 6 s, with bursts allowed.
	PairInterval time.Duration
	// WindowErrorsInAnswer makes a free-form message outside the 24-hour
	// window fail the request with 131047. By default it is accepted and
	// then fails with 131047 in a "failed" status webhook, as Meta reports
	// it; the synchronous answer is for a client test that wants the
	// error in hand.
	WindowErrorsInAnswer bool

	// AppSecret signs webhooks (X-Hub-Signature-256).
	AppSecret string
	// WebhookURL is where webhooks are sent; SetWebhookURL changes it.
	WebhookURL string
	// WebhookClient sends webhooks. Default: a client with a 10 s timeout.
	WebhookClient *http.Client
	// WebhookRetries is how many times a webhook that was not answered
	// 2xx is sent again, WebhookRetryInterval apart (default 1 s). Meta
	// retries for days with growing intervals; the default is no retry,
	// so a test sees exactly one delivery per webhook.
	WebhookRetries       int
	WebhookRetryInterval time.Duration

	// AutoStatus, when set, sends status webhooks for every accepted
	// message, as a live number does.
	AutoStatus *AutoStatus
	// Customers, when set, makes recipients of template messages answer.
	Customers *Customers
	// Seed seeds the random choices (AutoStatus.Shuffle, Customers), so a
	// run can be repeated.
	Seed uint64

	// Now is the clock for throughput windows, the 24-hour window and
	// timestamps. Default time.Now.
	Now func() time.Time
}

// PhoneNumber is a business phone number served by the fake.
type PhoneNumber struct {
	// ID is the phone number id used in the URL path and in webhooks'
	// metadata.phone_number_id.
	ID string
	// DisplayPhoneNumber is the number itself, digits only.
	DisplayPhoneNumber string
	// MPS overrides Options.MPS for this number.
	MPS int
}

// Request is one request to the fake, accepted or not.
type Request struct {
	// Time is when the request arrived.
	Time   time.Time
	Method string
	Path   string
	Header http.Header
	// Body is the request body exactly as received.
	Body []byte
	// Outcome says what the fake did; see the Outcome constants.
	Outcome string
	// Status is the HTTP status answered, 0 when nothing was answered.
	Status int
	// Code is Meta's error code when the request was refused.
	Code int
	// WAMID is the id of the message the request created, if any (also
	// for OutcomeLost).
	WAMID string
}

// Request outcomes.
const (
	// OutcomeAccepted: the message was accepted and its id answered.
	OutcomeAccepted = "accepted"
	// OutcomeRejected: an error was answered; nothing was sent.
	OutcomeRejected = "rejected"
	// OutcomeDropped: the connection was closed after the request was
	// read, before processing it (Fault.Drop); nothing was sent.
	OutcomeDropped = "dropped"
	// OutcomeLost: the message was processed (and, if valid, sent) but the
	// connection was closed instead of answering (Fault.Lose).
	OutcomeLost = "lost"
	// OutcomeCanceled: the client gave up while the fake was delaying the
	// request; nothing was sent.
	OutcomeCanceled = "canceled"
)

// Message is a message the fake accepted: "sent", as far as its sender can
// ever know.
type Message struct {
	WAMID         string
	PhoneNumberID string
	// Time is when it was accepted (by Options.Now).
	Time time.Time
	// Raw is the request body byte for byte; Body is the fake's reading
	// of it.
	Raw  []byte
	Body Body
	// Rendered is the hydrated template body, when the template has
	// BodyText; the text of a free-form message.
	Rendered string
	// Lost is set when the answer was not delivered (Fault.Lose).
	Lost bool
}

// Server is a fake WhatsApp Cloud API. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL of a server from NewServer, to use as
	// whatsapp.ClientOptions.BaseURL; empty for New.
	URL string
	// Token, AppSecret, PhoneNumberID, DisplayPhoneNumber and WABAID are
	// the values in effect (the first phone number's, for the phone).
	Token              string
	AppSecret          string
	PhoneNumberID      string
	DisplayPhoneNumber string
	WABAID             string

	opts      Options
	now       func() time.Time
	templates map[string]*Template // by name + "\x00" + language
	names     map[string]bool      // registered template names
	client    *http.Client
	salt      uint64

	ts     *httptest.Server
	ctx    context.Context // canceled by Close: ends delays and follow-ups
	cancel context.CancelFunc
	wg     sync.WaitGroup // follow-up goroutines

	mu          sync.Mutex
	closed      bool
	changed     chan struct{} // closed and replaced on every record
	phones      map[string]*phone
	requests    []Request
	messages    []Message
	byWAMID     map[string]int
	pending     map[string]bool // accepted messages whose request is not recorded yet
	deliveries  []Delivery
	reads       []ReadReceipt
	inboundRefs map[string]inboundRef // wamid of a customer's message → who sent it to which number
	lastInbound map[string]time.Time  // phone id + "/" + wa_id → last inbound
	lastSent    map[string]time.Time  // phone id + "/" + wa_id → last accepted
	next        []*faultRule
	recipients  map[string]*faultRule
	delay       time.Duration
	webhookURL  string
	rng         *rand.Rand
	seq         uint64
}

// inboundRef is where a customer's message the fake made up came from,
// so that a read receipt can be checked against it.
type inboundRef struct {
	phoneID string
	waID    string
}

// phone is one business number's state.
type phone struct {
	PhoneNumber
	window []time.Time // accepted messages in the last second, oldest first
}

// New returns a fake that does not listen: serve Handler on a listener of
// your own (the demo does). Close it when done. New panics on invalid
// Options (a template it cannot model, a duplicate phone number id).
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.AppSecret == "" {
		opts.AppSecret = DefaultAppSecret
	}
	if opts.WABAID == "" {
		opts.WABAID = DefaultWABAID
	}
	if opts.MPS <= 0 {
		opts.MPS = DefaultMPS
	}
	if len(opts.PhoneNumbers) == 0 {
		opts.PhoneNumbers = []PhoneNumber{{ID: DefaultPhoneNumberID, DisplayPhoneNumber: DefaultDisplayPhoneNumber}}
	}
	if opts.WebhookRetryInterval <= 0 {
		opts.WebhookRetryInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	client := opts.WebhookClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	var salt [8]byte
	_, _ = crand.Read(salt[:]) // never fails (crypto/rand panics instead)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Token:              opts.Token,
		AppSecret:          opts.AppSecret,
		PhoneNumberID:      opts.PhoneNumbers[0].ID,
		DisplayPhoneNumber: opts.PhoneNumbers[0].DisplayPhoneNumber,
		WABAID:             opts.WABAID,
		opts:               opts,
		now:                opts.Now,
		templates:          map[string]*Template{},
		names:              map[string]bool{},
		client:             client,
		salt:               binary.LittleEndian.Uint64(salt[:]),
		ctx:                ctx,
		cancel:             cancel,
		changed:            make(chan struct{}),
		phones:             map[string]*phone{},
		byWAMID:            map[string]int{},
		pending:            map[string]bool{},
		inboundRefs:        map[string]inboundRef{},
		lastInbound:        map[string]time.Time{},
		lastSent:           map[string]time.Time{},
		recipients:         map[string]*faultRule{},
		webhookURL:         opts.WebhookURL,
		rng:                rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
	for _, p := range opts.PhoneNumbers {
		if p.ID == "" || s.phones[p.ID] != nil {
			panic(fmt.Sprintf("whatsapptest: phone number id %q is empty or given twice", p.ID))
		}
		if p.MPS <= 0 {
			p.MPS = opts.MPS
		}
		s.phones[p.ID] = &phone{PhoneNumber: p}
	}
	for i := range opts.Templates {
		t := opts.Templates[i]
		t.Header, t.Body, t.Buttons = slices.Clone(t.Header), slices.Clone(t.Body), slices.Clone(t.Buttons)
		if t.Category == "" {
			t.Category = "UTILITY"
		}
		if err := t.validate(); err != nil {
			panic("whatsapptest: " + err.Error())
		}
		key := t.Name + "\x00" + t.Language
		if s.templates[key] != nil {
			panic(fmt.Sprintf("whatsapptest: template %s/%s given twice", t.Name, t.Language))
		}
		s.templates[key] = &t
		s.names[t.Name] = true
	}
	return s
}

// NewServer returns a fake listening on 127.0.0.1 with a random port; its
// URL is the base URL for the client. Close it when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.ts = httptest.NewServer(s.Handler())
	s.URL = s.ts.URL
	return s
}

// Handler returns the fake's HTTP handler: the Graph API paths under "/".
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Close ends delayed requests and pending follow-ups (automatic statuses,
// simulated customers), shuts the listener down, and waits for all of them.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	if s.ts != nil {
		s.ts.Close()
	}
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

// SetWebhookURL sets where webhooks go, for an app under test that starts
// after the fake.
func (s *Server) SetWebhookURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = url
}

// Requests returns every request finished so far, in the order they
// finished, including refused, dropped and canceled ones.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.requests)
	for i := range out {
		out[i].Body = slices.Clone(out[i].Body)
		out[i].Header = out[i].Header.Clone()
	}
	return out
}

// Messages returns every message accepted so far, in order of acceptance.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cloneMessages()
}

func (s *Server) cloneMessages() []Message {
	out := make([]Message, 0, len(s.messages))
	for _, m := range s.messages {
		if s.pending[m.WAMID] {
			continue // its request is not recorded yet
		}
		m.Raw = slices.Clone(m.Raw)
		out = append(out, m)
	}
	return out
}

// WaitMessages waits until at least n messages were accepted and returns
// all of them, or returns ctx's error.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	var out []Message
	err := s.waitFor(ctx, func() bool {
		if len(s.messages)-len(s.pending) < n {
			return false
		}
		out = s.cloneMessages()
		return true
	})
	return out, err
}

// ReadReceipt is a mark-as-read request the fake accepted: the business
// marked a customer's message read (the customer sees two blue ticks).
type ReadReceipt struct {
	// Time is when it was accepted (by Options.Now).
	Time          time.Time
	PhoneNumberID string
	// MessageID is the wamid of the customer's message marked read.
	MessageID string
	// Typing is set when the request also showed a typing indicator.
	Typing bool
}

// Reads returns every read receipt accepted so far, in order of
// acceptance. Read receipts are not messages: Messages does not list them.
func (s *Server) Reads() []ReadReceipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reads)
}

// WaitReads waits until at least n read receipts were accepted and returns
// all of them, or returns ctx's error.
func (s *Server) WaitReads(ctx context.Context, n int) ([]ReadReceipt, error) {
	var out []ReadReceipt
	err := s.waitFor(ctx, func() bool {
		if len(s.reads) < n {
			return false
		}
		out = slices.Clone(s.reads)
		return true
	})
	return out, err
}

// WaitRequests waits until at least n requests have an outcome and returns
// all of them, or returns ctx's error.
func (s *Server) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	err := s.waitFor(ctx, func() bool { return len(s.requests) >= n })
	if err != nil {
		return nil, err
	}
	return s.Requests(), nil
}

// waitFor waits, without polling, until done (called with s.mu held)
// reports true: every change to the records closes s.changed.
func (s *Server) waitFor(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		if done() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("whatsapptest: waiting: %w", ctx.Err())
		}
	}
}

// notify wakes the waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// OpenWindow records that the customer wrote to the phone number (the
// first one when phoneNumberID is empty) at the current time, opening the
// 24-hour window for free-form messages, without sending a webhook.
// SendText and the other inbound Send methods do the same and send the
// webhook.
func (s *Server) OpenWindow(phoneNumberID, waID string) {
	if phoneNumberID == "" {
		phoneNumberID = s.PhoneNumberID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastInbound[phoneNumberID+"/"+digits(waID)] = s.now()
}

// newID returns a wamid: "wamid." and base64, like Meta's, unique within
// the server. s.mu must be held.
func (s *Server) newID(phoneNumberID, waID string) string {
	s.seq++
	return "wamid." + b64(fmt.Appendf(nil, "HBgN%s%s%016X%08X", digits(waID), phoneNumberID, s.salt, s.seq))
}

// digits returns s without anything but ASCII digits: a wa_id from a phone
// number.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
