package whatsapptest

import (
	"context"
	"net/http"
	"time"
)

// Fault is what the fake does instead of, or on top of, answering a request
// normally. Combine fields: Fault{Delay: d, Code: 131000} answers 131000
// after d.
type Fault struct {
	// Code is a Meta error code to answer with, in Meta's error object
	// with the HTTP status Meta uses for it (HTTPStatus). Code 0 is "no
	// code" here: Meta's AuthException (0) cannot be injected.
	Code int
	// Status overrides the HTTP status. Alone (Code 0) it answers a bare
	// Graph error for that status: code 2, "An unexpected error has
	// occurred", is_transient, for a 5xx; code 1 for anything else.
	Status int
	// Details replaces error_data.details.
	Details string
	// NoBody answers the status with an empty body, as a proxy or load
	// balancer in front of Meta does on a 500 or 503.
	NoBody bool
	// Async accepts a valid message (and answers its wamid) and reports
	// Code in a "failed" status webhook instead, as Meta does for most
	// delivery failures (131026, 131047, 131049, ...).
	Async bool
	// Delay waits before processing the request; the wait ends early, with
	// nothing answered or sent, when the client gives up.
	Delay time.Duration
	// Drop closes the connection once the request has been read, before
	// processing it: nothing was sent, but the client cannot know.
	Drop bool
	// Lose processes the request (a valid message is accepted, recorded
	// and sent, with its webhooks) and closes the connection instead of
	// answering: the client is in doubt although the message went out.
	Lose bool
}

// Forever, as a count, makes a fault apply to every matching request until
// ClearFaults.
const Forever = -1

func (f Fault) isError() bool { return !f.Async && (f.Code != 0 || f.Status != 0 || f.NoBody) }

// failure returns the answer of an error fault.
func (f Fault) failure() *failure {
	if f.Code == 0 {
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		code := 1
		if status >= 500 {
			code = 2
		}
		e := metaError(code, f.Details)
		e.status, e.noBody = status, f.NoBody
		return e
	}
	e := metaError(f.Code, f.Details)
	if f.Status != 0 {
		e.status = f.Status
	}
	e.noBody = f.NoBody
	return e
}

type faultRule struct {
	left  int // Forever, or how many more requests
	fault Fault
}

// take returns the rule's fault and uses up one of its requests; ok is
// false when the rule is used up.
func (r *faultRule) take() (Fault, bool) {
	if r == nil || r.left == 0 {
		return Fault{}, false
	}
	if r.left > 0 {
		r.left--
	}
	return r.fault, true
}

// FailNext makes the next n requests to the messages endpoint (Forever:
// all of them), read receipts included, meet f, in arrival order and
// before any check, so a valid token or message does not help:
// FailNext(3, Fault{Code: 190}) is a token revoked for three requests.
// Calls queue up: the rules apply one after the other.
func (s *Server) FailNext(n int, f Fault) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, &faultRule{left: n, fault: f})
}

// FailRecipient makes the next n valid messages to the recipient (a phone
// number or wa_id; Forever: all of them) meet f after the request passed
// the shape and template checks, as a delivery failure does at Meta.
// n == 0 removes the recipient's rule.
func (s *Server) FailRecipient(to string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		delete(s.recipients, digits(to))
		return
	}
	s.recipients[digits(to)] = &faultRule{left: n, fault: f}
}

// SetDelay delays every request by d before processing it (on top of a
// fault's Delay); the wait ends early when the client gives up.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ClearFaults removes every FailNext and FailRecipient rule and the delay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next, s.recipients, s.delay = nil, map[string]*faultRule{}, 0
}

// takeNext returns the FailNext fault for a request, if any.
func (s *Server) takeNext() (Fault, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.next) > 0 {
		if f, ok := s.next[0].take(); ok {
			if s.next[0].left == 0 {
				s.next = s.next[1:]
			}
			return f, s.delay
		}
		s.next = s.next[1:]
	}
	return Fault{}, s.delay
}

// takeRecipient returns the FailRecipient fault for a recipient, if any.
func (s *Server) takeRecipient(to string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recipients[digits(to)]
	f, ok := r.take()
	if ok && r.left == 0 {
		delete(s.recipients, digits(to))
	}
	return f, ok
}

// sleep waits d, or until ctx is done or the server closes; it reports
// whether the full wait happened.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}
