package ari

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

func rawItem(i int) item { return item{raw: []byte(strconv.Itoa(i))} }

func itemSeq(t *testing.T, it item) int {
	t.Helper()
	n, err := strconv.Atoi(string(it.raw))
	if err != nil {
		t.Fatalf("item %q is not a test item", it.raw)
	}
	return n
}

func TestQueueFIFO(t *testing.T) {
	q := newQueue()
	ctx := context.Background()
	for i := range 100 {
		if n := q.push(rawItem(i)); n != i+1 {
			t.Fatalf("push(%d) = %d, want %d", i, n, i+1)
		}
	}
	ev := &Connected{Reconnect: true}
	q.push(item{ev: ev})
	if n := q.len(); n != 101 {
		t.Errorf("len() = %d, want 101", n)
	}
	for i := range 100 {
		it, n, err := q.pop(ctx)
		if err != nil || itemSeq(t, it) != i || n != 100-i {
			t.Fatalf("pop() = %q, %d, %v, want %d, %d, nil", it.raw, n, err, i, 100-i)
		}
	}
	if it, n, err := q.pop(ctx); err != nil || it.ev != ev || n != 0 {
		t.Errorf("pop() = %+v, %d, %v, want the Connected event, 0, nil", it, n, err)
	}
}

func TestQueueClose(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	tests := []struct {
		name    string
		queued  int
		closeAs []error
		want    error
	}{
		{"empty", 0, []error{ErrClosed}, ErrClosed},
		{"drains first", 3, []error{ErrApplicationReplaced}, ErrApplicationReplaced},
		{"first close wins", 2, []error{errA, errB}, errA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue()
			for i := range tt.queued {
				q.push(rawItem(i))
			}
			for _, err := range tt.closeAs {
				q.close(err)
			}
			for i := range tt.queued {
				if it, _, err := q.pop(context.Background()); err != nil || itemSeq(t, it) != i {
					t.Fatalf("pop() after close = %q, %v, want item %d", it.raw, err, i)
				}
			}
			for range 2 {
				if it, n, err := q.pop(context.Background()); !errors.Is(err, tt.want) || n != 0 || it.raw != nil {
					t.Errorf("pop() once drained = %q, %d, %v, want nothing, 0, %v", it.raw, n, err, tt.want)
				}
			}
		})
	}
}

// TestQueueCloseWakes checks that close wakes a pop that waits.
func TestQueueCloseWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		done := make(chan error)
		go func() {
			_, _, err := q.pop(context.Background())
			done <- err
		}()
		synctest.Wait() // pop is blocked
		q.close(ErrApplicationReplaced)
		if err := <-done; !errors.Is(err, ErrApplicationReplaced) {
			t.Errorf("waiting pop() after close = %v, want ErrApplicationReplaced", err)
		}
	})
}

// TestQueuePushWakes checks that a waiting pop returns what is pushed, and
// only then.
func TestQueuePushWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		done := make(chan item)
		go func() {
			it, _, _ := q.pop(context.Background())
			done <- it
		}()
		synctest.Wait()
		select {
		case it := <-done:
			t.Fatalf("pop() on an empty queue = %q, want it to wait", it.raw)
		default:
		}
		time.Sleep(time.Hour) // fake time: nothing wakes pop but a push
		q.push(rawItem(7))
		if it := <-done; itemSeq(t, it) != 7 {
			t.Errorf("waiting pop() = %q, want 7", it.raw)
		}
	})
}

func TestQueuePopContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if _, _, err := q.pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("pop(ctx with 1s timeout) on an empty queue = %v, want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("pop(ctx with 1s timeout) returned after %v, want 1s", waited)
		}

		cancelled, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if _, _, err := q.pop(cancelled); !errors.Is(err, context.Canceled) {
			t.Errorf("pop(cancelled ctx) = %v, want context.Canceled", err)
		}
		// A queued item is returned even with a context that ended: the
		// backlog is never lost to a race with cancellation.
		q.push(rawItem(1))
		if it, _, err := q.pop(cancelled); err != nil || itemSeq(t, it) != 1 {
			t.Errorf("pop(cancelled ctx) with an item queued = %q, %v, want 1, nil", it.raw, err)
		}
	})
}

// TestQueueCompaction checks that compacting the array, once the read half
// dominates, keeps order, and that it happens.
func TestQueueCompaction(t *testing.T) {
	q := newQueue()
	ctx := context.Background()
	const total = 3000
	for i := range total {
		q.push(rawItem(i))
	}
	popped := 0
	pop := func() {
		t.Helper()
		it, _, err := q.pop(ctx)
		if err != nil || itemSeq(t, it) != popped {
			t.Fatalf("pop() = %q, %v, want %d", it.raw, err, popped)
		}
		popped++
	}
	for range 1500 {
		pop()
	}
	if q.head != 1500 {
		t.Fatalf("head after 1500 pops = %d, want 1500 (no compaction yet)", q.head)
	}
	pop() // head 1501 > 1024 and > the 1499 left: compaction
	if q.head != 0 || len(q.items) != total-popped {
		t.Errorf("after compaction: head = %d, len(items) = %d, want 0, %d", q.head, len(q.items), total-popped)
	}
	for popped < total {
		pop()
	}

	// Interleaved pushes and pops across many compactions keep FIFO order.
	r := rand.New(rand.NewPCG(1, 2))
	pushed, compactions := total, 0
	for range 200_000 {
		if pushed == popped || r.IntN(2) == 0 {
			q.push(rawItem(pushed))
			pushed++
			continue
		}
		before := q.head
		pop()
		if q.head == 0 && before > 0 && q.len() > 0 {
			compactions++
		}
	}
	for popped < pushed {
		pop()
	}
	if compactions == 0 {
		t.Errorf("interleaved push/pop: no compaction with a backlog left, want some")
	}
	if n := q.len(); n != 0 {
		t.Errorf("len() once drained = %d, want 0", n)
	}
}
