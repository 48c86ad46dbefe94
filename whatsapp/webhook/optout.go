package webhook

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// DefaultOptOutKeywords returns the keywords that opt a customer out when
// no others are configured: the English words carriers and Meta's own
// marketing buttons use (STOP, STOPALL, UNSUBSCRIBE) and their Spanish,
// Portuguese and French counterparts for the regions deflectd is deployed
// in (BAJA, DAR DE BAJA, DARME DE BAJA, PARAR, ARRÊT).
//
// CANCEL/CANCELAR, END/FIN and QUIT are left out on purpose: a contact
// center's customers write them about their order or appointment ("cancelar"
// a booking), and treating that as an opt-out would silence the very
// conversation they asked for.
func DefaultOptOutKeywords() []string {
	return []string{"STOP", "STOPALL", "UNSUBSCRIBE", "BAJA", "DAR DE BAJA", "DARME DE BAJA", "PARAR", "ARRÊT"}
}

// IsOptOut reports whether text, as a whole, is one of keywords. The
// comparison ignores case, accents, surrounding punctuation and spacing
// ("baja", " Baja. ", "¡BAJA!", "arret" all match BAJA or ARRÊT), because
// customers type keywords loosely and a missed opt-out is a compliance
// failure. A keyword inside a longer text ("please don't stop calling")
// does not match: only a message that is nothing but the keyword is
// an unambiguous request.
func IsOptOut(text string, keywords []string) bool {
	_, ok := matchOptOut(fold(text), foldAll(keywords))
	return ok
}

// matchOptOut returns the keyword (as configured) that the folded text
// equals. Both sides are folded by the caller, so the processor folds its
// keywords once.
func matchOptOut(folded string, keywords []foldedKeyword) (string, bool) {
	if folded == "" {
		return "", false
	}
	for _, k := range keywords {
		if k.folded == folded {
			return k.keyword, true
		}
	}
	return "", false
}

type foldedKeyword struct {
	keyword, folded string
}

func foldAll(keywords []string) []foldedKeyword {
	out := make([]foldedKeyword, 0, len(keywords))
	for _, k := range keywords {
		if f := fold(k); f != "" {
			out = append(out, foldedKeyword{keyword: k, folded: f})
		}
	}
	return out
}

// fold reduces s to lower-case letters and digits without accents, with
// every run of anything else (spaces, punctuation, emoji) between words
// turned into one space and dropped at the ends.
func fold(s string) string {
	var b strings.Builder
	gap := false
	// Decomposing first turns "Ê" into "E" and a combining mark, and the
	// marks are dropped.
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
