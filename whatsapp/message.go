package whatsapp

// Message is the body of POST /{version}/{phone-number-id}/messages, in the
// shape Meta documents. Build one with NewTemplateMessage or NewTextMessage
// (or Catalog.Render), so the fixed fields are right.
type Message struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type,omitempty"`
	// To is the recipient: an E.164 number without the "+", or a wa_id.
	To   string `json:"to"`
	Type string `json:"type"`
	// Context makes the message a reply to an earlier one (inbox use).
	Context  *ReplyContext `json:"context,omitempty"`
	Template *Template     `json:"template,omitempty"`
	Text     *Text         `json:"text,omitempty"`
	// BizOpaqueCallbackData comes back in every status webhook of the
	// message. The outbox puts its job id here, so that a send whose
	// answer was lost can still be matched to its outcome.
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data,omitempty"`
}

// Message types.
const (
	TypeTemplate = "template"
	TypeText     = "text"
)

// ReplyContext names the message a reply answers.
type ReplyContext struct {
	MessageID string `json:"message_id"`
}

// Template is an approved message template with its parameters.
type Template struct {
	Name       string      `json:"name"`
	Language   Language    `json:"language"`
	Components []Component `json:"components,omitempty"`
}

// Language selects the template's translation.
type Language struct {
	Policy string `json:"policy,omitempty"` // "deterministic"
	Code   string `json:"code"`             // e.g. "es_AR", "en_US"
}

// Component is the header, body or one button of a template, with its
// parameters.
type Component struct {
	Type    string `json:"type"`               // header, body, button
	SubType string `json:"sub_type,omitempty"` // for buttons: quick_reply, url, copy_code, flow
	// Index is the button's position, which Meta wants as a string.
	Index      string      `json:"index,omitempty"`
	Parameters []Parameter `json:"parameters,omitempty"`
}

// Component types and button sub-types.
const (
	ComponentHeader = "header"
	ComponentBody   = "body"
	ComponentButton = "button"

	ButtonQuickReply = "quick_reply"
	ButtonURL        = "url"
)

// Parameter is one value of a component. Text parameters carry Text;
// quick-reply buttons carry Payload. ParameterName is set for templates
// created with named parameters.
type Parameter struct {
	Type          string `json:"type"` // text, payload, currency, date_time, image, document, video
	ParameterName string `json:"parameter_name,omitempty"`
	Text          string `json:"text,omitempty"`
	Payload       string `json:"payload,omitempty"`
}

// Parameter types.
const (
	ParamText    = "text"
	ParamPayload = "payload"
)

// Text is a free-form message body, allowed only inside the 24-hour
// customer-service window.
type Text struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url,omitempty"`
}

// NewTemplateMessage returns a template message to one recipient.
func NewTemplateMessage(to string, t Template) *Message {
	return &Message{MessagingProduct: "whatsapp", RecipientType: "individual", To: to, Type: TypeTemplate, Template: &t}
}

// NewTextMessage returns a free-form text message to one recipient.
func NewTextMessage(to, body string) *Message {
	return &Message{MessagingProduct: "whatsapp", RecipientType: "individual", To: to, Type: TypeText, Text: &Text{Body: body}}
}

// SendResult is Meta's answer to an accepted message.
type SendResult struct {
	MessagingProduct string `json:"messaging_product"`
	Contacts         []struct {
		Input string `json:"input"`
		WAID  string `json:"wa_id"`
	} `json:"contacts"`
	Messages []struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status,omitempty"`
	} `json:"messages"`
}

// WAMID returns the id Meta gave the message ("wamid.…"), which its status
// webhooks carry.
func (r *SendResult) WAMID() string {
	if len(r.Messages) == 0 {
		return ""
	}
	return r.Messages[0].ID
}
