package deflect

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Why a caller is never offered WhatsApp, as the "reason" label of
// deflectd_offers_skipped_total.
const (
	skipAnonymous = "anonymous"
	skipInvalid   = "invalid_number"
	skipNotMobile = "not_mobile"
)

// errIneligible says a caller number cannot receive WhatsApp; its text is
// one of the skip reasons.
type errIneligible string

func (e errIneligible) Error() string { return "caller number not eligible: " + string(e) }

// normalizeCaller turns the caller number Asterisk reports into E.164 with
// the configured default region for national numbers, and says whether it
// can receive WhatsApp: anonymous, invalid and fixed-line numbers cannot.
// Numbers whose type the numbering plan cannot tell (the NANP's
// FIXED_LINE_OR_MOBILE) are accepted: refusing every US and Canadian caller
// would be worse than a failed send, which the outbox records as
// undeliverable (131026) and the bridge then remembers.
func normalizeCaller(raw, region string) (string, error) {
	s := strings.TrimSpace(raw)
	switch strings.ToLower(s) {
	case "", "anonymous", "unknown", "restricted", "private", "unavailable":
		return "", errIneligible(skipAnonymous)
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", errIneligible(skipInvalid)
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", errIneligible(skipNotMobile)
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// skipReason returns the metric label of an eligibility error.
func skipReason(err error) string {
	var e errIneligible
	if errors.As(err, &e) {
		return string(e)
	}
	return "error"
}
