package whatsapptest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNoWebhookURL is returned by the Send methods when no webhook URL is
// set (Options.WebhookURL, SetWebhookURL).
var ErrNoWebhookURL = errors.New("whatsapptest: no webhook URL set")

// ErrUnknownMessage is returned by SendStatus for a wamid the fake did not
// accept.
var ErrUnknownMessage = errors.New("whatsapptest: no such message")

// WebhookError is a webhook the receiver did not answer with a 2xx.
type WebhookError struct {
	URL        string
	StatusCode int
	// Body is the start of the receiver's answer.
	Body string
}

// Error says where the webhook went and what the receiver answered.
func (e *WebhookError) Error() string {
	return fmt.Sprintf("whatsapptest: webhook to %s answered %d %s: %.200q", e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Body)
}

// Delivery is one attempt to deliver a webhook, successful or not.
type Delivery struct {
	Time time.Time
	URL  string
	// Body is exactly what was sent; Signature is its X-Hub-Signature-256.
	Body      []byte
	Signature string
	// Attempt counts from 1; retries (Options.WebhookRetries) add more.
	Attempt int
	// StatusCode is the receiver's answer, 0 without one.
	StatusCode int
	// Err is nil when the receiver answered 2xx.
	Err error
}

// Deliveries returns every webhook delivery attempt so far, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cloneDeliveries()
}

func (s *Server) cloneDeliveries() []Delivery {
	out := slices.Clone(s.deliveries)
	for i := range out {
		out[i].Body = slices.Clone(out[i].Body)
	}
	return out
}

// WaitDeliveries waits until at least n webhook deliveries were attempted
// and returns all of them, or returns ctx's error.
func (s *Server) WaitDeliveries(ctx context.Context, n int) ([]Delivery, error) {
	var out []Delivery
	err := s.waitFor(ctx, func() bool {
		if len(s.deliveries) < n {
			return false
		}
		out = s.cloneDeliveries()
		return true
	})
	return out, err
}

// Sign returns the X-Hub-Signature-256 header value for body: "sha256="
// and the hex HMAC-SHA256 of the raw bytes with the app secret.
func Sign(body []byte, appSecret string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookOption adjusts a webhook the Send methods build.
type WebhookOption func(*webhookConfig)

type webhookConfig struct {
	at            time.Time
	errors        []int
	profileName   string
	userID        string
	phoneNumberID string
}

// WithTime sets the webhook's timestamp (default: Options.Now).
func WithTime(t time.Time) WebhookOption {
	return func(c *webhookConfig) { c.at = t }
}

// WithError adds an entry with Meta's code to a status's errors[]; a
// "failed" status without one gets 131000.
func WithError(code int) WebhookOption {
	return func(c *webhookConfig) { c.errors = append(c.errors, code) }
}

// WithProfileName sets the customer's profile name in an inbound message's
// contacts (default "Cliente").
func WithProfileName(name string) WebhookOption {
	return func(c *webhookConfig) { c.profileName = name }
}

// WithUserID adds a business-scoped user id (contacts[].user_id) to an
// inbound message, as Meta does for users with usernames since 2026.
func WithUserID(id string) WebhookOption {
	return func(c *webhookConfig) { c.userID = id }
}

// WithPhoneNumberID sends an inbound message to a business number other
// than the first.
func WithPhoneNumberID(id string) WebhookOption {
	return func(c *webhookConfig) { c.phoneNumberID = id }
}

// The webhook envelope, in Meta's key order.
type (
	envelope struct {
		Object string  `json:"object"`
		Entry  []entry `json:"entry"`
	}
	entry struct {
		ID      string   `json:"id"`
		Changes []change `json:"changes"`
	}
	change struct {
		Value value  `json:"value"`
		Field string `json:"field"`
	}
	value struct {
		MessagingProduct string           `json:"messaging_product"`
		Metadata         metadata         `json:"metadata"`
		Contacts         []contact        `json:"contacts,omitempty"`
		Messages         []inboundMessage `json:"messages,omitempty"`
		Statuses         []status         `json:"statuses,omitempty"`
	}
	metadata struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	}
	contact struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WAID   string `json:"wa_id"`
		UserID string `json:"user_id,omitempty"`
	}
	// inboundMessage is one customer message. Meta's documented examples
	// put some objects before "type" (text, button, reaction, errors;
	// location even before "timestamp") and the media objects after it.
	inboundMessage struct {
		Context   *messageContext  `json:"context,omitempty"`
		From      string           `json:"from"`
		ID        string           `json:"id"`
		Location  *inboundLocation `json:"location,omitempty"`
		Timestamp string           `json:"timestamp"`
		Text      *inboundText     `json:"text,omitempty"`
		Button    *inboundButton   `json:"button,omitempty"`
		Reaction  *inboundReaction `json:"reaction,omitempty"`
		Errors    []inboundError   `json:"errors,omitempty"`
		Type      string           `json:"type"`
		Image     *inboundMedia    `json:"image,omitempty"`
		Audio     *inboundMedia    `json:"audio,omitempty"`
		Video     *inboundMedia    `json:"video,omitempty"`
		Document  *inboundMedia    `json:"document,omitempty"`
		Sticker   *inboundMedia    `json:"sticker,omitempty"`
	}
	inboundText struct {
		Body string `json:"body"`
	}
	inboundButton struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	}
	inboundReaction struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	}
	messageContext struct {
		From string `json:"from"`
		ID   string `json:"id"`
	}
	inboundMedia struct {
		Caption  string `json:"caption,omitempty"`
		Filename string `json:"filename,omitempty"`
		MimeType string `json:"mime_type"`
		SHA256   string `json:"sha256"`
		ID       string `json:"id"`
		// Voice is sent for every audio message, Animated for every
		// sticker.
		Voice    *bool `json:"voice,omitempty"`
		Animated *bool `json:"animated,omitempty"`
	}
	inboundLocation struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name,omitempty"`
		Address   string  `json:"address,omitempty"`
	}
	inboundError struct {
		Code      int    `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	}
	status struct {
		ID                    string        `json:"id"`
		Status                string        `json:"status"`
		Timestamp             string        `json:"timestamp"`
		RecipientID           string        `json:"recipient_id"`
		BizOpaqueCallbackData string        `json:"biz_opaque_callback_data,omitempty"`
		Conversation          *conversation `json:"conversation,omitempty"`
		Pricing               *pricing      `json:"pricing,omitempty"`
		Errors                []statusError `json:"errors,omitempty"`
	}
	conversation struct {
		ID                  string `json:"id"`
		ExpirationTimestamp string `json:"expiration_timestamp,omitempty"`
		Origin              struct {
			Type string `json:"type"`
		} `json:"origin"`
	}
	pricing struct {
		Billable     bool   `json:"billable"`
		PricingModel string `json:"pricing_model"`
		Category     string `json:"category"`
		Type         string `json:"type"`
	}
	statusError struct {
		Code      int    `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
		Href string `json:"href"`
	}
)

