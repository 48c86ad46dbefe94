package rules

import (
	"fmt"
	"strings"
	"time"
)

// Explanation is a decision with the walk that led to it: what the dry-run
// endpoint answers to "what would happen to this call".
type Explanation struct {
	// Decision is what Evaluate returns for the same call and time.
	Decision Decision `json:"decision"`
	// Steps are the routes tried, in the order they were tried (the
	// root first, each route before its children).
	Steps []Step `json:"steps"`
}

// Step is one route tried during an evaluation.
type Step struct {
	// Route is the route's path, as in Decision.Route.
	Route string `json:"route"`
	// Depth is the route's depth in the tree: 0 for the root.
	Depth int `json:"depth"`
	// Matched says the call matched the route's matchers, conditions
	// and time intervals (the root always matches).
	Matched bool `json:"matched"`
	// Decides says the route matched and none of its children did, so
	// its own rule was applied.
	Decides bool `json:"decides,omitempty"`
	// Action is what a deciding route's rule gave; empty for the others.
	Action Action `json:"action,omitempty"`
	// Reason says why a route did not match, or what a deciding route's
	// rule made of the call.
	Reason string `json:"reason,omitempty"`
}

// String renders the explanation as indented text, one route a line and
// the decision last, for logs and the command line.
func (e Explanation) String() string {
	var b strings.Builder
	for _, s := range e.Steps {
		b.WriteString(strings.Repeat("  ", s.Depth))
		b.WriteString(s.Route)
		switch {
		case !s.Matched:
			b.WriteString(": no match")
		case s.Decides:
			fmt.Fprintf(&b, ": decides %s", s.Action)
		default:
			b.WriteString(": match")
		}
		if s.Reason != "" {
			b.WriteString(" (" + s.Reason + ")")
		}
		b.WriteByte('\n')
	}
	b.WriteString("=> " + e.Decision.String())
	return b.String()
}

// String renders the decision on one line, such as
// "offer by root/sales (sla) template queue_deflect_v1 offer_timeout 8s".
func (d Decision) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s by %s", d.Action, d.Route)
	if d.Trigger != "" {
		fmt.Fprintf(&b, " (%s)", d.Trigger)
	}
	if d.Template != "" {
		b.WriteString(" template " + d.Template)
	}
	if d.OfferTimeout != 0 {
		fmt.Fprintf(&b, " offer_timeout %s", d.OfferTimeout)
	}
	if !d.Next.IsZero() {
		b.WriteString(" next " + d.Next.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}
