package whatsapptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Body is a message request as the fake read it. It is the fake's own
// reading of Meta's documented shape, deliberately independent of package
// whatsapp's types.
type Body struct {
	MessagingProduct string
	// RecipientType is "individual" or empty.
	RecipientType string
	// To is the recipient exactly as sent.
	To   string
	Type string
	// ContextMessageID is context.message_id: the wamid this message
	// replies to, if any.
	ContextMessageID string
	// Template is set for type "template", Text for type "text".
	Template              *TemplateBody
	Text                  *TextBody
	BizOpaqueCallbackData string
}

// TemplateBody is the "template" object of a request.
type TemplateBody struct {
	Name           string
	LanguagePolicy string
	LanguageCode   string
	Components     []ComponentBody
}

// ComponentBody is one element of template.components.
type ComponentBody struct {
	// Type is header, body or button.
	Type string
	// SubType and Index are set for buttons.
	SubType    string
	Index      string
	Parameters []ParameterBody
}

// ParameterBody is one parameter of a component.
type ParameterBody struct {
	Type          string
	ParameterName string
	// Text is set for type "text", Payload for type "payload".
	Text    string
	Payload string
	// Value is the object of the other types (currency, date_time, image,
	// document, video, location, coupon_code, action), as decoded JSON.
	Value any
}

// TextBody is the "text" object of a free-form message.
type TextBody struct {
	Body       string
	PreviewURL bool
}

// maxDepth bounds nesting; Meta's message shape is at most six deep.
const maxDepth = 16

// decodeStrict decodes one JSON value into maps, slices, strings,
// json.Numbers, bools and nils, refusing duplicate keys, deep nesting and
// trailing data. Keys stay exactly as sent (encoding/json's struct decoding
// would match them case-insensitively).
func decodeStrict(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("duplicate key %q", k)
			}
			v, err := readValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a := []any{}
		for dec.More() {
			v, err := readValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// walker reads a decoded body field by field and keeps the first failure;
// once it has one, every read is a no-op returning zero values.
type walker struct {
	f *failure
}

// obj is a JSON object with its Graph-style path, e.g. template['language'].
type obj struct {
	m    map[string]any
	path string
}

func (o obj) sub(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "['" + key + "']"
}

// only fails on a key not in allowed. Meta refuses unknown keys in the
// objects it defines ("Unexpected key"); the fake refuses them everywhere,
// top level included, so a misspelt field is never silently dropped.
func (w *walker) only(o obj, allowed ...string) {
	if w.f != nil {
		return
	}
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			name := o.path
			if name == "" {
				name = "message"
			}
			w.f = paramError(fmt.Sprintf("Unexpected key %q on param %q.", k, name))
			return
		}
	}
}

// missing is the failure for an absent required field: Graph's "(#100)
// The parameter ... is required." at the top level, WhatsApp's 131008
// inside an object.
func (w *walker) missing(o obj, key string) {
	if o.path == "" {
		w.f = paramError(fmt.Sprintf("The parameter %s is required.", key))
		return
	}
	w.f = metaError(131008, fmt.Sprintf("Param %s is required.", o.sub(key)))
}

func (w *walker) str(o obj, key string, required bool) string {
	if w.f != nil {
		return ""
	}
	v, ok := o.m[key]
	if !ok {
		if required {
			w.missing(o, key)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		w.f = paramError(fmt.Sprintf("Param %s must be a string.", o.sub(key)))
		return ""
	}
	return s
}

func (w *walker) boolean(o obj, key string) bool {
	if w.f != nil {
		return false
	}
	v, ok := o.m[key]
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		w.f = paramError(fmt.Sprintf("Param %s must be a boolean.", o.sub(key)))
	}
	return b
}

