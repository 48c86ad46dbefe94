package inbox_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/whatsapp"
)

// viewsEnv holds 21 conversations: 12 billing, 6 support and 3 general,
// some taken by ana and bob, one resolved, one handed off with a tag and
// a high priority. Messages go in through Ingest, the webhook processor's
// subscriber, for speed; some share a timestamp so that cursors meet ties.
func viewsEnv(t *testing.T) (*env, map[string][]string) {
	cfg := baseConfig()
	cfg.Routing.Keywords = append(cfg.Routing.Keywords, inbox.KeywordRoute{Team: "support", Words: []string{"internet"}})
	e := newEnv(t, envOptions{cfg: cfg})
	byTeam := map[string][]string{}
	for i := range 21 {
		team, text := "billing", "factura"
		switch {
		case i >= 18:
			team, text = "general", "hola"
		case i >= 12:
			team, text = "support", "internet"
		}
		from := fmt.Sprintf("5491166%06d", i)
		err := e.x.Ingest(e.ctx, whatsapp.Inbound{ID: fmt.Sprintf("wamid.v%d", i), From: from, ProfileName: fmt.Sprintf("Cliente %c", 'A'+i),
			Type: "text", Text: text, Timestamp: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		byTeam[team] = append(byTeam[team], inbox.ConversationID(from, ""))
		if i%3 != 0 {
			e.clock.Advance(time.Second)
		}
	}
	b := byTeam["billing"]
	e.claim(b[0], "ana")
	e.claim(b[1], "ana")
	e.claim(b[2], "ana")
	e.claim(b[3], "bob")
	e.claim(b[4], "bob")
	if _, err := e.x.Resolve(e.ctx, e.user("ana"), b[2], inbox.ResolveRequest{Note: "ok", Kind: inbox.ClosingConfirmation}); err != nil {
		t.Fatal(err)
	}
	r := validHandoff()
	r.ToTeam, r.Tag = "billing", "price"
	if _, err := e.x.Handoff(e.ctx, e.user("bob"), b[4], r); err != nil {
		t.Fatal(err)
	}
	return e, byTeam
}

func ids(p *inbox.Page) []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.ID)
	}
	return out
}

