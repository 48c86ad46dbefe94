package whatsapp

import (
	"fmt"
	"net/http"
	"strconv"
)

// Class says what to do after an error, following Meta's error table.
type Class int

const (
	// Retry: transient (throughput, pair rate, 5xx, network); retry with
	// backoff and jitter.
	Retry Class = iota + 1
	// Permanent: retrying cannot help (bad parameters, not on WhatsApp,
	// window closed, template paused); record it and move on.
	Permanent
	// Breaker: the account or token is unusable (expired token,
	// permissions, restricted account, spam limit); stop every send and
	// alert a human.
	Breaker
)

func (c Class) String() string {
	switch c {
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	case Breaker:
		return "breaker"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Error is a failed send: Meta's error object when there was one, or the
// transport error when there was none.
type Error struct {
	// HTTPStatus is the status of Meta's answer, 0 without an answer.
	HTTPStatus int
	// Code, Subcode, Type, Message, Details and FBTraceID are Meta's
	// error object ({"error":{...}}); Details is error_data.details.
	Code      int
	Subcode   int
	Type      string
	Message   string
	Details   string
	FBTraceID string
	// Class is what to do about it.
	Class Class
	// Reason is a short, bounded name of the error kind, used as a metric
	// label ("throughput", "template", "auth", ...).
	Reason string
	// NoCode is set when Meta's answer carried no error object (a proxy's
	// page, an empty 5xx): Code is then meaningless, not AuthException (0).
	NoCode bool
	// InDoubt is set when the request may have reached Meta but no answer
	// came back (a timeout after sending): the message may have been sent.
	InDoubt bool
	// Err is the transport error, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.HTTPStatus == 0 {
		doubt := ""
		if e.InDoubt {
			doubt = ", outcome unknown"
		}
		return fmt.Sprintf("whatsapp: %s (%s%s): %v", e.Reason, e.Class, doubt, e.Err)
	}
	msg := e.Message
	if e.Details != "" {
		msg += ": " + e.Details
	}
	return fmt.Sprintf("whatsapp: %d %s: code %d (%s, %s): %s", e.HTTPStatus, http.StatusText(e.HTTPStatus), e.Code, e.Reason, e.Class, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// KnownCodes are the Meta error codes Classify knows by number, in its
// table's order: the bounded values of a "code" metric label, beside
// "other" for any code not listed and "none" for failures without one
// (network, HTTP status only).
func KnownCodes() []int {
	return []int{130429, 131056, 4, 80007, 131000, 131016, 131057, 135000, 131048, 190, 0, 3, 10,
		368, 131031, 131047, 131026, 131049, 131050, 132000, 132001, 132005, 132007, 132008, 132012,
		132018, 132015, 132016, 131008, 131009, 131030}
}

// CodeLabel returns the "code" metric label of an error: its Meta code when
// KnownCodes lists it, "other" for a code it does not list, "none" when
// Meta's answer had no error object (e.g. a network failure).
func (e *Error) CodeLabel() string {
	if e.HTTPStatus == 0 || (e.Code == 0 && e.Message == "") {
		return "none"
	}
	for _, c := range KnownCodes() {
		if c == e.Code {
			return strconv.Itoa(c)
		}
	}
	if e.Code >= 200 && e.Code <= 299 {
		return "200-299"
	}
	return "other"
}

// noCode is the code Classify is given when an answer had no Meta error
// object; 0 is itself a Meta code (AuthException).
const noCode = -1

// Classify maps Meta's error code and the HTTP status to a Class and a
// reason. Unknown codes on a 5xx are transient; unknown codes on a 4xx are
// permanent, so an unforeseen error never loops.
func Classify(httpStatus, code int) (Class, string) {
	switch code {
	case 130429:
		return Retry, "throughput"
	case 131056:
		return Retry, "pair_rate"
	case 4, 80007:
		return Retry, "app_rate"
	case 131000, 131016, 131057, 135000:
		return Retry, "transient"
	case 131048:
		return Breaker, "spam_rate"
	case 190:
		return Breaker, "token_expired"
	case 0, 3, 10:
		if httpStatus >= 500 {
			return Retry, "server" // a server fault, whatever code it wore
		}
		return Breaker, "auth"
	case 368, 131031:
		return Breaker, "restricted"
	case 131047:
		return Permanent, "window_closed"
	case 131026:
		return Permanent, "undeliverable"
	case 131049:
		return Permanent, "ecosystem"
	case 131050:
		return Permanent, "marketing_optout"
	case 132000, 132001, 132005, 132007, 132008, 132012, 132018:
		return Permanent, "template"
	case 132015, 132016:
		return Permanent, "template_paused"
	case 131008, 131009:
		return Permanent, "parameter"
	case 131030:
		return Permanent, "not_allowed"
	}
	if code >= 200 && code <= 299 {
		return Breaker, "permission"
	}
	if httpStatus >= 500 || httpStatus == 0 {
		return Retry, "server"
	}
	if httpStatus == http.StatusTooManyRequests {
		return Retry, "throughput"
	}
	if httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden {
		return Breaker, "auth"
	}
	return Permanent, "unknown"
}