// SendStatus sends a status webhook for a message the fake accepted:
// status is sent, delivered, read or failed (any other string is sent as
// is, to test unknown statuses). The status carries the recipient, the
// timestamp in Unix seconds as a string, the message's
// biz_opaque_callback_data, conversation and pricing objects for sent and
// delivered (per-message pricing, as Meta bills since July 2025), and
// errors[] for failed.
func (s *Server) SendStatus(ctx context.Context, wamid, st string, opts ...WebhookOption) error {
	c := s.config(opts)
	s.mu.Lock()
	i, ok := s.byWAMID[wamid]
	var m Message
	var category string
	if ok {
		m = s.messages[i]
		category = "service"
		if t := m.Body.Template; t != nil {
			category = strings.ToLower(s.templates[t.Name+"\x00"+t.LanguageCode].Category)
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMessage, wamid)
	}
	to := digits(m.Body.To)
	v := status{
		ID:                    wamid,
		Status:                st,
		Timestamp:             unix(c.at),
		RecipientID:           to,
		BizOpaqueCallbackData: m.Body.BizOpaqueCallbackData,
	}
	if st == "sent" || st == "delivered" {
		sum := sha256.Sum256([]byte(m.PhoneNumberID + "/" + to))
		v.Conversation = &conversation{ID: hex.EncodeToString(sum[:16])}
		v.Conversation.Origin.Type = category
		if st == "sent" {
			v.Conversation.ExpirationTimestamp = unix(m.Time.Add(window))
		}
		v.Pricing = &pricing{Billable: category != "service", PricingModel: "PMP", Category: category, Type: "regular"}
		if category == "service" {
			v.Pricing.Type = "free_customer_service"
		}
	}
	if st == "failed" && len(c.errors) == 0 {
		c.errors = []int{131000}
	}
	for _, code := range c.errors {
		mc, ok := codes[code]
		if !ok {
			mc = metaCode{title: "Unknown error"}
		}
		e := statusError{Code: code, Title: mc.title, Message: mc.title,
			Href: "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}
		e.ErrorData.Details = mc.details
		v.Errors = append(v.Errors, e)
	}
	return s.SendWebhook(ctx, s.envelope(m.PhoneNumberID, value{Statuses: []status{v}}), "")
}

// SendText sends an inbound text message from a customer (a phone number
// or wa_id) and returns its wamid. It opens the customer's 24-hour window
// first, whether or not the webhook is delivered: the customer did write.
// The wamid can be marked read (see Reads).
func (s *Server) SendText(ctx context.Context, from, body string, opts ...WebhookOption) (string, error) {
	return s.sendInbound(ctx, from, s.config(opts), func(m *inboundMessage, _ string) {
		m.Type = "text"
		m.Text = &inboundText{Body: body}
	})
}

// SendReply sends a customer's text quoting an earlier message, wamid (a
// reply, context {from: the business number, id: wamid}), and returns the
// reply's own wamid. Like SendText, it opens the 24-hour window. The wamid
// need not be one the fake accepted.
func (s *Server) SendReply(ctx context.Context, from, wamid, body string, opts ...WebhookOption) (string, error) {
	c := s.config(opts)
	s.phoneOf(wamid, &c)
	return s.sendInbound(ctx, from, c, func(m *inboundMessage, phoneID string) {
		m.Context = &messageContext{From: s.phoneDisplay(phoneID), ID: wamid}
		m.Type = "text"
		m.Text = &inboundText{Body: body}
	})
}

// SendButtonTap sends a customer's tap on a quick-reply button of the
// template message wamid (type "button", context {from: the business
// number, id: wamid}) and returns the tap's own wamid. Like SendText, it
// opens the 24-hour window. The wamid need not be one the fake accepted.
func (s *Server) SendButtonTap(ctx context.Context, from, wamid, payload, text string, opts ...WebhookOption) (string, error) {
	c := s.config(opts)
	s.phoneOf(wamid, &c)
	return s.sendInbound(ctx, from, c, func(m *inboundMessage, phoneID string) {
		m.Context = &messageContext{From: s.phoneDisplay(phoneID), ID: wamid}
		m.Type = "button"
		m.Button = &inboundButton{Payload: payload, Text: text}
	})
}

// Media kinds of SendMedia, Meta's message types for attachments.
const (
	MediaImage    = "image"
	MediaAudio    = "audio"
	MediaVideo    = "video"
	MediaDocument = "document"
	MediaSticker  = "sticker"
)

// defaultMimeTypes are the MIME types a customer's WhatsApp sends most, by
// kind: what SendMedia uses when MediaSpec.MimeType is empty.
var defaultMimeTypes = map[string]string{
	MediaImage:    "image/jpeg",
	MediaAudio:    "audio/ogg; codecs=opus",
	MediaVideo:    "video/mp4",
	MediaDocument: "application/pdf",
	MediaSticker:  "image/webp",
}

// MediaSpec describes an attachment a simulated customer sends. Only the
// reference travels in a webhook (Meta's media id, MIME type and hash);
// the fake makes up the id and the hash and serves no file.
type MediaSpec struct {
	// MimeType defaults to the kind's most common type (image/jpeg,
	// audio/ogg; codecs=opus, video/mp4, application/pdf, image/webp).
	MimeType string
	// Caption is sent for images, videos and documents.
	Caption string
	// Filename is sent for documents.
	Filename string
	// Voice marks an audio message as a voice note.
	Voice bool
	// Animated marks a sticker as animated.
	Animated bool
}

// SendMedia sends a customer's attachment of kind image, audio, video,
// document or sticker (the Media constants) and returns the message's
// wamid and the media id the fake made up (numeric, like Meta's). Like
// SendText, it opens the 24-hour window.
func (s *Server) SendMedia(ctx context.Context, from, kind string, m MediaSpec, opts ...WebhookOption) (wamid, mediaID string, err error) {
	mime, ok := defaultMimeTypes[kind]
	if !ok {
		return "", "", fmt.Errorf("whatsapptest: media kind %q: want image, audio, video, document or sticker", kind)
	}
	if m.MimeType != "" {
		mime = m.MimeType
	}
	s.mu.Lock()
	s.seq++
	// 16 digits, unique within the server, like Meta's media ids.
	mediaID = fmt.Sprintf("%06d%010d", 100_000+s.salt%900_000, s.seq)
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(mediaID))
	md := &inboundMedia{MimeType: mime, SHA256: b64(sum[:]), ID: mediaID}
	switch kind {
	case MediaImage, MediaVideo:
		md.Caption = m.Caption
	case MediaDocument:
		md.Caption, md.Filename = m.Caption, m.Filename
	case MediaAudio:
		md.Voice = &m.Voice
	case MediaSticker:
		md.Animated = &m.Animated
	}
	wamid, err = s.sendInbound(ctx, from, s.config(opts), func(msg *inboundMessage, _ string) {
		msg.Type = kind
		switch kind {
		case MediaImage:
			msg.Image = md
		case MediaAudio:
			msg.Audio = md
		case MediaVideo:
			msg.Video = md
		case MediaDocument:
			msg.Document = md
		case MediaSticker:
			msg.Sticker = md
		}
	})
	return wamid, mediaID, err
}

