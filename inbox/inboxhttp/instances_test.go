package inboxhttp_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
)

// Two deflectd instances on one Redis: a take race split across both has
// one winner; a change made through one shows on the other's event
// stream; and both timer workers racing on the same due chat escalate it
// once.
func TestTwoInstances(t *testing.T) {
	a := newAPI(t)
	b := a.newInstance()
	users := []string{"ana", "bob", "sue"}

	// The event stream of instance B sees what happens on A.
	onB := a.streamOn(b, "sue", "")
	if e := onB.next(t); e.typ != "hello" {
		t.Fatalf("first event on B = %+v", e)
	}
	id := a.customer("hola")
	onB.waitFor(t, func(e sse) bool { return e.typ == inbox.EvCreated && strings.Contains(e.data, id) })

	// The take race, half through each instance.
	const n = 50
	res := make([]resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := a.instance
			if i%2 == 1 {
				in = b
			}
			res[i] = a.doOn(in, users[i%3], "POST", "conversations/"+id+"/claim", "")
		}()
	}
	wg.Wait()
	winners := map[string]bool{}
	for i, r := range res {
		switch r.status {
		case http.StatusOK:
			winners[users[i%3]] = true
		case http.StatusConflict:
		default:
			t.Errorf("claim = %d %s", r.status, r.body)
		}
	}
	var d inbox.Detail
	a.doOn(b, "sue", "GET", "conversations/"+id, "").decode(t, &d)
	if len(winners) != 1 || !winners[d.Owner] {
		t.Errorf("winners %v, owner on B %q: want one winner, the owner", winners, d.Owner)
	}
	claimed := onB.waitFor(t, func(e sse) bool { return e.typ == inbox.EvClaimed && strings.Contains(e.data, id) })
	if n := countClaims(t, a, id); n != 1 {
		t.Errorf("%d claimed events in the history, want 1 (%+v)", n, claimed)
	}

	// Both workers race on the chat when it falls due: one alert at 5
	// minutes, one escalation at 15, however many times they run.
	for _, step := range []time.Duration{5 * time.Minute, 10 * time.Minute} {
		a.clock.Advance(step)
		var wg sync.WaitGroup
		for _, x := range []*inbox.Inbox{a.x, b.x, a.x, b.x} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := x.ProcessDue(a.ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	a.doOn(b, "sue", "GET", "conversations/"+id, "").decode(t, &d)
	kinds := map[string]int{}
	for _, e := range d.History {
		kinds[e.Type]++
	}
	if kinds[inbox.EvAlert] != 1 || kinds[inbox.EvEscalation] != 1 || d.Level != inbox.LevelEscalated {
		t.Errorf("level %v, %d alerts, %d escalations: want escalated, once each", d.Level, kinds[inbox.EvAlert], kinds[inbox.EvEscalation])
	}
	// And instance A's stream carries the escalation B or A made.
	onA := a.streamOn(a.instance, "sue", claimed.id)
	onA.waitFor(t, func(e sse) bool { return e.typ == inbox.EvEscalation && strings.Contains(e.data, id) })
}

func countClaims(t *testing.T, a *api, id string) int {
	var d inbox.Detail
	a.mustOK("sue", "GET", "conversations/"+id, "").decode(t, &d)
	n := 0
	for _, e := range d.History {
		if e.Type == inbox.EvClaimed {
			n++
		}
	}
	return n
}
