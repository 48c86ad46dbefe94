package inbox_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
)

// Rule 1, ownership of a returning customer: a chat that comes back after
// it was resolved goes to Unassigned; with sticky_owner it goes back to its
// last owner, but only when that owner is online.
func TestReturningCustomerAfterResolve(t *testing.T) {
	tests := []struct {
		name      string
		sticky    bool
		presence  inbox.Availability
		wantOwner string
	}{
		{"unassigned by default", false, inbox.Online, ""},
		{"sticky, owner online", true, inbox.Online, "ana"},
		{"sticky, owner away", true, inbox.Away, ""},
		{"sticky, owner offline", true, inbox.Offline, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.StickyOwner = tt.sticky
			e := newEnv(t, envOptions{cfg: cfg})
			const from = "5491155550101"
			id := inbox.ConversationID(from, "")
			e.write(from, "Hola, mi factura vino mal")
			e.claim(id, "ana")
			e.reply(id, "ana", "Ya la corrijo")
			if _, err := e.x.Resolve(e.ctx, e.user("ana"), id, inbox.ResolveRequest{Note: "Factura corregida", Kind: inbox.ClosingConfirmation}); err != nil {
				t.Fatal(err)
			}
			e.setPresence(tt.presence, "ana")
			e.clock.Advance(time.Hour)
			e.write(from, "Hola de nuevo, otra consulta")

			d := e.conv(id)
			if d.Status != inbox.StatusOpen || d.Owner != tt.wantOwner || d.LastOwner != "ana" || d.Cycle != 2 || !d.Pending {
				t.Fatalf("returning customer: status %s owner %q last owner %q cycle %d pending %v; want open, owner %q, last owner ana, cycle 2, pending",
					d.Status, d.Owner, d.LastOwner, d.Cycle, d.Pending, tt.wantOwner)
			}
			un, err := e.x.List(e.ctx, e.user("bob"), inbox.Query{View: inbox.ViewUnassigned})
			if err != nil {
				t.Fatal(err)
			}
			inUnassigned := len(un.Items) == 1 && un.Items[0].ID == id
			if inUnassigned != (tt.wantOwner == "") {
				t.Errorf("in billing's Unassigned = %v, want %v", inUnassigned, tt.wantOwner == "")
			}
			if n := len(e.history(id, inbox.EvReopened)); n != 1 {
				t.Errorf("reopened events = %d, want 1", n)
			}
			if got := e.metric("deflectd_inbox_reopens_total", "team", "billing", "by", "customer"); got != 1 {
				t.Errorf("reopens_total{by=customer} = %v, want 1", got)
			}
		})
	}
}

func validHandoff() inbox.HandoffRequest {
	return inbox.HandoffRequest{ToTeam: "support", Reason: "The customer's modem does not sync.", Priority: inbox.PriorityHigh,
		NextStep: "Book the installation visit", Tag: "appointment"}
}

// Rule 2, handoff: reason, priority, next step and tag are all required;
// each missing one, or a bad priority or destination, is refused as
// invalid, naming the field (the API's 400).
func TestHandoffRequiresItsFields(t *testing.T) {
	e := newEnv(t, envOptions{})
	const from = "5491155550102"
	id := inbox.ConversationID(from, "")
	e.write(from, "factura")
	e.claim(id, "ana")
	tests := []struct {
		name      string
		edit      func(r *inbox.HandoffRequest)
		wantField string
	}{
		{"no reason", func(r *inbox.HandoffRequest) { r.Reason = "" }, "reason"},
		{"blank reason", func(r *inbox.HandoffRequest) { r.Reason = "   " }, "reason"},
		{"no priority", func(r *inbox.HandoffRequest) { r.Priority = "" }, "priority"},
		{"bad priority", func(r *inbox.HandoffRequest) { r.Priority = "urgent" }, "priority"},
		{"no next step", func(r *inbox.HandoffRequest) { r.NextStep = "" }, "next_step"},
		{"no tag", func(r *inbox.HandoffRequest) { r.Tag = "" }, "tag"},
		{"no destination", func(r *inbox.HandoffRequest) { r.ToTeam = "" }, "to_team"},
		{"unknown team", func(r *inbox.HandoffRequest) { r.ToTeam = "nope" }, "to_team"},
		{"unknown agent", func(r *inbox.HandoffRequest) { r.ToTeam, r.ToAgent = "", "zed" }, "to_agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validHandoff()
			tt.edit(&r)
			_, err := e.x.Handoff(e.ctx, e.user("ana"), id, r)
			ie := inboxErr(t, err)
			if !errors.Is(err, inbox.ErrInvalid) || ie.Field != tt.wantField {
				t.Errorf("Handoff(%+v) = %v (field %q), want invalid naming %q", r, err, ie.Field, tt.wantField)
			}
		})
	}
	if d := e.conv(id); d.Owner != "ana" || d.Handoffs != 0 || len(e.history(id, inbox.EvHandoff)) != 0 {
		t.Errorf("after refused handoffs: owner %q, %d handoffs; want ana's, none", d.Owner, d.Handoffs)
	}
}