// SendReaction sends a customer's reaction with emoji to the message wamid
// and returns the reaction's own wamid; an empty emoji removes an earlier
// reaction, as Meta reports it. Like SendText, it opens the 24-hour window.
// The wamid need not be one the fake accepted.
func (s *Server) SendReaction(ctx context.Context, from, wamid, emoji string, opts ...WebhookOption) (string, error) {
	c := s.config(opts)
	s.phoneOf(wamid, &c)
	return s.sendInbound(ctx, from, c, func(m *inboundMessage, _ string) {
		m.Type = "reaction"
		m.Reaction = &inboundReaction{MessageID: wamid, Emoji: emoji}
	})
}

// SendLocation sends a location a customer shared (name and address may
// be empty, as for a dropped pin) and returns its wamid. Like SendText, it
// opens the 24-hour window.
func (s *Server) SendLocation(ctx context.Context, from string, latitude, longitude float64, name, address string, opts ...WebhookOption) (string, error) {
	// A place on Earth; JSON has no NaN or infinity either.
	if !(latitude >= -90 && latitude <= 90 && longitude >= -180 && longitude <= 180) {
		return "", fmt.Errorf("whatsapptest: location %v, %v: want a latitude within ±90 and a longitude within ±180", latitude, longitude)
	}
	return s.sendInbound(ctx, from, s.config(opts), func(m *inboundMessage, _ string) {
		m.Type = "location"
		m.Location = &inboundLocation{Latitude: latitude, Longitude: longitude, Name: name, Address: address}
	})
}

