package whatsapptest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Template is an approved message template as the fake knows it: what a
// business would have created in WhatsApp Manager. A request naming a
// template that is not registered fails with 132001, as it would at Meta.
type Template struct {
	Name string
	// Language is the translation's code, e.g. es_AR.
	Language string
	// Category is UTILITY (the default), MARKETING or AUTHENTICATION; status
	// webhooks show it in conversation and pricing.
	Category string
	// Header and Body are the placeholders of the (text) header and of the
	// body, in order, as written between the braces: {"1", "2"} for a
	// template with positional parameters, {"reason", "wait"} for one with
	// named parameters, whose requests must then give each parameter's
	// parameter_name. A header has at most one placeholder.
	Header []string
	Body   []string
	// BodyText, when set, is the body as created ("Hola, te escribimos por
	// {{1}}..."). The fake fills it in to check the 1,024-character limit
	// of the hydrated body (132005) and records the result in
	// Message.Rendered, which the demo shows as what the customer sees.
	BodyText string
	// Buttons are the template's buttons; a button component's index is a
	// position in this slice.
	Buttons []Button
	// Status is empty or APPROVED; PAUSED and DISABLED make sends fail with
	// 132015 and 132016.
	Status string
}

// Button is one button of a template.
type Button struct {
	// SubType is quick_reply, url, copy_code or flow: what a button
	// component's sub_type must say at this index.
	SubType string
	// Text is the label. A tap sends it as button.text, and as
	// button.payload when the message set no payload for the button.
	Text string
	// Dynamic marks a url button whose URL ends in a placeholder; its
	// component must then carry one text parameter. Static url buttons take
	// no component.
	Dynamic bool
}

// Button sub-types Meta defines for templates.
const (
	ButtonQuickReply = "quick_reply"
	ButtonURL        = "url"
	ButtonCopyCode   = "copy_code"
	ButtonFlow       = "flow"
)

// named reports whether placeholders are names rather than positions.
func named(placeholders []string) bool {
	for _, p := range placeholders {
		if _, err := strconv.Atoi(p); err != nil {
			return true
		}
	}
	return false
}