// Rule 2, handoff: to a team it lands in the team's Unassigned, to an
// agent it needs that agent online and makes them the owner; each is in
// the history with who and when, the receiver reads the handoff card, and
// handoffs are counted on the conversation and in metrics.
func TestHandoffToTeamAndToAgent(t *testing.T) {
	e := newEnv(t, envOptions{})
	const from = "5491155550103"
	id := inbox.ConversationID(from, "")
	e.write(from, "Tengo un problema con la factura y con internet")
	e.claim(id, "ana")

	at := e.clock.Advance(time.Minute)
	c, err := e.x.Handoff(e.ctx, e.user("ana"), id, validHandoff())
	if err != nil {
		t.Fatal(err)
	}
	if c.Team != "support" || c.Owner != "" || c.Priority != inbox.PriorityHigh || !slices.Contains(c.Tags, "appointment") || c.Handoffs != 1 {
		t.Fatalf("after handoff to support: team %q owner %q priority %q tags %v handoffs %d", c.Team, c.Owner, c.Priority, c.Tags, c.Handoffs)
	}
	page, err := e.x.List(e.ctx, e.user("carla"), inbox.Query{View: inbox.ViewUnassigned})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != id {
		t.Fatalf("carla's Unassigned = %+v, %v; want the handed-off chat", page, err)
	}
	if _, err := e.x.Get(e.ctx, e.user("ana"), id); !errors.Is(err, inbox.ErrForbidden) {
		t.Errorf("ana's Get after handing off to support = %v, want forbidden", err)
	}
	d, err := e.x.Get(e.ctx, e.user("carla"), id)
	if err != nil {
		t.Fatal(err)
	}
	want := inbox.Handoff{FromTeam: "billing", FromAgent: "ana", ToTeam: "support", Reason: "The customer's modem does not sync.",
		Priority: inbox.PriorityHigh, NextStep: "Book the installation visit", Tag: "appointment", By: "ana", At: at}
	if d.Handoff == nil || *d.Handoff != want {
		t.Errorf("handoff card = %+v, want %+v", d.Handoff, want)
	}
	hs := e.history(id, inbox.EvHandoff)
	if len(hs) != 1 || hs[0].By != "ana" || !hs[0].At.Equal(at) {
		t.Errorf("handoff history = %+v, want one by ana at %v", hs, at)
	}

	// To an agent: refused while they are offline, then accepted.
	e.claim(id, "carla")
	r := validHandoff()
	r.ToTeam, r.ToAgent, r.Tag = "", "ana", "price"
	if _, err := e.x.Handoff(e.ctx, e.user("carla"), id, r); errCode(err) != "agent_unavailable" {
		t.Errorf("Handoff to offline ana = %v, want agent_unavailable", err)
	}
	e.setPresence(inbox.Online, "ana")
	c, err = e.x.Handoff(e.ctx, e.user("carla"), id, r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Owner != "ana" || c.Team != "billing" || c.Handoffs != 2 || c.LastHandoff.By != "carla" {
		t.Errorf("after handoff to ana: owner %q team %q handoffs %d", c.Owner, c.Team, c.Handoffs)
	}
	if got := e.metric("deflectd_inbox_handoffs_total", "team", "support"); got != 1 {
		t.Errorf("handoffs_total{support} = %v, want 1", got)
	}
	if got := e.metric("deflectd_inbox_handoffs_total", "team", "billing"); got != 1 {
		t.Errorf("handoffs_total{billing} = %v, want 1", got)
	}
}

// Rule 2, ping-pong between teams: billing hands a chat to support,
// support's agent takes it and hands it back to billing's Unassigned. That
// is A→B→A whoever held the chat in each team; passing it on to a third
// team is not.
func TestHandoffPingPongBetweenTeams(t *testing.T) {
	for _, tt := range []struct {
		back string
		want bool
	}{{"billing", true}, {"support", false}} {
		t.Run("back to "+tt.back, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			const from = "5491155550105"
			id := inbox.ConversationID(from, "")
			e.write(from, "factura")
			e.claim(id, "ana")
			r := validHandoff()
			r.ToTeam, r.ToAgent = "support", ""
			if _, err := e.x.Handoff(e.ctx, e.user("ana"), id, r); err != nil {
				t.Fatal(err)
			}
			e.claim(id, "carla")
			r.ToTeam = tt.back
			// Back to support's own Unassigned is no ping-pong with
			// billing: the chat stays where billing sent it.
			c, err := e.x.Handoff(e.ctx, e.user("carla"), id, r)
			if err != nil {
				t.Fatal(err)
			}
			if c.PingPong != tt.want || c.LastHandoff.PingPong != tt.want {
				t.Errorf("billing→support→%s: ping-pong %v (handoff %v), want %v", tt.back, c.PingPong, c.LastHandoff.PingPong, tt.want)
			}
		})
	}
}

// Rule 2, ping-pong: a handoff back to where the chat came from (A→B→A)
// within ping_pong_window is flagged and counted; outside it, it is not.
func TestHandoffPingPong(t *testing.T) {
	tests := []struct {
		name string
		gap  time.Duration
		want bool
	}{
		{"within the window", 30 * time.Minute, true},
		{"at the window's end", time.Hour, true},
		{"outside the window", time.Hour + time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			const from = "5491155550104"
			id := inbox.ConversationID(from, "")
			e.write(from, "factura")
			e.setPresence(inbox.Online, "ana", "bob")
			e.claim(id, "ana")
			r := validHandoff()
			r.ToTeam, r.ToAgent = "", "bob"
			if _, err := e.x.Handoff(e.ctx, e.user("ana"), id, r); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tt.gap)
			r.ToAgent = "ana"
			c, err := e.x.Handoff(e.ctx, e.user("bob"), id, r)
			if err != nil {
				t.Fatal(err)
			}
			if c.PingPong != tt.want || c.LastHandoff.PingPong != tt.want || c.Handoffs != 2 {
				t.Errorf("A→B→A after %v: ping-pong %v (handoff %v), handoffs %d; want %v, 2", tt.gap, c.PingPong, c.LastHandoff.PingPong, c.Handoffs, tt.want)
			}
			want := 0.0
			if tt.want {
				want = 1
			}
			if got := e.metric("deflectd_inbox_pingpongs_total", "team", "billing"); got != want {
				t.Errorf("pingpongs_total = %v, want %v", got, want)
			}
		})
	}
}
