package ari

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinels for the statuses the bridge acts on. An *Error matches them with
// errors.Is, so callers never compare status codes or strings.
var (
	// ErrNotFound is a 404: the channel, bridge or playback is gone. For a
	// hangup or a bridge teardown this is usually success.
	ErrNotFound = errors.New("ari: not found")
	// ErrConflict is a 409: the channel is not in a Stasis application, or
	// a bridge with that id exists.
	ErrConflict = errors.New("ari: conflict")
	// ErrPreconditionFailed is a 412: the channel is in an invalid state
	// for the operation (answering a channel already hung up, say).
	ErrPreconditionFailed = errors.New("ari: precondition failed")
	// ErrUnprocessable is a 422: an event source or endpoint Asterisk does
	// not know.
	ErrUnprocessable = errors.New("ari: unprocessable")

	// ErrApplicationReplaced is returned by Run when another websocket took
	// the application name. It is final: reconnecting would make the two
	// instances take the name from each other in turn.
	ErrApplicationReplaced = errors.New("ari: application replaced by another connection")
	// ErrSlowConsumer is the reason of a Disconnected when the consumer fell
	// more than Options.MaxBacklog events behind and the client closed the
	// connection rather than grow without bound.
	ErrSlowConsumer = errors.New("ari: consumer too slow, event backlog over limit")
	// ErrClosed is returned by Next once Run has returned and every queued
	// event was read.
	ErrClosed = errors.New("ari: client closed")
)

// Error is a non-2xx answer from ARI. It keeps the HTTP status and the
// message Asterisk put in its {"message": ...} body.
type Error struct {
	// Op is the client operation, e.g. "answer" or "originate".
	Op string
	// Method and Path are the request's, relative to the ARI base URL.
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is Asterisk's explanation, e.g. "Channel not found"; empty
	// when the body had none.
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("ari: %s (%s %s): %d %s", e.Op, e.Method, e.Path, e.StatusCode, msg)
}

// Is reports whether e has the status of one of the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrPreconditionFailed:
		return e.StatusCode == http.StatusPreconditionFailed
	case ErrUnprocessable:
		return e.StatusCode == http.StatusUnprocessableEntity
	}
	return false
}
