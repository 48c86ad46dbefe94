package whatsapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := LoadCatalogFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatalf("LoadCatalogFile(testdata/catalog.yaml) = %v", err)
	}
	return c
}

var testCall = CallContext{
	CallID:       "1712345678.42",
	Queue:        "soporte",
	MenuOption:   "2",
	Reason:       "billing",
	Language:     "es",
	Wait:         6*time.Minute + 12*time.Second,
	CallerNumber: "5491155551234",
	Key:          "1712345678.42:offer",
}

// The golden messages are what Meta documents, byte for byte, as
// json.Marshal writes them.
func TestRenderGolden(t *testing.T) {
	c := testCatalog(t)
	order := testCall
	order.Reason = "order_status"
	tests := []struct {
		name, template, lang string
		cc                   CallContext
		want                 string
	}{
		{
			name: "positional", template: "queue_deflect_v1", lang: "es_AR", cc: testCall,
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"5491155551234","type":"template",` +
				`"template":{"name":"queue_deflect_v1","language":{"policy":"deterministic","code":"es_AR"},"components":[` +
				`{"type":"body","parameters":[{"type":"text","text":"Facturación"},{"type":"text","text":"7 min"},{"type":"text","text":"2"}]},` +
				`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"dfl:1712345678.42:offer"}]}]}}`,
		},
		{
			name: "named", template: "order_status_v1", lang: "es_AR", cc: order,
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"5491155551234","type":"template",` +
				`"template":{"name":"order_status_v1","language":{"policy":"deterministic","code":"es_AR"},"components":[` +
				`{"type":"header","parameters":[{"type":"text","parameter_name":"topic","text":"Estado de tu pedido"}]},` +
				`{"type":"body","parameters":[{"type":"text","parameter_name":"call_ref","text":"1712345678.42"},{"type":"text","parameter_name":"queue","text":"soporte"}]},` +
				`{"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"1712345678.42"}]},` +
				`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"dfl:1712345678.42:offer"}]}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.Render(tt.template, tt.lang, "5491155551234", tt.cc)
			if err != nil {
				t.Fatalf("Render(%s, %s) = %v", tt.template, tt.lang, err)
			}
			got, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal(Render(%s, %s)) = %s, want %s\ndiff (-want +got):\n%s", tt.template, tt.lang, got, tt.want, cmp.Diff(tt.want, string(got)))
			}
			if err := c.Validate(m); err != nil {
				t.Errorf("Validate(Render(%s, %s)) = %v, want nil", tt.template, tt.lang, err)
			}
		})
	}
}

func TestRenderLanguage(t *testing.T) {
	c := testCatalog(t)
	tests := []struct {
		lang, wantLang, wantLabel string
	}{
		{"es_AR", "es_AR", "Facturación"},
		{"en_US", "en_US", "Billing"},
		{"es", "es_AR", "Facturación"},    // base language
		{"es_MX", "es_AR", "Facturación"}, // same base language
		{"en", "en_US", "Billing"},
		{"en_GB", "en_US", "Billing"},
		{"pt_BR", "es_AR", "Facturación"}, // the name's first language
		{"", "es_AR", "Facturación"},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			m, err := c.Render("queue_deflect_v1", tt.lang, "549", testCall)
			if err != nil {
				t.Fatalf("Render(queue_deflect_v1, %q) = %v", tt.lang, err)
			}
			got := []string{m.Template.Language.Code, m.Template.Components[0].Parameters[0].Text}
			if want := []string{tt.wantLang, tt.wantLabel}; !cmp.Equal(got, want) {
				t.Errorf("Render(queue_deflect_v1, %q) language, label = %q, want %q", tt.lang, got, want)
			}
		})
	}
}

func TestRenderValues(t *testing.T) {
	c := testCatalog(t)
	tests := []struct {
		name  string
		edit  func(*CallContext)
		param int // index in the body
		want  string
	}{
		{"reason without a label", func(cc *CallContext) { cc.Reason = "returns" }, 0, "returns"},
		{"newline and tab", func(cc *CallContext) { cc.Reason = "a\nb\tc" }, 0, "a b c"},
		{"long space run", func(cc *CallContext) { cc.Reason = "  a      b  " }, 0, "a b"},
		{"control characters", func(cc *CallContext) { cc.Reason = "a\x00\x1bb\r\n" }, 0, "a b"},
		{"no-break space", func(cc *CallContext) { cc.Reason = "a\u00a0\u00a0\u00a0\u00a0\u00a0b" }, 0, "a b"},
		{"invalid UTF-8", func(cc *CallContext) { cc.Reason = "a\xffb" }, 0, "a\uFFFDb"},
		{"zero wait", func(cc *CallContext) { cc.Wait = 0 }, 1, "0 min"},
		{"wait rounded up", func(cc *CallContext) { cc.Wait = 60*time.Second + time.Millisecond }, 1, "2 min"},
		{"menu option at max_len", func(cc *CallContext) { cc.MenuOption = "1234567890" }, 2, "1234567890"},
		{"max_len counts characters", func(cc *CallContext) { cc.MenuOption = "ñññññññññá" }, 2, "ñññññññññá"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := testCall
			tt.edit(&cc)
			m, err := c.Render("queue_deflect_v1", "es_AR", "549", cc)
			if err != nil {
				t.Fatalf("Render(%+v) = %v", cc, err)
			}
			if got := m.Template.Components[0].Parameters[tt.param].Text; got != tt.want {
				t.Errorf("Render(%+v) body[%d] = %q, want %q", cc, tt.param, got, tt.want)
			}
			if err := c.Validate(m); err != nil {
				t.Errorf("Validate(Render(%+v)) = %v, want nil", cc, err)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	c := testCatalog(t)
	tests := []struct {
		name, template, to string
		edit               func(*CallContext)
		want               *TemplateError
	}{
		{"unknown template", "nope_v1", "549", nil,
			&TemplateError{Template: "nope_v1", Language: "es_AR", Reason: "not in the catalog"}},
		{"no recipient", "queue_deflect_v1", " ", nil,
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "to", Reason: "no recipient"}},
		{"empty reason", "queue_deflect_v1", "549", func(cc *CallContext) { cc.Reason = "" },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "body[0]", Reason: "rendered value is empty"}},
		{"blank reason", "queue_deflect_v1", "549", func(cc *CallContext) { cc.Reason = " \n\t " },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "body[0]", Reason: "rendered value is empty"}},
		{"menu option too long", "queue_deflect_v1", "549", func(cc *CallContext) { cc.MenuOption = "12345678901" },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "body[2]", Reason: "rendered value has 11 characters, more than 10"}},
		{"reason too long for the body", "queue_deflect_v1", "549", func(cc *CallContext) { cc.Reason = strings.Repeat("x", 1025) },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "body[0]", Reason: "rendered value has 1025 characters, more than 1024"}},
		{"reason too long for the header", "order_status_v1", "549", func(cc *CallContext) { cc.Reason = strings.Repeat("x", 61) },
			&TemplateError{Template: "order_status_v1", Language: "es_AR", Field: "header[0]", Reason: "rendered value has 61 characters, more than 60"}},
		{"no key for the payload", "queue_deflect_v1", "549", func(cc *CallContext) { cc.Key = "" },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "buttons[0]", Reason: "rendered value is empty"}},
		{"payload too long", "queue_deflect_v1", "549", func(cc *CallContext) { cc.Key = strings.Repeat("k", 253) },
			&TemplateError{Template: "queue_deflect_v1", Language: "es_AR", Field: "buttons[0]", Reason: "rendered value has 257 characters, more than 256"}},
		{"empty url suffix", "order_status_v1", "549", func(cc *CallContext) { cc.CallID = "" },
			&TemplateError{Template: "order_status_v1", Language: "es_AR", Field: "body[0]", Reason: "rendered value is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := testCall
			if tt.edit != nil {
				tt.edit(&cc)
			}
			m, err := c.Render(tt.template, "es_AR", tt.to, cc)
			var got *TemplateError
			if !errors.As(err, &got) {
				t.Fatalf("Render(%s, %+v) = %v, %v, want a *TemplateError", tt.template, cc, m, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Render(%s, %+v) = %v, want %v (-want +got):\n%s", tt.template, cc, got, tt.want, diff)
			}
		})
	}
}

func TestRenderExecError(t *testing.T) {
	// {{index .Reason 0}} runs on the empty context only inside its if,
	// so it loads; a one-byte reason then makes index 1 fail at render.
	c, err := NewCatalog([]TemplateSpec{{
		Name: "x_v1", Language: "es_AR", Category: CategoryUtility,
		Body: []ParamSpec{{Value: "{{if .Reason}}{{index .Reason 1}}{{end}}"}},
	}}, nil)
	if err != nil {
		t.Fatalf("NewCatalog = %v", err)
	}
	_, err = c.Render("x_v1", "es_AR", "549", CallContext{Reason: "b"})
	var te *TemplateError
	if !errors.As(err, &te) || te.Field != "body[0]" || te.Reason != "rendering failed" || te.Err == nil {
		t.Errorf("Render(Reason b) = %v, want a rendering failure of body[0]", err)
	}
}

func TestCallContextHelpers(t *testing.T) {
	tests := []struct {
		wait        time.Duration
		wantMinutes int
		wantText    string
	}{
		{-time.Second, 0, "0 min"},
		{0, 0, "0 min"},
		{time.Nanosecond, 1, "1 min"},
		{time.Minute, 1, "1 min"},
		{time.Minute + time.Second, 2, "2 min"},
		{6*time.Minute + 12*time.Second, 7, "7 min"},
		{90 * time.Minute, 90, "90 min"},
		{math.MaxInt64, 153722868, "153722868 min"},
	}
	for _, tt := range tests {
		t.Run(tt.wait.String(), func(t *testing.T) {
			cc := CallContext{Wait: tt.wait}
			if got := cc.WaitMinutes(); got != tt.wantMinutes {
				t.Errorf("WaitMinutes(%v) = %d, want %d", tt.wait, got, tt.wantMinutes)
			}
			if got := cc.WaitText(); got != tt.wantText {
				t.Errorf("WaitText(%v) = %q, want %q", tt.wait, got, tt.wantText)
			}
		})
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		key, payload string
	}{
		{"1712.42:offer", "dfl:1712.42:offer"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := CallContext{Key: tt.key}.Payload()
			if got != tt.payload {
				t.Errorf("Payload(Key %q) = %q, want %q", tt.key, got, tt.payload)
			}
			key, ok := ParsePayload(got)
			if key != tt.key || ok != (tt.key != "") {
				t.Errorf("ParsePayload(%q) = %q, %v, want %q, %v", got, key, ok, tt.key, tt.key != "")
			}
		})
	}
	if key, ok := ParsePayload("Hablar con un agente"); ok {
		t.Errorf("ParsePayload(a button text) = %q, true, want false", key)
	}
}

func TestSpecValidate(t *testing.T) {
	c := testCatalog(t)
	order := testCall
	order.Reason = "order_status"
	positional, err := c.Render("queue_deflect_v1", "es_AR", "549", testCall)
	if err != nil {
		t.Fatal(err)
	}
	named, err := c.Render("order_status_v1", "es_AR", "549", order)
	if err != nil {
		t.Fatal(err)
	}
	// Components of the positional message: 0 body, 1 quick_reply.
	// Of the named one: 0 header, 1 body, 2 url, 3 quick_reply.
	tests := []struct {
		name      string
		named     bool
		edit      func(m *Message)
		wantField string // "" for no error
		wantIn    string // in the reason
	}{
		{"positional as rendered", false, func(m *Message) {}, "", ""},
		{"named as rendered", true, func(m *Message) {}, "", ""},
		{"named in another order", true, func(m *Message) {
			p := m.Template.Components[1].Parameters
			p[0], p[1] = p[1], p[0]
		}, "", ""},
		{"buttons in another order", true, func(m *Message) {
			cs := m.Template.Components
			cs[2], cs[3] = cs[3], cs[2]
		}, "", ""},
		{"empty policy", false, func(m *Message) { m.Template.Language.Policy = "" }, "", ""},

		{"nil", false, nil, "", "no message"},
		{"not whatsapp", false, func(m *Message) { m.MessagingProduct = "" }, "messaging_product", "want whatsapp"},
		{"text message", false, func(m *Message) { m.Type = TypeText }, "type", "not a template"},
		{"no template", false, func(m *Message) { m.Template = nil }, "type", "not a template"},
		{"no recipient", false, func(m *Message) { m.To = "" }, "to", "no recipient"},
		{"other template", false, func(m *Message) { m.Template.Name = "queue_recover_v1" }, "name", "queue_recover_v1"},
		{"other language", false, func(m *Message) { m.Template.Language.Code = "en_US" }, "language", "en_US"},
		{"policy", false, func(m *Message) { m.Template.Language.Policy = "fallback" }, "language", "policy"},
		{"one body parameter too few", false, func(m *Message) {
			m.Template.Components[0].Parameters = m.Template.Components[0].Parameters[:2]
		}, "body", "2 parameters, want 3"},
		{"one body parameter too many", false, func(m *Message) {
			cp := &m.Template.Components[0]
			cp.Parameters = append(cp.Parameters, Parameter{Type: ParamText, Text: "x"})
		}, "body", "4 parameters, want 3"},
		{"no body", false, func(m *Message) { m.Template.Components = m.Template.Components[1:] }, "body", "missing"},
		{"two bodies", false, func(m *Message) {
			m.Template.Components = append(m.Template.Components, m.Template.Components[0])
		}, "components[2]", "second body"},
		{"footer", false, func(m *Message) {
			m.Template.Components = append(m.Template.Components, Component{Type: "footer"})
		}, "components[2]", `"footer"`},
		{"unexpected header", false, func(m *Message) {
			m.Template.Components = append(m.Template.Components, Component{Type: ComponentHeader, Parameters: []Parameter{{Type: ParamText, Text: "x"}}})
		}, "header", "1 parameters, want 0"},
		{"currency parameter", false, func(m *Message) { m.Template.Components[0].Parameters[1].Type = "currency" }, "body[1]", `"currency"`},
		{"positional with a name", false, func(m *Message) { m.Template.Components[0].Parameters[0].ParameterName = "reason" }, "body[0]", "positional"},
		{"empty value", false, func(m *Message) { m.Template.Components[0].Parameters[0].Text = "  " }, "body[0]", "empty"},
		{"newline", false, func(m *Message) { m.Template.Components[0].Parameters[0].Text = "a\nb" }, "body[0]", "newline or tab"},
		{"tab", false, func(m *Message) { m.Template.Components[0].Parameters[0].Text = "a\tb" }, "body[0]", "newline or tab"},
		{"five spaces", false, func(m *Message) { m.Template.Components[0].Parameters[0].Text = "a     b" }, "body[0]", "four consecutive spaces"},
		{"four spaces", false, func(m *Message) { m.Template.Components[0].Parameters[0].Text = "a    b" }, "", ""},
		{"over max_len", false, func(m *Message) { m.Template.Components[0].Parameters[2].Text = "12345678901" }, "body[2]", "11 characters, more than 10"},
		{"no button", false, func(m *Message) { m.Template.Components = m.Template.Components[:1] }, "buttons[0]", "missing"},
		{"button index", false, func(m *Message) { m.Template.Components[1].Index = "1" }, "components[1]", "no button 1"},
		{"button index not a number", false, func(m *Message) { m.Template.Components[1].Index = "00" }, "components[1]", "want a number"},
		{"button sub_type", false, func(m *Message) { m.Template.Components[1].SubType = ButtonURL }, "buttons[0]", "sub_type"},
		{"button twice", false, func(m *Message) {
			m.Template.Components = append(m.Template.Components, m.Template.Components[1])
		}, "components[2]", "given twice"},
		{"button without parameter", false, func(m *Message) { m.Template.Components[1].Parameters = nil }, "buttons[0]", "0 parameters, want 1"},
		{"button parameter type", false, func(m *Message) {
			m.Template.Components[1].Parameters[0] = Parameter{Type: ParamText, Text: "dfl:x"}
		}, "buttons[0]", `"text": want payload`},
		{"empty payload", false, func(m *Message) { m.Template.Components[1].Parameters[0].Payload = "" }, "buttons[0]", "empty"},

		{"named without a name", true, func(m *Message) { m.Template.Components[1].Parameters[0].ParameterName = "" }, "body[0]", "no parameter_name"},
		{"named with an unknown name", true, func(m *Message) { m.Template.Components[1].Parameters[0].ParameterName = "ref" }, "body[0]", `"ref" is not one`},
		{"named twice", true, func(m *Message) { m.Template.Components[1].Parameters[1].ParameterName = "call_ref" }, "body[1]", "given twice"},
		{"named over its own max_len", true, func(m *Message) {
			p := m.Template.Components[1].Parameters
			p[0], p[1] = p[1], p[0]
			p[1].Text = strings.Repeat("x", 21)
		}, "body[1]", "21 characters, more than 20"},
		{"named header missing", true, func(m *Message) { m.Template.Components = m.Template.Components[1:] }, "header", "missing"},
		{"url button parameter type", true, func(m *Message) {
			m.Template.Components[2].Parameters[0] = Parameter{Type: ParamPayload, Payload: "x"}
		}, "buttons[0]", `"payload": want text`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := positional
			if tt.named {
				base = named
			}
			var m *Message
			if tt.edit != nil {
				m = cloneMessage(t, base)
				tt.edit(m)
			}
			spec, _ := c.Lookup(base.Template.Name, "es_AR")
			err := spec.Validate(m)
			if tt.wantIn == "" {
				if err != nil {
					t.Errorf("Validate(%s) = %v, want nil", tt.name, err)
				}
				return
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("Validate(%s) = %v, want a *TemplateError", tt.name, err)
			}
			if te.Field != tt.wantField || !strings.Contains(te.Reason, tt.wantIn) {
				t.Errorf("Validate(%s) = %v, want field %q and a reason with %q", tt.name, err, tt.wantField, tt.wantIn)
			}
		})
	}
}

func cloneMessage(t *testing.T, m *Message) *Message {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out Message
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestCatalogValidate(t *testing.T) {
	c := testCatalog(t)
	en, err := c.Render("queue_deflect_v1", "en_US", "549", testCall)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		m      *Message
		wantIn string
	}{
		{"known", en, ""},
		{"nil", nil, "not a template message"},
		{"text", NewTextMessage("549", "hola"), "not a template message"},
		{"unknown name", NewTemplateMessage("549", Template{Name: "nope_v1", Language: Language{Code: "es_AR"}}), "not in the catalog"},
		// Validate takes the language as given: Meta has no fallback.
		{"unknown language", NewTemplateMessage("549", Template{Name: "queue_deflect_v1", Language: Language{Code: "es"}}), "not in the catalog"},
		{"known, wrong count", NewTemplateMessage("549", Template{Name: "queue_deflect_v1", Language: Language{Code: "en_US"}}), "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Validate(tt.m)
			if tt.wantIn == "" && err != nil || tt.wantIn != "" && (err == nil || !strings.Contains(err.Error(), tt.wantIn)) {
				t.Errorf("Validate(%s) = %v, want an error with %q", tt.name, err, tt.wantIn)
			}
		})
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	// head is a valid start; each case appends to one template or
	// replaces the whole file.
	const head = "templates:\n  - name: t_v1\n    language: es_AR\n    category: UTILITY\n"
	tests := []struct {
		name      string
		yaml      string
		wantIn    []string // in the error's text
		wantField string   // of the first *TemplateError, "" if none
		wantLine  int
	}{
		{"empty file", "", []string{"empty file"}, "", 0},
		{"comment only", "# nothing\n", []string{"empty file"}, "", 0},
		{"no templates", "templates: []\n", []string{"no templates"}, "templates", 1},
		{"two documents", head + "    body: [{value: x}]\n---\ntemplates: []\n", []string{"more than one YAML document"}, "", 0},
		{"unknown top-level key", "template:\n  - name: x\n", []string{"line 1", "field template not found"}, "", 0},
		{"unknown template key", head + "    bodi: [{value: x}]\n", []string{"line 5", "field bodi not found"}, "", 0},
		{"unknown param key", head + "    body:\n      - value: x\n        maxlen: 3\n", []string{"line 7", "field maxlen not found"}, "", 0},
		{"unknown button key", head + "    buttons:\n      - type: url\n        url: x\n", []string{"line 7", "field url not found"}, "", 0},
		{"wrong type", head + "    buttons:\n      - type: url\n        index: first\n", []string{"line 7", "cannot unmarshal"}, "", 0},
		{"duplicate key", head + "    category: MARKETING\n    body: [{value: x}]\n", []string{"line 5", "already defined"}, "", 0},
		{"not YAML", "templates: [\n", []string{"yaml"}, "", 0},

		{"unknown field", head + "    body:\n      - value: \"{{.Reasn}}\"\n", []string{"unknown field .Reasn", ".ReasonLabel"}, "body[0].value", 6},
		{"unknown field in an untaken branch", head + "    body:\n      - value: \"{{if .Reason}}{{.Foo}}{{end}}\"\n", []string{"unknown field .Foo"}, "body[0].value", 6},
		{"unknown field after $", head + "    body:\n      - value: \"{{$.Nope}}\"\n", []string{"unknown field .Nope"}, "body[0].value", 6},
		{"unknown field in a pipeline", head + "    body:\n      - value: \"{{printf \\\"%s\\\" (.Queue | printf \\\"%s-%s\\\" .Nada)}}\"\n", []string{"unknown field .Nada"}, "body[0].value", 6},
		{"unknown method of a field", head + "    body:\n      - value: \"{{.Wait.Foo}}\"\n", []string{"unknown field .Wait.Foo"}, "body[0].value", 6},
		{"unexported field", head + "    body:\n      - value: \"{{.labels}}\"\n", []string{"unknown field .labels"}, "body[0].value", 6},
		{"unknown field in a button", head + "    buttons:\n      - type: quick_reply\n        payload: \"{{.Paylod}}\"\n", []string{"unknown field .Paylod"}, "buttons[0].payload", 7},
		{"unknown function", head + "    body:\n      - value: \"{{upper .Reason}}\"\n", []string{`function "upper" not defined`}, "body[0].value", 6},
		{"range", head + "    body:\n      - value: \"{{range .Reason}}x{{end}}\"\n", []string{"range is not allowed"}, "body[0].value", 6},
		{"with", head + "    body:\n      - value: \"{{with .Reason}}{{.}}{{end}}\"\n", []string{"with is not allowed"}, "body[0].value", 6},
		{"define", head + "    body:\n      - value: '{{define \"x\"}}y{{end}}{{.Reason}}'\n", []string{"define and block"}, "body[0].value", 6},
		{"template", head + "    body:\n      - value: '{{template \"x\"}}'\n", []string{"template is not allowed"}, "body[0].value", 6},
		{"parse error", head + "    body:\n      - value: \"{{.Reason\"\n", []string{"bad template"}, "body[0].value", 6},
		{"fails on the empty context", head + "    body:\n      - value: \"{{index .Reason 3}}\"\n", []string{"index out of range"}, "body[0].value", 6},
		{"empty value", head + "    body:\n      - value: \"\"\n", []string{"empty"}, "body[0].value", 6},

		{"bad category", "templates:\n  - name: t_v1\n    language: es_AR\n    category: PROMO\n    body: [{value: x}]\n", []string{`"PROMO"`, "UTILITY"}, "category", 4},
		{"no category", "templates:\n  - name: t_v1\n    language: es_AR\n    body: [{value: x}]\n", []string{`category: ""`}, "category", 2},
		{"lowercase category", "templates:\n  - name: t_v1\n    language: es_AR\n    category: utility\n    body: [{value: x}]\n", []string{`"utility"`}, "category", 4},
		{"language shape", "templates:\n  - name: t_v1\n    language: es-AR\n    category: UTILITY\n    body: [{value: x}]\n", []string{"language code"}, "language", 3},
		{"name shape", "templates:\n  - name: Queue Deflect\n    language: es_AR\n    category: UTILITY\n    body: [{value: x}]\n", []string{`"Queue Deflect"`}, "name", 2},
		{"parameter format", head + "    parameter_format: numbered\n    body: [{value: x}]\n", []string{`"numbered"`}, "parameter_format", 5},
		{"duplicate", head + "    body: [{value: x}]\n  - name: t_v1\n    language: es_AR\n    category: MARKETING\n    body: [{value: x}]\n", []string{"duplicate of templates[0]"}, "", 6},
		{"no parameters", head, []string{"no header, body or button parameters"}, "", 2},
		{"named without a name", head + "    parameter_format: named\n    body:\n      - value: x\n", []string{"required"}, "body[0].name", 7},
		{"bad parameter name", head + "    parameter_format: named\n    body:\n      - name: Reason\n        value: x\n", []string{`"Reason"`}, "body[0].name", 7},
		{"parameter name twice", head + "    parameter_format: named\n    body:\n      - {name: a, value: x}\n      - {name: a, value: y}\n", []string{`"a" used twice`}, "body[1].name", 8},
		{"two header parameters", head + "    header: [{value: x}, {value: y}]\n", []string{"at most one"}, "header", 5},
		{"header max_len", head + "    header: [{value: x, max_len: 61}]\n", []string{"want 1 to 60"}, "header[0].max_len", 5},
		{"body max_len", head + "    body: [{value: x, max_len: 1025}]\n", []string{"want 1 to 1024"}, "body[0].max_len", 5},
		{"negative max_len", head + "    body: [{value: x, max_len: -1}]\n", []string{"want 1 to 1024"}, "body[0].max_len", 5},
		{"button index 10", head + "    buttons:\n      - {type: quick_reply, index: 10, payload: x}\n", []string{"want 0 to 9"}, "buttons[0].index", 6},
		{"button index -1", head + "    buttons:\n      - {type: quick_reply, index: -1, payload: x}\n", []string{"want 0 to 9"}, "buttons[0].index", 6},
		{"button index twice", head + "    buttons:\n      - {type: quick_reply, payload: x}\n      - {type: url, text: y}\n", []string{"0 used twice"}, "buttons[1].index", 7},
		{"button type", head + "    buttons:\n      - {type: copy_code, payload: x}\n", []string{`"copy_code"`}, "buttons[0].type", 6},
		{"quick reply with text", head + "    buttons:\n      - {type: quick_reply, payload: x, text: y}\n", []string{"only url buttons"}, "buttons[0].text", 6},
		{"url with payload", head + "    buttons:\n      - {type: url, payload: x, text: y}\n", []string{"only quick_reply buttons"}, "buttons[0].payload", 6},
		{"quick reply without payload", head + "    buttons:\n      - {type: quick_reply}\n", []string{"empty"}, "buttons[0].payload", 6},
		{"button max_len", head + "    buttons:\n      - {type: url, text: x, max_len: 2001}\n", []string{"want 1 to 2000"}, "buttons[0].max_len", 6},
		{"label language", "reason_labels:\n  Spanish: {billing: x}\n" + head + "    body: [{value: x}]\n", []string{`"Spanish"`}, "reason_labels", 2},
		{"empty label", "reason_labels:\n  es:\n    billing: \" \"\n" + head + "    body: [{value: x}]\n", []string{"empty label"}, "reason_labels.es.billing", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadCatalog(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("LoadCatalog(%q) = %v, nil, want an error", tt.yaml, c)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("LoadCatalog(%q) = %v, want an error with %q", tt.yaml, err, s)
				}
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				if tt.wantLine != 0 {
					t.Errorf("LoadCatalog(%q) = %v, want a *TemplateError", tt.yaml, err)
				}
				return
			}
			if te.Field != tt.wantField || te.Line != tt.wantLine {
				t.Errorf("LoadCatalog(%q) = field %q line %d (%v), want field %q line %d", tt.yaml, te.Field, te.Line, err, tt.wantField, tt.wantLine)
			}
		})
	}
}

func TestLoadCatalogReportsEveryError(t *testing.T) {
	yaml := "templates:\n" +
		"  - {name: a_v1, language: es_AR, category: PROMO, body: [{value: x}]}\n" +
		"  - {name: b_v1, language: es_AR, category: UTILITY, body: [{value: \"{{.Nope}}\"}]}\n"
	_, err := LoadCatalog(strings.NewReader(yaml))
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		te := e.(*TemplateError)
		got = append(got, te.Template+" "+te.Field)
	}
	if want := []string{"a_v1 category", "b_v1 body[0].value"}; !cmp.Equal(got, want) {
		t.Errorf("LoadCatalog(two bad templates) = %q, want %q", got, want)
	}
}

func TestLoadCatalogFileMissing(t *testing.T) {
	if _, err := LoadCatalogFile("testdata/no-such-catalog.yaml"); err == nil {
		t.Errorf("LoadCatalogFile(missing) = nil, want an error")
	}
}

func TestTemplateErrorString(t *testing.T) {
	tests := []struct {
		err  *TemplateError
		want string
	}{
		{&TemplateError{Template: "t_v1", Language: "es_AR", Field: "body[0]", Reason: "rendered value is empty"},
			`whatsapp: template "t_v1" (es_AR) body[0]: rendered value is empty`},
		{&TemplateError{Template: "t_v1", Language: "es_AR", Field: "body[0].value", Reason: "bad template", Line: 7, Err: errors.New("boom")},
			`whatsapp: catalog line 7: template "t_v1" (es_AR) body[0].value: bad template: boom`},
		{&TemplateError{Reason: "not a template message"}, `whatsapp: not a template message`},
		{&TemplateError{Field: "reason_labels", Reason: "bad", Line: 2}, `whatsapp: catalog line 2: reason_labels: bad`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error(%#v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// The shipped sample catalog must load, and every entry in it must render
// a message that passes its own validation.
func TestSampleCatalog(t *testing.T) {
	c, err := LoadCatalogFile("../configs/deflectd/templates.yaml")
	if err != nil {
		t.Fatalf("LoadCatalogFile(sample) = %v", err)
	}
	for _, s := range c.Templates() {
		t.Run(s.Name+"/"+s.Language, func(t *testing.T) {
			m, err := c.Render(s.Name, s.Language, "5491155551234", testCall)
			if err != nil {
				t.Fatalf("Render(%s, %s) = %v", s.Name, s.Language, err)
			}
			if m.Template.Language.Code != s.Language {
				t.Errorf("Render(%s, %s) language = %s", s.Name, s.Language, m.Template.Language.Code)
			}
			if err := s.Validate(m); err != nil {
				t.Errorf("Validate(Render(%s, %s)) = %v, want nil", s.Name, s.Language, err)
			}
		})
	}
	for _, name := range []string{"queue_deflect_v1", "queue_recover_v1", "order_status_v1"} {
		for _, lang := range []string{"es_AR", "en_US"} {
			if s, ok := c.Lookup(name, lang); !ok || s.Language != lang {
				t.Errorf("Lookup(%s, %s) = %v, %v, want the entry", name, lang, s.Language, ok)
			}
		}
	}
}

func TestCatalogCopies(t *testing.T) {
	c := testCatalog(t)
	s, ok := c.Lookup("queue_deflect_v1", "es_AR")
	if !ok {
		t.Fatal("Lookup(queue_deflect_v1, es_AR) = false")
	}
	s.Body[0].MaxLen = 1
	c.Templates()[0].Body[0].MaxLen = 1
	if _, err := c.Render("queue_deflect_v1", "es_AR", "549", testCall); err != nil {
		t.Errorf("Render after changing copies = %v, want nil", err)
	}
	if s, _ := c.Lookup("queue_deflect_v1", "es_AR"); s.Body[0].MaxLen != 0 || s.ParameterFormat != FormatPositional {
		t.Errorf("Lookup(queue_deflect_v1) = %+v, want the loaded entry with its default format", s)
	}
	if _, ok := c.Lookup("nope_v1", "es_AR"); ok {
		t.Errorf("Lookup(nope_v1) = true, want false")
	}
}

func TestNewCatalog(t *testing.T) {
	spec := TemplateSpec{Name: "t_v1", Language: "en_US", Category: CategoryUtility, Body: []ParamSpec{{Value: "{{.ReasonLabel}}"}}}
	c, err := NewCatalog([]TemplateSpec{spec}, map[string]map[string]string{"en": {"billing": "Billing"}})
	if err != nil {
		t.Fatalf("NewCatalog = %v", err)
	}
	m, err := c.Render("t_v1", "en_US", "1", CallContext{Reason: "billing"})
	if err != nil {
		t.Fatalf("Render = %v", err)
	}
	if got := m.Template.Components[0].Parameters[0].Text; got != "Billing" {
		t.Errorf("Render(billing) = %q, want Billing", got)
	}
	spec.Category = ""
	var te *TemplateError
	if _, err := NewCatalog([]TemplateSpec{spec}, nil); !errors.As(err, &te) || te.Field != "category" || te.Line != 0 {
		t.Errorf("NewCatalog(no category) = %v, want a category error without a line", err)
	}
	var nilCatalog *Catalog
	if _, err := nilCatalog.Render("t_v1", "en_US", "1", CallContext{}); !errors.As(err, &te) {
		t.Errorf("nil Catalog.Render = %v, want a *TemplateError", err)
	}
}

// A Catalog is shared by every sender; run under -race.
func TestRenderConcurrent(t *testing.T) {
	c := testCatalog(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			cc := testCall
			cc.Key = fmt.Sprintf("call%d:offer", i)
			for range 50 {
				m, err := c.Render("queue_deflect_v1", "es", "549", cc)
				if err != nil {
					t.Errorf("Render(%+v) = %v", cc, err)
					return
				}
				if got, want := m.Template.Components[1].Parameters[0].Payload, "dfl:"+cc.Key; got != want {
					t.Errorf("Render(%+v) payload = %q, want %q", cc, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
