package inbox

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// fold reduces s to lower-case letters and digits without accents, words
// separated by single spaces, so that routing keywords and name search
// match what customers type ("Factura", "facturá", "FACTURA!").
func fold(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			if gap && b.Len() > 0 {
				b.WriteByte(' ')
			}
			gap = false
			b.WriteRune(unicode.ToLower(r))
		default:
			gap = true
		}
	}
	return b.String()
}