// validate reports a template the fake cannot model; NewServer panics
// with it, as a test configured wrong cannot test anything.
func (t *Template) validate() error {
	if t.Name == "" || t.Language == "" {
		return fmt.Errorf("template %q/%q: Name and Language are required", t.Name, t.Language)
	}
	if len(t.Header) > 1 {
		return fmt.Errorf("template %s: a header has at most one placeholder", t.Name)
	}
	all := slices.Concat(t.Header, t.Body)
	isNamed := named(all)
	for i, p := range t.Body {
		if !isNamed && p != strconv.Itoa(i+1) {
			return fmt.Errorf("template %s: positional body placeholders must be 1, 2, ... in order, got %q", t.Name, t.Body)
		}
		if isNamed && !validName(p) {
			return fmt.Errorf("template %s: placeholder %q: names are lowercase letters, digits and underscores, starting with a letter (and not mixed with positional ones)", t.Name, p)
		}
	}
	if isNamed && len(t.Header) == 1 && !validName(t.Header[0]) {
		return fmt.Errorf("template %s: header placeholder %q mixes positional and named parameters", t.Name, t.Header[0])
	}
	for i, b := range t.Buttons {
		switch b.SubType {
		case ButtonQuickReply, ButtonURL, ButtonCopyCode, ButtonFlow:
		default:
			return fmt.Errorf("template %s: button %d: unknown sub-type %q", t.Name, i, b.SubType)
		}
		if b.Dynamic && b.SubType != ButtonURL {
			return fmt.Errorf("template %s: button %d: only url buttons are dynamic", t.Name, i)
		}
	}
	switch t.Status {
	case "", "APPROVED", "PAUSED", "DISABLED":
	default:
		return fmt.Errorf("template %s: unknown status %q", t.Name, t.Status)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Limits Meta applies to parameters.
const (
	maxBodyText   = 1024
	maxHeaderText = 60
)

// check validates a request's template object against the registered
// template and returns the hydrated body (when BodyText is set).
func (t *Template) check(tb *TemplateBody) (string, *failure) {
	switch t.Status {
	case "PAUSED":
		return "", metaError(132015, fmt.Sprintf("Template %s is paused.", t.Name))
	case "DISABLED":
		return "", metaError(132016, fmt.Sprintf("Template %s is disabled.", t.Name))
	}
	var header, body *ComponentBody
	buttons := map[int]*ComponentBody{}
	for i := range tb.Components {
		c := &tb.Components[i]
		path := fmt.Sprintf("template['components'][%d]", i)
		if c.Type != "button" && (c.SubType != "" || c.Index != "") {
			return "", paramError(fmt.Sprintf("Unexpected key \"sub_type\" or \"index\" on param %q of type %s.", path, c.Type))
		}
		switch c.Type {
		case "header", "body":
			p := &header
			if c.Type == "body" {
				p = &body
			}
			if *p != nil {
				return "", metaError(131009, fmt.Sprintf("Param %s: more than one %s component.", path, c.Type))
			}
			*p = c
		case "button":
			if c.SubType == "" {
				return "", metaError(131008, fmt.Sprintf("Param %s['sub_type'] is required.", path))
			}
			if c.Index == "" {
				return "", metaError(131008, fmt.Sprintf("Param %s['index'] is required.", path))
			}
			idx, err := strconv.Atoi(c.Index)
			if err != nil || idx < 0 || strconv.Itoa(idx) != c.Index {
				return "", metaError(131009, fmt.Sprintf("Param %s['index'] must be a button index such as \"0\", got %q.", path, c.Index))
			}
			if idx >= len(t.Buttons) {
				return "", metaError(131009, fmt.Sprintf("Button at index %d does not exist in template %s.", idx, t.Name))
			}
			if t.Buttons[idx].SubType != c.SubType {
				return "", metaError(131009, fmt.Sprintf("Button at index %d is of type %s, not %s.", idx, t.Buttons[idx].SubType, c.SubType))
			}
			if buttons[idx] != nil {
				return "", metaError(131009, fmt.Sprintf("Button at index %d is given more than once.", idx))
			}
			buttons[idx] = c
		default:
			return "", paramError(fmt.Sprintf("Param %s['type'] must be one of {HEADER, BODY, BUTTON} - got %q.", path, c.Type))
		}
	}

	if f := t.checkText("header", header, t.Header, maxHeaderText, "text"); f != nil {
		return "", f
	}
	if f := t.checkText("body", body, t.Body, maxBodyText, "text", "currency", "date_time"); f != nil {
		return "", f
	}
	for i, b := range t.Buttons {
		if f := checkButton(i, b, buttons[i]); f != nil {
			return "", f
		}
	}
	if t.BodyText == "" {
		return "", nil
	}
	rendered := t.render(body)
	if n := len([]rune(rendered)); n > maxBodyText {
		return "", metaError(132005, fmt.Sprintf("body: hydrated text is %d characters long, the maximum is %d.", n, maxBodyText))
	}
	return rendered, nil
}

// checkText validates a header or body component against its placeholders:
// the count (132000, in Meta's wording), then each parameter.
func (t *Template) checkText(name string, c *ComponentBody, placeholders []string, maxLen int, types ...string) *failure {
	var params []ParameterBody
	if c != nil {
		params = c.Parameters
	}
	if len(params) != len(placeholders) {
		return metaError(132000, fmt.Sprintf("%s: number of localizable_params (%d) does not match the expected number of params (%d)", name, len(params), len(placeholders)))
	}
	isNamed := named(slices.Concat(t.Header, t.Body))
	seen := map[string]bool{}
	for i, p := range params {
		if !slices.Contains(types, p.Type) {
			return metaError(132012, fmt.Sprintf("%s: parameter %d is of type %s; the template expects one of %s.", name, i+1, p.Type, strings.Join(types, ", ")))
		}
		switch {
		case isNamed && p.ParameterName == "":
			return metaError(131008, fmt.Sprintf("%s: parameter %d has no parameter_name; template %s uses named parameters.", name, i+1, t.Name))
		case isNamed && !slices.Contains(placeholders, p.ParameterName):
			return metaError(131009, fmt.Sprintf("%s: parameter_name %q is not a parameter of template %s.", name, p.ParameterName, t.Name))
		case isNamed && seen[p.ParameterName]:
			return metaError(131009, fmt.Sprintf("%s: parameter_name %q is given more than once.", name, p.ParameterName))
		case !isNamed && p.ParameterName != "":
			return metaError(131009, fmt.Sprintf("%s: parameter %d has a parameter_name; template %s uses positional parameters.", name, i+1, t.Name))
		}
		seen[p.ParameterName] = true
		if p.Type != "text" {
			continue
		}
		switch {
		case p.Text == "":
			return metaError(131008, fmt.Sprintf("%s: parameter %d: Parameter of type text is missing text value.", name, i+1))
		case strings.ContainsAny(p.Text, "\n\t") || strings.Contains(p.Text, "     "):
			return metaError(132018, fmt.Sprintf("%s: parameter %d: Param text cannot have new-line/tab characters or more than 4 consecutive spaces.", name, i+1))
		case len([]rune(p.Text)) > maxLen:
			return metaError(132005, fmt.Sprintf("%s: parameter %d is %d characters long, the maximum is %d.", name, i+1, len([]rune(p.Text)), maxLen))
		}
	}
	return nil
}

// checkButton validates the component given for button i (nil if none).
func checkButton(i int, b Button, c *ComponentBody) *failure {
	var want int
	var typ string
	optional := false
	switch b.SubType {
	case ButtonQuickReply:
		want, typ, optional = 1, "payload", true
	case ButtonURL:
		if b.Dynamic {
			want, typ = 1, "text"
		}
	case ButtonCopyCode:
		want, typ = 1, "coupon_code"
	case ButtonFlow:
		want, typ, optional = 1, "action", true
	}
	if c == nil {
		if want == 0 || optional {
			return nil
		}
		return metaError(132000, fmt.Sprintf("button at index %d (%s): number of params (0) does not match the expected number of params (%d)", i, b.SubType, want))
	}
	if len(c.Parameters) != want {
		return metaError(132000, fmt.Sprintf("button at index %d (%s): number of params (%d) does not match the expected number of params (%d)", i, b.SubType, len(c.Parameters), want))
	}
	p := c.Parameters[0]
	if p.Type != typ {
		return metaError(131009, fmt.Sprintf("button at index %d (%s): parameter of type %s, want %s.", i, b.SubType, p.Type, typ))
	}
	if typ == "text" && p.Text == "" || typ == "payload" && p.Payload == "" {
		return metaError(131008, fmt.Sprintf("button at index %d (%s): the parameter's %s is empty.", i, b.SubType, typ))
	}
	return nil
}

// render fills BodyText with the body parameters.
func (t *Template) render(body *ComponentBody) string {
	s := t.BodyText
	if body == nil {
		return s
	}
	isNamed := named(slices.Concat(t.Header, t.Body))
	for i, p := range body.Parameters {
		key := strconv.Itoa(i + 1)
		if isNamed {
			key = p.ParameterName
		}
		s = strings.ReplaceAll(s, "{{"+key+"}}", parameterText(p))
	}
	return s
}

// parameterText is how a parameter reads in the hydrated text: its text, or
// the fallback_value of a currency or date_time.
func parameterText(p ParameterBody) string {
	if p.Type == "text" {
		return p.Text
	}
	if m, ok := p.Value.(map[string]any); ok {
		if s, ok := m["fallback_value"].(string); ok {
			return s
		}
	}
	return ""
}

// tapPayload is the payload a tap on one of the template's quick-reply
// buttons carries: the payload the message set for it, else the label.
// With several buttons (a survey's scores), pick(n) chooses one of n.
func (t *Template) tapPayload(tb *TemplateBody, pick func(n int) int) (payload, text string, ok bool) {
	var quick []int
	for i, b := range t.Buttons {
		if b.SubType == ButtonQuickReply {
			quick = append(quick, i)
		}
	}
	if len(quick) == 0 {
		return "", "", false
	}
	i := quick[0]
	if len(quick) > 1 {
		i = quick[pick(len(quick))]
	}
	b := t.Buttons[i]
	payload = b.Text
	for _, c := range tb.Components {
		if c.Type == "button" && c.Index == strconv.Itoa(i) && len(c.Parameters) == 1 {
			payload = c.Parameters[0].Payload
		}
	}
	return payload, b.Text, true
}
