package whatsapp

import (
	"strings"
	"time"
)

// This file holds what Meta's webhooks tell deflectd, in the form the rest
// of the app uses: whatsapp/webhook parses notifications into these, and
// the outbox, the deflection funnel and the inbox consume them.

// Message statuses, in the order they progress. "failed" ends a message at
// any point.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// StatusRank orders statuses so updates apply monotonically: webhooks come
// at least once and in any order, and "delivered" may be skipped. A failed
// status outranks every other. Unknown statuses rank 0 and never apply.
func StatusRank(status string) int {
	switch status {
	case StatusSent:
		return 1
	case StatusDelivered:
		return 2
	case StatusRead:
		return 3
	case StatusFailed:
		return 4
	}
	return 0
}

// Status is one status update of a sent message.
type Status struct {
	// WAMID is the message id Meta returned on send.
	WAMID  string
	Status string
	// Timestamp is when Meta saw the status.
	Timestamp time.Time
	// RecipientID is the customer's wa_id.
	RecipientID string
	// RecipientUserID is the customer's business-scoped user id, when Meta
	// sends one instead of, or with, the phone number.
	RecipientUserID string
	// BizOpaqueCallbackData is what the message carried (the outbox job
	// id), so a status can be matched even when the send's answer was
	// lost.
	BizOpaqueCallbackData string
	// PhoneNumberID is the business number that sent the message.
	PhoneNumberID string
	// Errors are set on a failed status.
	Errors []StatusError
}

// StatusError is one error of a failed status, with Meta's code.
type StatusError struct {
	Code    int
	Title   string
	Message string
	Details string
}

// Inbound is a message a customer sent: text, a quick-reply button tap, or
// another type the app may only record.
type Inbound struct {
	// ID is the inbound message's wamid; Meta may deliver it more than once.
	ID string
	// From is the customer's wa_id (digits), also the number to answer to.
	From string
	// UserID is the business-scoped user id, when Meta sends one (it may
	// withhold the phone number for users with usernames).
	UserID        string
	ProfileName   string
	PhoneNumberID string
	Timestamp     time.Time
	// Type is Meta's message type: text, button, interactive, image, ...
	Type string
	// Text is the body of a text message.
	Text string
	// ButtonPayload and ButtonText are set for a quick-reply tap.
	ButtonPayload string
	ButtonText    string
	// ContextID is the wamid of the message this one answers (a tap on a
	// template's button carries the template's wamid, a quoted reply the
	// quoted message's).
	ContextID string

	// Media is set for image, audio, video, document and sticker messages:
	// a reference only (Meta's media id stays valid for about 7 days), so
	// the message record never depends on a download.
	Media *Media
	// Reaction is set for a reaction: the emoji and the message it is on.
	// An empty emoji removes an earlier reaction.
	Reaction *Reaction
	// Location is set for a location message.
	Location *Location
	// Contacts holds the formatted names of shared contact cards, one per
	// card in order (empty for a card without one); the cards' phones and
	// the rest are in Raw.
	Contacts []string
	// Raw is the message object exactly as Meta sent it, so that a type
	// deflectd does not render is still stored and nothing inbound is
	// dropped.
	Raw []byte
}

// Media is a reference to an attachment at Meta.
type Media struct {
	ID       string
	MimeType string
	SHA256   string
	Caption  string
	// Filename is set for documents.
	Filename string
	// Voice is set for an audio message recorded as a voice note.
	Voice bool
	// Animated is set for an animated sticker.
	Animated bool
}

// Reaction is a customer's emoji on one message.
type Reaction struct {
	MessageID string
	Emoji     string
}

// Location is a shared place.
type Location struct {
	Latitude, Longitude float64
	Name, Address       string
}

// Inbound message types deflectd reads.
const (
	InboundText        = "text"
	InboundButton      = "button"
	InboundInteractive = "interactive"
	InboundImage       = "image"
	InboundAudio       = "audio"
	InboundVideo       = "video"
	InboundDocument    = "document"
	InboundSticker     = "sticker"
	InboundReaction    = "reaction"
	InboundLocation    = "location"
	InboundContacts    = "contacts"
	InboundUnsupported = "unsupported"
)

// Conversion is a deflection or recovery message that the customer answered
// (wrote or tapped) within the conversion window: the funnel's last step.
type Conversion struct {
	// Key is the outbox key of the message (call id + kind).
	Key string
	// Kind is the message kind, e.g. "offer", "perform", "recover".
	Kind     string
	Template string
	SentAt   time.Time
	At       time.Time
	// Via is "tap" for a button, "reply" for anything written.
	Via string
}

// NormalizeNumber returns a phone number or wa_id as digits only, the form
// Meta uses for "to" and wa_id, and the form deflectd keys numbers by
// (opt-outs, cooldowns). "+54 9 11 5555-1234" becomes "5491155551234".
func NormalizeNumber(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
