package whatsapp

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzRender sends arbitrary call data through the test catalog: Render must
// never panic, and must either refuse with a *TemplateError or return a
// message that passes its own validation, with every value non-empty,
// within its MaxLen and free of what Meta refuses.
func FuzzRender(f *testing.F) {
	c := testCatalog(f)
	f.Add("queue_deflect_v1", "es_AR", "1712345678.42", "soporte", "2", "billing", "es", int64(372e9), "5491155551234", "1712345678.42:offer")
	f.Add("order_status_v1", "es", "1712345678.42", "", "9", "order_status", "", int64(0), "", "k")
	f.Add("queue_deflect_v1", "en", "", "q", "12345678901", "a\n\tb      c", "en", int64(-1), "+54 9", "")
	f.Add("order_status_v1", "xx", strings.Repeat("é", 21), " ", "\x00", "\xff\xfe", "\u2028", int64(1<<62), "", strings.Repeat(" ", 300))
	f.Add("nope", "es_AR", "", "", "", "", "", int64(0), "", "")
	f.Fuzz(func(t *testing.T, name, lang, callID, queue, option, reason, language string, wait int64, caller, key string) {
		cc := CallContext{CallID: callID, Queue: queue, MenuOption: option, Reason: reason, Language: language,
			Wait: time.Duration(wait), CallerNumber: caller, Key: key}
		m, err := c.Render(name, lang, "5491155551234", cc)
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("Render(%s, %s, %+v) = %v, want a *TemplateError", name, lang, cc, err)
			}
			if m != nil {
				t.Fatalf("Render(%s, %s, %+v) = %v and an error", name, lang, cc, m)
			}
			return
		}
		spec, ok := c.Lookup(name, lang)
		if !ok {
			t.Fatalf("Render(%s, %s) succeeded but Lookup did not find it", name, lang)
		}
		if err := spec.Validate(m); err != nil {
			t.Fatalf("Validate(Render(%s, %s, %+v)) = %v, want nil", name, lang, cc, err)
		}
		if err := c.Validate(m); err != nil {
			t.Fatalf("Catalog.Validate(Render(%s, %s, %+v)) = %v, want nil", name, lang, cc, err)
		}
		for _, comp := range m.Template.Components {
			for _, p := range comp.Parameters {
				v := p.Text + p.Payload
				if v == "" || v != strings.TrimSpace(v) || strings.ContainsAny(v, "\n\t\r") || strings.Contains(v, "  ") || !utf8.ValidString(v) {
					t.Fatalf("Render(%s, %s, %+v) %s parameter = %q, want a trimmed, single-spaced value", name, lang, cc, comp.Type, v)
				}
			}
		}
	})
}

// FuzzLoadCatalog feeds arbitrary bytes to the loader: it must never panic,
// and a catalog it accepts must render without panicking.
func FuzzLoadCatalog(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input it finds, at a
	// cost that grows with its size. The full catalogs have tests of
	// their own.
	b, err := os.ReadFile("testdata/catalog.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("templates:\n  - {name: a_v1, language: es_AR, category: UTILITY, body: [{value: \"{{.Reason}}\"}]}\n")
	f.Add("templates:\n  - {name: a_v1, language: es, category: UTILITY, parameter_format: named, header: [{name: h, value: \"{{if .Queue}}{{.Queue}}{{end}}\"}], buttons: [{type: url, index: 3, text: \"{{$.CallID}}\"}]}\n")
	f.Add("reason_labels: {es: {billing: x}}\ntemplates: [{name: a, language: es, category: UTILITY, body: [{value: \"{{.Wait.Minutes}}\"}]}]\n")
	f.Add("templates: &a [*a]\n")
	f.Add("templates:\n  - name: t\n    body:\n      - value: \"{{range .Reason}}{{end}}\"\n")
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := LoadCatalog(strings.NewReader(doc))
		if err != nil {
			if c != nil {
				t.Fatalf("LoadCatalog(%q) = %v and an error", doc, c)
			}
			return
		}
		for _, s := range c.Templates() {
			m, err := c.Render(s.Name, s.Language, "1", testCall)
			if err != nil {
				var te *TemplateError
				if !errors.As(err, &te) {
					t.Fatalf("Render(%s, %s) = %v, want a *TemplateError", s.Name, s.Language, err)
				}
				continue
			}
			if err := s.Validate(m); err != nil {
				t.Fatalf("Validate(Render(%s, %s)) = %v, want nil", s.Name, s.Language, err)
			}
		}
	})
}