func (w *walker) object(o obj, key string, required bool) (obj, bool) {
	if w.f != nil {
		return obj{}, false
	}
	v, ok := o.m[key]
	if !ok {
		if required {
			w.missing(o, key)
		}
		return obj{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		w.f = paramError(fmt.Sprintf("Param %s must be a JSON object.", o.sub(key)))
		return obj{}, false
	}
	return obj{m: m, path: o.sub(key)}, true
}

// objects reads an array of objects.
func (w *walker) objects(o obj, key string) []obj {
	if w.f != nil {
		return nil
	}
	v, ok := o.m[key]
	if !ok {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		w.f = paramError(fmt.Sprintf("Param %s must be an array.", o.sub(key)))
		return nil
	}
	out := make([]obj, 0, len(a))
	for i, e := range a {
		m, ok := e.(map[string]any)
		if !ok {
			w.f = paramError(fmt.Sprintf("Param %s[%d] must be a JSON object.", o.sub(key), i))
			return nil
		}
		out = append(out, obj{m: m, path: fmt.Sprintf("%s[%d]", o.sub(key), i)})
	}
	return out
}

// otherTypes are the message types Meta accepts besides template and text.
var otherTypes = []string{"audio", "contacts", "document", "image", "interactive", "location", "reaction", "sticker", "video"}

// readBody is a mark-as-read request as the fake read it.
type readBody struct {
	MessageID string
	Typing    bool
}

// parseRequest reads a request to the messages endpoint strictly: a read
// receipt (it has a "status") or a message. It checks the shape (keys,
// types, required fields, fixed values), not the template registry or the
// message a receipt names.
func parseRequest(data []byte) (*Body, *readBody, *failure) {
	v, err := decodeStrict(data)
	if err != nil {
		return nil, nil, paramError("Invalid JSON in the request body: " + err.Error() + ".")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, paramError("The parameter messaging_product is required.")
	}
	if _, ok := m["status"]; ok {
		r, f := parseRead(m)
		return nil, r, f
	}
	b, f := parseMessage(m)
	return b, nil, f
}

// parseRead reads a mark-as-read request: exactly messaging_product,
// status "read", message_id and an optional typing_indicator {"type":
// "text"}. Every shape error is Graph's (#100).
func parseRead(m map[string]any) (*readBody, *failure) {
	w := &walker{}
	top := obj{m: m}
	w.only(top, "messaging_product", "status", "message_id", "typing_indicator")
	product := w.str(top, "messaging_product", true)
	status := w.str(top, "status", true)
	r := &readBody{MessageID: w.str(top, "message_id", true)}
	if ti, ok := w.object(top, "typing_indicator", false); ok {
		w.only(ti, "type")
		if t := w.str(ti, "type", false); w.f == nil && t != "text" {
			w.f = paramError(fmt.Sprintf("Param typing_indicator['type'] must be one of {TEXT} - got %q.", t))
		}
		r.Typing = true
	}
	switch {
	case w.f != nil:
		return nil, w.f
	case product != "whatsapp":
		return nil, paramError(fmt.Sprintf("Param messaging_product must be one of {WHATSAPP} - got %q.", product))
	case status != "read":
		return nil, paramError(fmt.Sprintf("Param status must be one of {READ} - got %q.", status))
	case r.MessageID == "":
		return nil, paramError("The parameter message_id is required.")
	}
	return r, nil
}

// parseMessage reads a message request.
func parseMessage(m map[string]any) (*Body, *failure) {
	if t, ok := m["type"].(string); ok && slices.Contains(otherTypes, t) {
		// A message Meta would take, but the fake does not model.
		return nil, metaError(131051, fmt.Sprintf("Message type %q is not supported by whatsapptest (only template and text).", t))
	}
	w := &walker{}
	top := obj{m: m}
	w.only(top, "messaging_product", "recipient_type", "to", "type", "context", "template", "text", "biz_opaque_callback_data")
	b := &Body{
		MessagingProduct:      w.str(top, "messaging_product", true),
		RecipientType:         w.str(top, "recipient_type", false),
		To:                    w.str(top, "to", true),
		Type:                  w.str(top, "type", false),
		BizOpaqueCallbackData: w.str(top, "biz_opaque_callback_data", false),
	}
	if ctx, ok := w.object(top, "context", false); ok {
		w.only(ctx, "message_id")
		b.ContextMessageID = w.str(ctx, "message_id", true)
	}
	if w.f != nil {
		return nil, w.f
	}
	switch {
	case b.MessagingProduct != "whatsapp":
		return nil, paramError(fmt.Sprintf("Param messaging_product must be one of {WHATSAPP} - got %q.", b.MessagingProduct))
	case b.RecipientType != "" && b.RecipientType != "individual":
		return nil, paramError(fmt.Sprintf("Param recipient_type must be one of {INDIVIDUAL} - got %q.", b.RecipientType))
	case !validPhone(b.To):
		return nil, metaError(131009, fmt.Sprintf("Param to: %q is not a valid phone number or WhatsApp ID.", b.To))
	case len(b.BizOpaqueCallbackData) > 512:
		return nil, metaError(131009, "Param biz_opaque_callback_data must be at most 512 characters long.")
	}
	if b.Type == "" {
		// Meta's default type is text.
		b.Type = "text"
	}
	switch b.Type {
	case "template":
		if _, ok := top.m["text"]; ok {
			return nil, paramError(`Unexpected key "text" on param "message" for a message of type template.`)
		}
		tpl, _ := w.object(top, "template", true)
		b.Template = w.template(tpl)
	case "text":
		if _, ok := top.m["template"]; ok {
			return nil, paramError(`Unexpected key "template" on param "message" for a message of type text.`)
		}
		txt, _ := w.object(top, "text", true)
		w.only(txt, "body", "preview_url")
		b.Text = &TextBody{Body: w.str(txt, "body", true), PreviewURL: w.boolean(txt, "preview_url")}
		if w.f == nil && b.Text.Body == "" {
			w.f = metaError(131008, "Param text['body'] is required.")
		}
		if w.f == nil && len([]rune(b.Text.Body)) > 4096 {
			w.f = paramError("Param text['body'] must be at most 4096 characters long.")
		}
	default:
		return nil, paramError(fmt.Sprintf("Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got %q.", b.Type))
	}
	if w.f != nil {
		return nil, w.f
	}
	return b, nil
}

func (w *walker) template(o obj) *TemplateBody {
	w.only(o, "name", "language", "components")
	t := &TemplateBody{Name: w.str(o, "name", true)}
	lang, _ := w.object(o, "language", true)
	w.only(lang, "policy", "code")
	t.LanguagePolicy = w.str(lang, "policy", false)
	t.LanguageCode = w.str(lang, "code", true)
	if w.f == nil && t.LanguagePolicy != "" && t.LanguagePolicy != "deterministic" {
		w.f = paramError(fmt.Sprintf("Param template['language']['policy'] must be one of {DETERMINISTIC} - got %q.", t.LanguagePolicy))
	}
	for _, co := range w.objects(o, "components") {
		w.only(co, "type", "sub_type", "index", "parameters")
		c := ComponentBody{
			Type:    w.str(co, "type", true),
			SubType: w.str(co, "sub_type", false),
			Index:   w.str(co, "index", false),
		}
		for _, po := range w.objects(co, "parameters") {
			c.Parameters = append(c.Parameters, w.parameter(po))
		}
		t.Components = append(t.Components, c)
	}
	return t
}

// parameterObjects are the parameter types whose value is an object named
// like the type.
var parameterObjects = []string{"currency", "date_time", "image", "document", "video", "location", "coupon_code", "action"}

func (w *walker) parameter(o obj) ParameterBody {
	p := ParameterBody{Type: w.str(o, "type", true)}
	if w.f != nil {
		return p
	}
	switch {
	case p.Type == "text":
		w.only(o, "type", "parameter_name", "text")
		p.Text = w.str(o, "text", false)
	case p.Type == "payload":
		w.only(o, "type", "parameter_name", "payload")
		p.Payload = w.str(o, "payload", false)
	case p.Type == "coupon_code":
		// A copy-code button's value is a string named like its type.
		w.only(o, "type", "coupon_code")
		p.Value = w.str(o, "coupon_code", true)
	case slices.Contains(parameterObjects, p.Type):
		w.only(o, "type", "parameter_name", p.Type)
		if v, ok := w.object(o, p.Type, true); ok {
			p.Value = v.m
		}
	default:
		w.f = paramError(fmt.Sprintf("Param %s['type'] must be one of {TEXT, CURRENCY, DATE_TIME, IMAGE, DOCUMENT, VIDEO, LOCATION, PAYLOAD, COUPON_CODE, ACTION} - got %q.", o.path, p.Type))
		return p
	}
	p.ParameterName = w.str(o, "parameter_name", false)
	return p
}

// validPhone accepts what Meta accepts in "to": a phone number or wa_id of
// 7 to 15 digits, optionally with a leading "+".
func validPhone(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if len(s) < 7 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
