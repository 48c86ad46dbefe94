package inbox

import (
	"errors"
	"fmt"
)

// Kinds of failure an operation reports; the HTTP API maps each to a
// status (404, 409, 400, 503, 403).
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid")
	ErrUnavailable = errors.New("unavailable")
)

// Error is an operation's refusal: a stable Code for programs, the Field
// of the request at fault when there is one, and a message for people. It
// wraps one of ErrNotFound, ErrConflict, ErrInvalid, ErrUnavailable or
// ErrForbidden.
type Error struct {
	Kind    error
	Code    string
	Field   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := e.Message
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind, and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func invalid(field, format string, a ...any) *Error {
	return &Error{Kind: ErrInvalid, Code: "invalid", Field: field, Message: fmt.Sprintf(format, a...)}
}

func conflict(code, format string, a ...any) *Error {
	return &Error{Kind: ErrConflict, Code: code, Message: fmt.Sprintf(format, a...)}
}

func notFound(id string) *Error {
	return &Error{Kind: ErrNotFound, Code: "not_found", Message: fmt.Sprintf("no conversation %q", id)}
}

func forbidden(err error) *Error {
	return &Error{Kind: ErrForbidden, Code: "forbidden", Message: err.Error()}
}

func unavailable(what string, err error) *Error {
	return &Error{Kind: ErrUnavailable, Code: "unavailable", Message: what, Err: err}
}