// SendUnsupported sends a message of a type the Cloud API does not pass
// on (a poll, say): type "unsupported" with Meta's error 131051, and
// returns its wamid. Like SendText, it opens the 24-hour window.
func (s *Server) SendUnsupported(ctx context.Context, from string, opts ...WebhookOption) (string, error) {
	return s.sendInbound(ctx, from, s.config(opts), func(m *inboundMessage, _ string) {
		e := inboundError{Code: 131051, Title: "Message type unknown", Message: "Message type unknown"}
		e.ErrorData.Details = "Message type is currently not supported."
		m.Errors = []inboundError{e}
		m.Type = "unsupported"
	})
}

// sendInbound records a customer's message, fills it in with fill (given
// the business phone number id it goes to) and sends its webhook; it
// returns the message's wamid, also when the webhook fails.
func (s *Server) sendInbound(ctx context.Context, from string, c webhookConfig, fill func(m *inboundMessage, phoneID string)) (string, error) {
	id, phoneID, err := s.inbound(from, c)
	if err != nil {
		return "", err
	}
	msg := inboundMessage{From: digits(from), ID: id, Timestamp: unix(c.at)}
	fill(&msg, phoneID)
	return id, s.SendWebhook(ctx, s.envelope(phoneID, value{Contacts: []contact{s.contact(from, c)}, Messages: []inboundMessage{msg}}), "")
}

// phoneOf sets c's phone number, unless one is set, to the one wamid was
// sent from or to, when the fake knows it: a customer answers in the chat
// of the message answered.
func (s *Server) phoneOf(wamid string, c *webhookConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.phoneNumberID != "" {
		return
	}
	if i, ok := s.byWAMID[wamid]; ok {
		c.phoneNumberID = s.messages[i].PhoneNumberID
	} else if ref, ok := s.inboundRefs[wamid]; ok {
		c.phoneNumberID = ref.phoneID
	}
}