// Views: Unassigned, Mine, Pending, Resolved and All hold what they
// should for each user, with counts that match, and an agent sees only
// its teams' Unassigned and its own chats.
func TestViewsAndCounts(t *testing.T) {
	e, byTeam := viewsEnv(t)
	b := byTeam["billing"]
	billingUnassigned := append([]string{b[4]}, b[5:]...) // b[4] was handed back to the team
	tests := []struct {
		user string
		q    inbox.Query
		want []string // in order
	}{
		{"ana", inbox.Query{View: inbox.ViewUnassigned}, billingUnassigned},
		{"carla", inbox.Query{View: inbox.ViewUnassigned}, byTeam["support"]},
		{"sue", inbox.Query{View: inbox.ViewUnassigned, Team: "general"}, byTeam["general"]},
		{"ana", inbox.Query{View: inbox.ViewMine}, b[:2]},
		{"bob", inbox.Query{View: inbox.ViewMine}, b[3:4]},
		{"sue", inbox.Query{View: inbox.ViewMine, Agent: "ana"}, b[:2]},
		{"ana", inbox.Query{View: inbox.ViewPending}, append(b[:2:2], billingUnassigned...)},
		{"ana", inbox.Query{View: inbox.ViewResolved}, b[2:3]},
		{"bob", inbox.Query{View: inbox.ViewResolved}, nil},
		{"ana", inbox.Query{View: inbox.ViewUnassigned, Tag: "price"}, b[4:5]},
		{"ana", inbox.Query{View: inbox.ViewUnassigned, Priority: inbox.PriorityHigh}, b[4:5]},
		{"sue", inbox.Query{View: inbox.ViewAll, Priority: inbox.PriorityHigh}, b[4:5]},
		// Team narrows the views whose index spans teams too.
		{"sue", inbox.Query{View: inbox.ViewAll, Team: "support"}, byTeam["support"]},
		{"ana", inbox.Query{View: inbox.ViewMine, Team: "billing"}, b[:2]},
		{"sue", inbox.Query{View: inbox.ViewMine, Agent: "ana", Team: "support"}, nil},
		{"ana", inbox.Query{View: inbox.ViewResolved, Team: "billing"}, b[2:3]},
	}
	for _, tt := range tests {
		p, err := e.x.List(e.ctx, e.user(tt.user), tt.q)
		if err != nil {
			t.Errorf("List(%s, %+v) = %v", tt.user, tt.q, err)
			continue
		}
		got := ids(p)
		sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(sortedGot, sortedWant) {
			t.Errorf("List(%s, %+v) = %v, want %v", tt.user, tt.q, got, tt.want)
		}
		if tt.q.View == inbox.ViewUnassigned && !slices.Equal(got, tt.want) {
			t.Errorf("List(%s, %+v) = %v, want oldest first %v", tt.user, tt.q, got, tt.want)
		}
		for _, it := range p.Items {
			if err := inbox.Can(e.user(tt.user), inbox.ActView, it.Conversation); err != nil {
				t.Errorf("List(%s, %+v) shows %s: %v", tt.user, tt.q, it.ID, err)
			}
		}
	}
	for _, tt := range []struct {
		user string
		q    inbox.Query
	}{
		{"ana", inbox.Query{View: inbox.ViewAll}},
		{"ana", inbox.Query{View: inbox.ViewUnassigned, Team: "support"}},
		{"ana", inbox.Query{View: inbox.ViewMine, Agent: "bob"}},
	} {
		if _, err := e.x.List(e.ctx, e.user(tt.user), tt.q); !errors.Is(err, inbox.ErrForbidden) {
			t.Errorf("List(%s, %+v) = %v, want forbidden", tt.user, tt.q, err)
		}
	}
	if _, err := e.x.List(e.ctx, e.user("sue"), inbox.Query{View: "fire"}); errCode(err) != "invalid" {
		t.Errorf("List(view fire) = %v, want invalid", err)
	}

	for _, tt := range []struct {
		user                     string
		unassigned, mine, pendng int64
	}{
		{"ana", int64(len(billingUnassigned)), 2, int64(len(billingUnassigned)) + 2},
		{"carla", 6, 0, 6},
		{"sue", 17, 0, 20},
	} {
		c, err := e.x.Counts(e.ctx, e.user(tt.user))
		if err != nil {
			t.Fatal(err)
		}
		if c.Unassigned != tt.unassigned || c.Mine != tt.mine || c.Pending != tt.pendng {
			t.Errorf("Counts(%s) = %+v, want unassigned %d mine %d pending %d", tt.user, c, tt.unassigned, tt.mine, tt.pendng)
		}
	}
	c, _ := e.x.Counts(e.ctx, e.user("sue"))
	if tc := c.ByTeam["support"]; tc.Unassigned != 6 || tc.Normal != 6 || tc.Unseen != 6 {
		t.Errorf("support's counts = %+v, want 6 unassigned, normal, unseen", tc)
	}
}

// Views: cursor paging walks a view without duplicates or gaps, ties on a
// timestamp included, and keeps the view's order.
func TestViewPaging(t *testing.T) {
	e, _ := viewsEnv(t)
	for _, tt := range []struct {
		user  string
		view  string
		limit int
		want  int
	}{
		{"sue", inbox.ViewAll, 4, 21},
		{"sue", inbox.ViewUnassigned, 3, 17},
		{"sue", inbox.ViewPending, 1, 20},
		{"ana", inbox.ViewPending, 2, 10},
	} {
		var got []string
		var last time.Time
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatalf("%s %s: paging does not end", tt.user, tt.view)
			}
			p, err := e.x.List(e.ctx, e.user(tt.user), inbox.Query{View: tt.view, Limit: tt.limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) > tt.limit || p.Total != int64(tt.want) {
				t.Fatalf("%s %s: page of %d, total %d; want at most %d, total %d", tt.user, tt.view, len(p.Items), p.Total, tt.limit, tt.want)
			}
			for _, it := range p.Items {
				if tt.view == inbox.ViewUnassigned && it.PendingSince.Before(last) {
					t.Errorf("%s: %s out of order", tt.view, it.ID)
				}
				last = it.PendingSince
			}
			got = append(got, ids(p)...)
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		uniq := slices.Compact(slices.Sorted(slices.Values(got)))
		if len(got) != tt.want || len(uniq) != tt.want {
			t.Errorf("%s %s paged by %d: %d items, %d distinct; want %d", tt.user, tt.view, tt.limit, len(got), len(uniq), tt.want)
		}
	}
	if _, err := e.x.List(e.ctx, e.user("sue"), inbox.Query{View: inbox.ViewAll, Cursor: "garbage"}); errCode(err) != "invalid" {
		t.Errorf("List(bad cursor) = %v, want invalid", err)
	}
}

