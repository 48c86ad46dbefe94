package deflect

import (
	"sync"

	"github.com/deflectd/deflectd/ari"
)

// mailbox is a call's unbounded event queue. The dispatcher must never wait
// on one slow call (it would stall every other call and, behind it, the
// websocket), and no event may be dropped; a call's events are few (about
// sixty in its whole life), so unbounded is safe.
type mailbox struct {
	mu     sync.Mutex
	events []ari.Event
	ready  chan struct{} // capacity 1: "something was pushed"
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

func (m *mailbox) push(ev ari.Event) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// drain returns every queued event, oldest first.
func (m *mailbox) drain() []ari.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.events
	m.events = nil
	return evs
}
