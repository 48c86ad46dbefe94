package inbox

import (
	"errors"
	"fmt"
)

// Action is something a user does to a conversation.
type Action string

// Actions, the rows of the authorization matrix (see Can).
const (
	ActView     Action = "view"
	ActSeen     Action = "seen"
	ActClaim    Action = "claim"
	ActReply    Action = "reply"
	ActHandoff  Action = "handoff"
	ActResolve  Action = "resolve"
	ActReopen   Action = "reopen"
	ActReassign Action = "reassign"
)

// Actions returns every action.
func Actions() []Action {
	return []Action{ActView, ActSeen, ActClaim, ActReply, ActHandoff, ActResolve, ActReopen, ActReassign}
}

// ErrForbidden is wrapped by every denial; the API answers it with 403.
var ErrForbidden = errors.New("forbidden")

// Can decides whether u may do a to c. A supervisor may do anything. An
// agent sees and acts on the Unassigned of its own teams (view, mark seen,
// take, and reply, which takes the chat) and on its own chats (anything
// but reassigning, which is a supervisor's). Claiming a chat of its team
// that someone else took first is allowed here and refused as a conflict
// by the claim itself, so that the loser of a race is told who won rather
// than that it may not try.
func Can(u *User, a Action, c *Conversation) error {
	if u == nil {
		return fmt.Errorf("%w: not signed in", ErrForbidden)
	}
	if u.Supervisor() {
		return nil
	}
	mine := c.Owner == u.ID
	team := u.InTeam(c.Team)
	unassigned := c.Status == StatusOpen && c.Owner == ""
	ok := false
	switch a {
	case ActView, ActSeen, ActReply:
		ok = mine || (unassigned && team)
	case ActClaim:
		ok = team && c.Status == StatusOpen
	case ActHandoff, ActResolve, ActReopen:
		ok = mine
	case ActReassign:
		return fmt.Errorf("%w: only a supervisor reassigns chats", ErrForbidden)
	}
	if ok {
		return nil
	}
	switch {
	case !team && !mine:
		return fmt.Errorf("%w: conversation %s belongs to team %s, and %s is not in it", ErrForbidden, c.ID, c.Team, u.ID)
	case c.Owner != "" && !mine:
		return fmt.Errorf("%w: conversation %s is %s's", ErrForbidden, c.ID, c.Owner)
	default:
		return fmt.Errorf("%w: %s may not %s conversation %s (take it first)", ErrForbidden, u.ID, a, c.ID)
	}
}
