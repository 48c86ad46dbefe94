package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deflectd/deflectd/whatsapp"
)

// Notification is what one webhook POST tells deflectd, in the types the
// rest of the app consumes.
type Notification struct {
	// Statuses are status updates of messages deflectd sent, in the order
	// Meta listed them (which is not the order they happened in).
	Statuses []whatsapp.Status
	// Messages are what customers sent.
	Messages []whatsapp.Inbound
	// Other counts changes of fields other than "messages"
	// (account_update, message_template_status_update, ...). Meta sends
	// every field the app is subscribed to to the same URL; they are
	// accepted and ignored, because refusing them would make Meta retry
	// them for days.
	Other int
}

// Envelope constants of Meta's WhatsApp webhooks.
const (
	// ObjectWhatsApp is the "object" of every WhatsApp Business Account
	// webhook; anything else was meant for another product.
	ObjectWhatsApp = "whatsapp_business_account"
	// FieldMessages is the change field that carries statuses and inbound
	// messages, the only one deflectd reads.
	FieldMessages = "messages"
)

// The envelope is decoded first and each change's value only when its
// field is "messages": other fields have other shapes, which must not fail
// the notification.
type envelope struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string          `json:"field"`
			Value json.RawMessage `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type messagesValue struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []contact `json:"contacts"`
	// Messages stay raw until each is decoded, so that Inbound.Raw is the
	// message exactly as Meta sent it.
	Messages []json.RawMessage `json:"messages"`
	Statuses []status          `json:"statuses"`
}

type contact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WAID string `json:"wa_id"`
	// UserID is the business-scoped user id (from 2026).
	UserID string `json:"user_id"`
}

type message struct {
	From string `json:"from"`
	// FromUserID is the sender's business-scoped user id; it may be the
	// only identity of a user with a username.
	FromUserID string    `json:"from_user_id"`
	ID         string    `json:"id"`
	Timestamp  timestamp `json:"timestamp"`
	Type       string    `json:"type"`
	Text       *struct {
		Body string `json:"body"`
	} `json:"text"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *reply `json:"button_reply"`
		ListReply   *reply `json:"list_reply"`
	} `json:"interactive"`
	Context *struct {
		From string `json:"from"`
		ID   string `json:"id"`
	} `json:"context"`

	// The media types carry an object named like the type.
	Image    *media `json:"image"`
	Audio    *media `json:"audio"`
	Video    *media `json:"video"`
	Document *media `json:"document"`
	Sticker  *media `json:"sticker"`

	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Location *struct {
		Latitude  coordinate `json:"latitude"`
		Longitude coordinate `json:"longitude"`
		Name      string     `json:"name"`
		Address   string     `json:"address"`
	} `json:"location"`
	Contacts *[]struct {
		Name struct {
			FormattedName string `json:"formatted_name"`
		} `json:"name"`
	} `json:"contacts"`
}

// media is the object of an image, audio, video, document or sticker
// message: a reference to the file at Meta, not the file.
type media struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
	Animated bool   `json:"animated"`
}

