package whatsapptest

import (
	"fmt"

	"github.com/deflectd/deflectd/whatsapp"
)

// TemplatesFromCatalog registers a deflectd template catalog at the fake,
// as a business creates the same templates in WhatsApp Manager: names,
// languages, categories, parameter placeholders (positional {{1}} or named)
// and buttons. The fake still validates every request with its own parser;
// only the list of approved templates comes from the catalog.
func TemplatesFromCatalog(cat *whatsapp.Catalog) []Template {
	var out []Template
	for _, spec := range cat.Templates() {
		t := Template{Name: spec.Name, Language: spec.Language, Category: spec.Category}
		placeholder := func(p whatsapp.ParamSpec, i int) string {
			if spec.ParameterFormat == whatsapp.FormatNamed {
				return p.Name
			}
			return fmt.Sprint(i + 1)
		}
		for i, p := range spec.Header {
			t.Header = append(t.Header, placeholder(p, i))
		}
		for i, p := range spec.Body {
			t.Body = append(t.Body, placeholder(p, i))
		}
		for _, b := range spec.Buttons {
			for len(t.Buttons) <= b.Index {
				t.Buttons = append(t.Buttons, Button{SubType: whatsapp.ButtonQuickReply, Text: "Reply"})
			}
			t.Buttons[b.Index] = Button{SubType: b.Type, Text: "Reply", Dynamic: b.Type == whatsapp.ButtonURL}
		}
		out = append(out, t)
	}
	return out
}