// inbound records a customer's message (opening the window) and returns
// its wamid and the business phone number id it goes to.
func (s *Server) inbound(from string, c webhookConfig) (string, string, error) {
	phoneID := c.phoneNumberID
	if phoneID == "" {
		phoneID = s.PhoneNumberID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phones[phoneID] == nil {
		return "", "", fmt.Errorf("whatsapptest: no phone number id %q", phoneID)
	}
	s.lastInbound[phoneID+"/"+digits(from)] = c.at
	id := s.newID(phoneID, from)
	s.inboundRefs[id] = inboundRef{phoneID: phoneID, waID: digits(from)}
	return id, phoneID, nil
}

func (s *Server) contact(from string, c webhookConfig) contact {
	var ct contact
	ct.Profile.Name = c.profileName
	if ct.Profile.Name == "" {
		ct.Profile.Name = "Cliente"
	}
	ct.WAID = digits(from)
	ct.UserID = c.userID
	return ct
}

func (s *Server) phoneDisplay(phoneID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.phones[phoneID]; p != nil {
		return p.DisplayPhoneNumber
	}
	return ""
}

func (s *Server) config(opts []WebhookOption) webhookConfig {
	var c webhookConfig
	for _, o := range opts {
		o(&c)
	}
	if c.at.IsZero() {
		c.at = s.now()
	}
	return c
}

// envelope wraps a change value in Meta's notification and encodes it as
// Meta does.
func (s *Server) envelope(phoneID string, v value) []byte {
	v.MessagingProduct = "whatsapp"
	v.Metadata = metadata{DisplayPhoneNumber: s.phoneDisplay(phoneID), PhoneNumberID: phoneID}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(envelope{Object: "whatsapp_business_account",
		Entry: []entry{{ID: s.WABAID, Changes: []change{{Value: v, Field: "messages"}}}}}); err != nil {
		panic("whatsapptest: encoding a webhook: " + err.Error())
	}
	return metaEscape(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// metaEscape re-encodes JSON the way Meta's webhooks are encoded: every
// non-ASCII character as \uXXXX with lowercase hex digits (Meta signs that
// escaped form) and "/" as "\/". Both occur only inside strings in valid
// JSON, so a byte-level pass is exact.
func metaEscape(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == '/':
			out = append(out, `\/`...)
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		default:
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		}
		b = b[size:]
	}
	return out
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// SendWebhook POSTs body to the webhook URL as Meta does (Content-Type
// application/json, X-Hub-Signature-256), signed with the app secret, or
// with signatureOverride as the header value when it is not empty (to test
// a receiver's refusal of bad signatures). It returns a *WebhookError when
// the receiver does not answer 2xx, after Options.WebhookRetries retries.
// Every attempt is recorded (Deliveries).
func (s *Server) SendWebhook(ctx context.Context, body []byte, signatureOverride string) error {
	sig := signatureOverride
	if sig == "" {
		sig = Sign(body, s.AppSecret)
	}
	s.mu.Lock()
	target := s.webhookURL
	s.mu.Unlock()
	if target == "" {
		s.recordDelivery(Delivery{Time: s.now(), Body: body, Signature: sig, Attempt: 1, Err: ErrNoWebhookURL})
		return ErrNoWebhookURL
	}
	var err error
	for attempt := 1; attempt <= 1+s.opts.WebhookRetries; attempt++ {
		if attempt > 1 && !s.sleep(ctx, s.opts.WebhookRetryInterval) {
			return fmt.Errorf("whatsapptest: webhook retry abandoned: %w (last: %w)", context.Cause(ctx), err)
		}
		d := Delivery{Time: s.now(), URL: target, Body: body, Signature: sig, Attempt: attempt}
		d.StatusCode, err = s.post(ctx, target, body, sig)
		d.Err = err
		s.recordDelivery(d)
		if err == nil {
			return nil
		}
	}
	return err
}

func (s *Server) post(ctx context.Context, target string, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("whatsapptest: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sig)
	req.Header.Set("User-Agent", "facebookexternalua")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("whatsapptest: webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // only for the error text
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, &WebhookError{URL: target, StatusCode: resp.StatusCode, Body: string(answer)}
	}
	return resp.StatusCode, nil
}

func (s *Server) recordDelivery(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	s.notify()
}

// VerifyWebhook performs Meta's subscription handshake against the webhook
// URL: GET ?hub.mode=subscribe&hub.challenge=...&hub.verify_token=..., and
// checks that the receiver answers 200 with the challenge as the body.
func (s *Server) VerifyWebhook(ctx context.Context, verifyToken string) error {
	s.mu.Lock()
	target := s.webhookURL
	s.seq++
	challenge := strconv.FormatUint((s.salt^s.seq)%1_000_000_000, 10)
	s.mu.Unlock()
	if target == "" {
		return ErrNoWebhookURL
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("whatsapptest: webhook URL: %w", err)
	}
	q := u.Query()
	q.Set("hub.mode", "subscribe")
	q.Set("hub.challenge", challenge)
	q.Set("hub.verify_token", verifyToken)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("whatsapptest: verification request: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("whatsapptest: verification: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return &WebhookError{URL: target, StatusCode: resp.StatusCode, Body: string(answer)}
	}
	if string(answer) != challenge {
		return fmt.Errorf("whatsapptest: verification answered %.100q, want the challenge %q", answer, challenge)
	}
	return nil
}
