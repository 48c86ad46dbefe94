package ari

import (
	"context"
	"sync"
)

// queue is the unbounded FIFO between the websocket reader and the
// consumer. The reader must never wait on the consumer (Asterisk closes a
// socket it cannot write to within websocket_write_timeout), so push never
// blocks; the client bounds the backlog itself (Options.MaxBacklog) by
// closing the connection, never by dropping.
type queue struct {
	mu     sync.Mutex
	items  []item
	head   int
	notify chan struct{} // capacity 1: "an item was pushed"
	done   chan struct{} // closed by close, so every waiter wakes
	closed bool
	err    error // why the queue closed, returned by pop once empty
}

// item is a raw frame from Asterisk, decoded when read, or an event the
// client made itself (Connected, Disconnected).
type item struct {
	raw []byte
	ev  Event
}

func newQueue() *queue {
	return &queue{notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// push appends it and returns the backlog length.
func (q *queue) push(it item) int {
	q.mu.Lock()
	q.items = append(q.items, it)
	n := len(q.items) - q.head
	q.mu.Unlock()
	q.wake()
	return n
}

func (q *queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// close makes pop return err once the queued items are read.
func (q *queue) close(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed, q.err = true, err
		close(q.done)
	}
}

// pop returns the oldest item and the backlog left, waiting for one until
// ctx ends. Once the queue is closed and empty it returns the close error.
func (q *queue) pop(ctx context.Context) (item, int, error) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			it := q.items[q.head]
			q.items[q.head] = item{}
			q.head++
			n := len(q.items) - q.head
			// Reuse the array once drained; compact when the read half
			// dominates, so a long backlog does not pin memory.
			if n == 0 {
				q.items, q.head = q.items[:0], 0
			} else if q.head > 1024 && q.head > n {
				q.items = append(q.items[:0], q.items[q.head:]...)
				q.head = 0
			}
			q.mu.Unlock()
			return it, n, nil
		}
		closed, err := q.closed, q.err
		q.mu.Unlock()
		if closed {
			return item{}, 0, err
		}
		select {
		case <-q.notify:
		case <-q.done:
		case <-ctx.Done():
			return item{}, 0, ctx.Err()
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
