package inbox_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
)

// Rule 1, ownership: a new chat goes to its team's Unassigned, and of 50
// distinct agents taking it at once exactly one wins; the 49 others get a
// conflict (the API's 409) naming the winner.
func TestNewChatGoesToUnassignedAndOneClaimWins(t *testing.T) {
	var users strings.Builder
	for i := range 50 {
		fmt.Fprintf(&users, "  - {id: agent%02d, role: agent, teams: [billing]}\n", i)
	}
	e := newEnv(t, envOptions{users: users.String()})
	e.write("5491155550001", "Hola, tengo un problema con mi factura")
	id := inbox.ConversationID("5491155550001", "")
	d := e.conv(id)
	if d.Team != "billing" || d.Owner != "" || !d.Pending || d.Name != "María Gómez" {
		t.Fatalf("new chat = team %q owner %q pending %v name %q, want billing's Unassigned, pending", d.Team, d.Owner, d.Pending, d.Name)
	}
	page, err := e.x.List(e.ctx, e.user("ana"), inbox.Query{View: inbox.ViewUnassigned})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != id {
		t.Fatalf("ana's Unassigned = %+v, %v; want the chat", page, err)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]error, 50)
	for i := range results {
		u := e.user(fmt.Sprintf("agent%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, results[i] = e.x.Claim(e.ctx, u, id)
		}()
	}
	close(start)
	wg.Wait()
	var winners []string
	lost := 0
	for i, err := range results {
		var ie *inbox.Error
		switch {
		case err == nil:
			winners = append(winners, fmt.Sprintf("agent%02d", i))
		case errors.As(err, &ie) && errors.Is(err, inbox.ErrConflict) && ie.Code == "already_claimed":
			lost++
		default:
			t.Errorf("Claim(agent%02d) = %v, want success or an already_claimed conflict", i, err)
		}
	}
	owner := e.conv(id).Owner
	if len(winners) != 1 || lost != 49 || owner != winners[0] {
		t.Fatalf("50 claims: winners %v, %d conflicts, owner %q; want 1 winner who owns it and 49 conflicts", winners, lost, owner)
	}
	for i, err := range results {
		if err != nil && !strings.Contains(err.Error(), owner) {
			t.Errorf("agent%02d's conflict %q does not name the winner %s", i, err, owner)
			break
		}
	}
	if n := len(e.history(id, inbox.EvClaimed)); n != 1 {
		t.Errorf("claimed events = %d, want 1", n)
	}
	if won, conf := e.metric("deflectd_inbox_claims_total", "team", "billing", "result", "won"),
		e.metric("deflectd_inbox_claims_total", "team", "billing", "result", "conflict"); won != 1 || conf != 49 {
		t.Errorf("claims_total = %v won, %v conflict; want 1, 49", won, conf)
	}
	page, _ = e.x.List(e.ctx, e.user("ana"), inbox.Query{View: inbox.ViewUnassigned})
	if len(page.Items) != 0 {
		t.Errorf("Unassigned after the claim = %d items, want 0", len(page.Items))
	}
	mine, _ := e.x.List(e.ctx, e.user(owner), inbox.Query{View: inbox.ViewMine})
	if len(mine.Items) != 1 {
		t.Errorf("%s's Mine = %d items, want 1", owner, len(mine.Items))
	}
}

func TestEscalationTimelineExactlyOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.write("5491155550002", "factura duplicada")
	id := inbox.ConversationID("5491155550002", "")
	if _, err := e.x.Claim(e.ctx, e.user("ana"), id); err != nil {
		t.Fatal(err)
	}
	start := e.clock.Now()
	second := e.newInbox() // another instance on the same Redis
	step := func(at time.Duration, want inbox.Level) {
		t.Helper()
		e.clock.Set(start.Add(at))
		// Two workers race on the same due chats.
		var wg sync.WaitGroup
		for _, x := range []*inbox.Inbox{e.x, second} {
			wg.Add(1)
			go func() { defer wg.Done(); e.due(x) }()
		}
		wg.Wait()
		if got := e.conv(id).Level; got != want {
			t.Fatalf("at %v: level %v, want %v", at, got, want)
		}
	}
	step(4*time.Minute+59*time.Second, inbox.LevelNormal)
	step(5*time.Minute, inbox.LevelCritical)
	step(10*time.Minute, inbox.LevelCritical)
	step(15*time.Minute, inbox.LevelEscalated)
	// A restart: a new instance runs the timer again.
	e.x = e.newInbox()
	step(16*time.Minute, inbox.LevelEscalated)

	alerts := e.history(id, inbox.EvAlert)
	if len(alerts) != 1 || len(alerts[0].To) != 1 || alerts[0].To[0] != "ana" {
		t.Errorf("alerts = %+v, want one, to ana", alerts)
	}
	esc := e.history(id, inbox.EvEscalation)
	if len(esc) != 1 || len(esc[0].To) != 1 || esc[0].To[0] != "sue" {
		t.Errorf("escalations = %+v, want one, to the supervisor", esc)
	}
	if n := len(e.history(id, inbox.EvLevel)); n != 2 {
		t.Errorf("level events = %d, want 2 (critical, escalated)", n)
	}
}