// Views: search finds by the customer's number (as typed, with + and
// spaces) and name (any case and accents), only among what the user may
// see.
func TestViewSearch(t *testing.T) {
	e, byTeam := viewsEnv(t)
	for _, tt := range []struct {
		user, q string
		view    string
		want    []string
	}{
		{"sue", "5491166000013", inbox.ViewAll, byTeam["support"][1:2]},
		{"sue", "+54 9 11 66 00-0013", inbox.ViewAll, byTeam["support"][1:2]},
		{"sue", "cliente n", inbox.ViewAll, byTeam["support"][1:2]},
		{"sue", "CLÍENTE N", inbox.ViewAll, byTeam["support"][1:2]},
		{"ana", "cliente n", inbox.ViewUnassigned, nil},
		{"carla", "cliente n", inbox.ViewUnassigned, byTeam["support"][1:2]},
		{"ana", "5491166", inbox.ViewMine, byTeam["billing"][:2]},
	} {
		p, err := e.x.List(e.ctx, e.user(tt.user), inbox.Query{View: tt.view, Search: tt.q})
		if err != nil {
			t.Errorf("search %q = %v", tt.q, err)
			continue
		}
		if got := slices.Sorted(slices.Values(ids(p))); !slices.Equal(got, slices.Sorted(slices.Values(tt.want))) {
			t.Errorf("%s's search %q in %s = %v, want %v", tt.user, tt.q, tt.view, got, tt.want)
		}
	}
}

// Visible: an agent's live stream carries the events of its teams'
// Unassigned, of its own chats, of chats that just left either, and alerts
// addressed to it; nothing else.
func TestVisibleEvents(t *testing.T) {
	e, byTeam := viewsEnv(t)
	b := byTeam["billing"]
	ana, carla := e.user("ana"), e.user("carla")
	tests := []struct {
		name  string
		ev    inbox.Event
		ana   bool
		carla bool
	}{
		{"billing Unassigned", e.history(b[6], inbox.EvMessageIn)[0], true, false},
		{"support Unassigned", e.history(byTeam["support"][0], inbox.EvMessageIn)[0], false, true},
		{"ana's claim", e.history(b[0], inbox.EvClaimed)[0], true, false},
		{"bob's claim: it left ana's Unassigned", e.history(b[3], inbox.EvClaimed)[0], true, false},
		{"a message on bob's chat", inbox.Event{Type: inbox.EvMessageIn, Team: "billing", Owner: "bob"}, false, false},
		{"bob's handoff to the team", e.history(b[4], inbox.EvHandoff)[0], true, false},
		{"an alert to carla", inbox.Event{Type: inbox.EvAlert, Team: "billing", Owner: "bob", To: []string{"carla"}}, false, true},
		{"availability", inbox.Event{Type: inbox.EvAvailability}, true, true},
	}
	for _, tt := range tests {
		if got := inbox.Visible(ana, tt.ev); got != tt.ana {
			t.Errorf("%s: Visible(ana) = %v, want %v", tt.name, got, tt.ana)
		}
		if got := inbox.Visible(carla, tt.ev); got != tt.carla {
			t.Errorf("%s: Visible(carla) = %v, want %v", tt.name, got, tt.carla)
		}
		if !inbox.Visible(e.user("sue"), tt.ev) {
			t.Errorf("%s: Visible(sue) = false", tt.name)
		}
	}
}

// The live stream: a client that loaded everything while the stream was
// empty (LastEventID "0-0") and then reads on misses nothing and is not
// told to reload.
func TestEventsAfterEmptyStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	first, err := e.x.LastEventID(e.ctx)
	if err != nil || first != "0-0" {
		t.Fatalf("LastEventID on an empty stream = %q, %v; want 0-0", first, err)
	}
	if err := e.x.Ingest(e.ctx, whatsapp.Inbound{ID: "wamid.e1", From: "5491155551501", Type: "text", Text: "hola", Timestamp: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.x.Events(e.ctx, first, 0)
	if err != nil || len(evs) == 0 || evs[0].Type != inbox.EvCreated {
		t.Fatalf("Events(0-0) = %d events, %v; want them from the first, conversation.created", len(evs), err)
	}
}