type reply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type status struct {
	ID                    string    `json:"id"`
	Status                string    `json:"status"`
	Timestamp             timestamp `json:"timestamp"`
	RecipientID           string    `json:"recipient_id"`
	RecipientUserID       string    `json:"recipient_user_id"`
	BizOpaqueCallbackData string    `json:"biz_opaque_callback_data"`
	Errors                []struct {
		Code      int    `json:"code"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ErrorData struct {
			Details string `json:"details"`
		} `json:"error_data"`
	} `json:"errors"`
}

// timestamp holds Meta's unix seconds as text. Meta sends them as JSON
// strings; a JSON number is accepted too, since it is just as unambiguous
// and refusing it would make Meta redeliver for days.
type timestamp string

func (t *timestamp) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = timestamp(s)
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*t = timestamp(b)
	default:
		return errors.New("timestamp: want unix seconds as a string")
	}
	return nil
}

// coordinate is a latitude or longitude. Meta sends JSON numbers; a
// number in a string is accepted too, for the same reason as timestamp's.
type coordinate float64

func (c *coordinate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("coordinate %.40q: want a number", b)
	}
	*c = coordinate(f)
	return nil
}

func (t timestamp) time() (time.Time, error) {
	if t == "" {
		return time.Time{}, errors.New("no timestamp")
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("timestamp %.40q: want unix seconds", string(t))
	}
	return time.Unix(n, 0).UTC(), nil
}

// Parse decodes a webhook body. It is strict about what deflectd relies on
// (the object, entries, changes, ids, timestamps and the parts each
// message type needs: a text's text, a media message's media id, the
// message a reaction is on) and returns an error naming the first thing
// wrong, and tolerant of what it does not read: unknown JSON fields (Meta
// adds them without notice), message types it does not interpret
// ("unsupported" and types Meta adds later, surfaced with their type and
// Raw), and change fields other than "messages", which are counted in
// Other.
func Parse(body []byte) (*Notification, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("webhook: malformed JSON: %w", err)
	}
	if env.Object != ObjectWhatsApp {
		return nil, fmt.Errorf("webhook: object is %.60q, want %q", env.Object, ObjectWhatsApp)
	}
	if len(env.Entry) == 0 {
		return nil, errors.New("webhook: no entry")
	}
	n := &Notification{}
	for i, e := range env.Entry {
		if len(e.Changes) == 0 {
			return nil, fmt.Errorf("webhook: entry[%d]: no changes", i)
		}
		for j, c := range e.Changes {
			path := fmt.Sprintf("entry[%d].changes[%d]", i, j)
			switch c.Field {
			case "":
				return nil, fmt.Errorf("webhook: %s: no field", path)
			case FieldMessages:
				if err := n.addMessages(path, c.Value); err != nil {
					return nil, fmt.Errorf("webhook: %w", err)
				}
			default:
				n.Other++
			}
		}
	}
	return n, nil
}

func (n *Notification) addMessages(path string, raw json.RawMessage) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("%s: field messages without a value", path)
	}
	path += ".value"
	var v messagesValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if v.MessagingProduct != "whatsapp" {
		return fmt.Errorf("%s: messaging_product is %.60q, want \"whatsapp\"", path, v.MessagingProduct)
	}
	phoneID := v.Metadata.PhoneNumberID
	if phoneID == "" {
		return fmt.Errorf("%s: no metadata.phone_number_id", path)
	}
	for k, s := range v.Statuses {
		st, err := s.status(phoneID)
		if err != nil {
			return fmt.Errorf("%s.statuses[%d]: %w", path, k, err)
		}
		n.Statuses = append(n.Statuses, st)
	}
	for k, raw := range v.Messages {
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%s.messages[%d]: %w", path, k, err)
		}
		in, err := m.inbound(phoneID, v.Contacts)
		if err != nil {
			return fmt.Errorf("%s.messages[%d]: %w", path, k, err)
		}
		in.Raw = raw
		n.Messages = append(n.Messages, in)
	}
	return nil
}

func (s *status) status(phoneID string) (whatsapp.Status, error) {
	if s.ID == "" {
		return whatsapp.Status{}, errors.New("no id")
	}
	// An unknown status value ("deleted", "warning", ...) is kept: it
	// ranks 0 and never applies, which is the store's decision to make.
	if s.Status == "" {
		return whatsapp.Status{}, errors.New("no status")
	}
	at, err := s.Timestamp.time()
	if err != nil {
		return whatsapp.Status{}, err
	}
	st := whatsapp.Status{
		WAMID:                 s.ID,
		Status:                s.Status,
		Timestamp:             at,
		RecipientID:           s.RecipientID,
		RecipientUserID:       s.RecipientUserID,
		BizOpaqueCallbackData: s.BizOpaqueCallbackData,
		PhoneNumberID:         phoneID,
	}
	for _, e := range s.Errors {
		st.Errors = append(st.Errors, whatsapp.StatusError{Code: e.Code, Title: e.Title, Message: e.Message, Details: e.ErrorData.Details})
	}
	return st, nil
}

func (m *message) inbound(phoneID string, contacts []contact) (whatsapp.Inbound, error) {
	if m.ID == "" {
		return whatsapp.Inbound{}, errors.New("no id")
	}
	// The phone number may be withheld for users with usernames; then the
	// business-scoped user id is the only identity.
	if m.From == "" && m.FromUserID == "" {
		return whatsapp.Inbound{}, errors.New("neither from nor from_user_id")
	}
	if m.Type == "" {
		return whatsapp.Inbound{}, errors.New("no type")
	}
	at, err := m.Timestamp.time()
	if err != nil {
		return whatsapp.Inbound{}, err
	}
	in := whatsapp.Inbound{
		ID:            m.ID,
		From:          m.From,
		UserID:        m.FromUserID,
		PhoneNumberID: phoneID,
		Timestamp:     at,
		Type:          m.Type,
	}
	if c := findContact(contacts, m.From, m.FromUserID); c != nil {
		in.ProfileName = c.Profile.Name
		if in.UserID == "" {
			in.UserID = c.UserID
		}
	}
	if m.Context != nil {
		in.ContextID = m.Context.ID
	}
	switch m.Type {
	case whatsapp.InboundText:
		if m.Text == nil {
			return whatsapp.Inbound{}, errors.New("type text without text")
		}
		in.Text = m.Text.Body
	case whatsapp.InboundButton:
		if m.Button == nil {
			return whatsapp.Inbound{}, errors.New("type button without button")
		}
		in.ButtonPayload, in.ButtonText = m.Button.Payload, m.Button.Text
	case whatsapp.InboundInteractive:
		if m.Interactive == nil {
			return whatsapp.Inbound{}, errors.New("type interactive without interactive")
		}
		// A reply button's or list row's id is the app's own, like a
		// quick-reply payload, so it is surfaced the same way. Other
		// interactive replies (flows) carry no choice to surface.
		switch t := m.Interactive.Type; t {
		case "button_reply", "list_reply":
			r := m.Interactive.ButtonReply
			if t == "list_reply" {
				r = m.Interactive.ListReply
			}
			if r == nil {
				return whatsapp.Inbound{}, fmt.Errorf("interactive %s without %s", t, t)
			}
			in.ButtonPayload, in.ButtonText = r.ID, r.Title
		}
	case whatsapp.InboundImage, whatsapp.InboundAudio, whatsapp.InboundVideo, whatsapp.InboundDocument, whatsapp.InboundSticker:
		md := m.media()
		if md == nil {
			return whatsapp.Inbound{}, fmt.Errorf("type %s without %s", m.Type, m.Type)
		}
		// The id is all a later download needs; without it the attachment
		// could never be fetched.
		if md.ID == "" {
			return whatsapp.Inbound{}, fmt.Errorf("%s without id", m.Type)
		}
		in.Media = &whatsapp.Media{ID: md.ID, MimeType: md.MimeType, SHA256: md.SHA256, Caption: md.Caption,
			Filename: md.Filename, Voice: md.Voice, Animated: md.Animated}
	case whatsapp.InboundReaction:
		if m.Reaction == nil {
			return whatsapp.Inbound{}, errors.New("type reaction without reaction")
		}
		// The emoji may be empty (the reaction was removed); the message
		// it is on may not.
		if m.Reaction.MessageID == "" {
			return whatsapp.Inbound{}, errors.New("reaction without message_id")
		}
		in.Reaction = &whatsapp.Reaction{MessageID: m.Reaction.MessageID, Emoji: m.Reaction.Emoji}
	case whatsapp.InboundLocation:
		l := m.Location
		if l == nil {
			return whatsapp.Inbound{}, errors.New("type location without location")
		}
		in.Location = &whatsapp.Location{Latitude: float64(l.Latitude), Longitude: float64(l.Longitude), Name: l.Name, Address: l.Address}
	case whatsapp.InboundContacts:
		if m.Contacts == nil {
			return whatsapp.Inbound{}, errors.New("type contacts without contacts")
		}
		// One name per card, empty when a card has none, so the count is
		// right; the rest of each card is in Raw.
		in.Contacts = make([]string, 0, len(*m.Contacts))
		for _, c := range *m.Contacts {
			in.Contacts = append(in.Contacts, c.Name.FormattedName)
		}
	default:
		// "unsupported" (Meta's code 131051: a type the Cloud API cannot
		// pass on) and any type Meta adds later are surfaced with their
		// type and Raw: refusing them would drop the whole notification.
	}
	return in, nil
}

// media returns the object named like the message's media type.
func (m *message) media() *media {
	switch m.Type {
	case whatsapp.InboundImage:
		return m.Image
	case whatsapp.InboundAudio:
		return m.Audio
	case whatsapp.InboundVideo:
		return m.Video
	case whatsapp.InboundDocument:
		return m.Document
	case whatsapp.InboundSticker:
		return m.Sticker
	}
	return nil
}

// findContact finds the sender among the notification's contacts, by
// wa_id or user id. Meta's contact wa_id can differ from the message's
// "from" (numbers whose format changed, as in Brazil), so a notification
// with a single contact is taken to be about it.
func findContact(contacts []contact, waID, userID string) *contact {
	for i := range contacts {
		c := &contacts[i]
		if (waID != "" && c.WAID == waID) || (userID != "" && c.UserID == userID) {
			return c
		}
	}
	if len(contacts) == 1 {
		return &contacts[0]
	}
	return nil
}
