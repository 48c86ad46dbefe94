package rules

import (
	"fmt"
	"time"
)

// Call is what the rules see of one call: the dialplan's labels and the
// call's timestamps and counters, as the engine keeps them. It carries no
// I/O handle, so a stored call record can be evaluated as well as a live
// one.
type Call struct {
	// Queue, Option, Reason and Language come from
	// Stasis(deflect,queue=..,option=..,reason=..,lang=..); matchers test
	// them as the labels queue, option, reason and language.
	Queue, Option, Reason, Language string
	// Entered is when the call entered the queue; the wait is measured
	// from it.
	Entered time.Time
	// EWT is the current estimated wait; 0 means unknown.
	EWT time.Duration
	// Position is the 1-based position in the queue; 0 means unknown.
	Position int
	// Offers is the number of offers made so far.
	Offers int
	// LastOffer is when the last offer was made; zero if none.
	LastOffer time.Time
	// Declined says the caller declined the last offer, or let it time
	// out.
	Declined bool
	// Abandoned says the caller hung up while waiting.
	Abandoned bool
	// AbandonedAt is when the caller hung up; zero means now.
	AbandonedAt time.Time
}

// Action is what a Decision asks the engine to do.
type Action string

// The actions.
const (
	// ActionOffer plays the offer to the caller, who keeps their place
	// in the queue, and waits Decision.OfferTimeout for a key press.
	ActionOffer Action = "offer"
	// ActionPerform sends the template without asking and releases the
	// caller.
	ActionPerform Action = "perform"
	// ActionRecover sends the recovery template to a caller who hung up.
	ActionRecover Action = "recover"
	// ActionNone does nothing now; Decision.Next says when to look
	// again.
	ActionNone Action = "none"
)

// Triggers say why a decision acts now. They are metric label values.
const (
	// TriggerEntryEWT means no offer was made yet and the EWT is above
	// the route's offer_at_entry_ewt_above.
	TriggerEntryEWT = "entry_ewt"
	// TriggerSLA means no offer was made yet and the wait reached the
	// route's sla.
	TriggerSLA = "sla"
	// TriggerReoffer means the caller declined and reoffer_every has
	// passed since the last offer.
	TriggerReoffer = "reoffer"
	// TriggerPerform means a perform route matched a call not offered
	// yet.
	TriggerPerform = "perform"
	// TriggerAbandon means the call was abandoned. It is set on recover
	// decisions and on the none decisions of abandoned calls.
	TriggerAbandon = "abandon"
)

// Triggers returns every trigger, so that metrics labelled by trigger can
// be initialised up front.
func Triggers() []string {
	return []string{TriggerEntryEWT, TriggerSLA, TriggerReoffer, TriggerPerform, TriggerAbandon}
}

// Decision is the rules' answer for one call at one moment.
type Decision struct {
	// Action is what to do now.
	Action Action `json:"action"`
	// Route is the path of the route that decided, such as
	// "root/sales/billing" (an unnamed route is its index among its
	// siblings): for logs, metrics and the dry run.
	Route string `json:"route"`
	// Trigger says why now (see the Trigger constants); empty when
	// Action is none, except for abandoned calls ("abandon").
	Trigger string `json:"trigger,omitempty"`
	// Template is the WhatsApp template to send for offer (once
	// accepted), perform and recover.
	Template string `json:"template,omitempty"`
	// Next is when to evaluate the call again if nothing else happens
	// first: always after now, or zero when no rule can fire later
	// without a change to the call. It is zero when Action is not none:
	// after acting, the engine updates the call (Offers, LastOffer,
	// Declined) and evaluates again. It may come a little early (a
	// time-interval boundary that changes nothing), never late. What
	// the rules cannot foresee, a new EWT or position, calls for an
	// evaluation of its own.
	Next time.Time `json:"next,omitzero"`
	// OfferTimeout is how long to wait for the caller's key press; set
	// only when Action is offer.
	OfferTimeout time.Duration `json:"offer_timeout,omitzero"`
}

// Rules is a loaded, validated rule set. It is immutable and safe for
// concurrent use; reloading builds a new one. Build it with Load or
// LoadFile.
type Rules struct {
	root      *route
	routes    []string // paths, in tree order
	templates []string // sorted, unique
	intervals map[string]*namedInterval
}

// route is one compiled node of the tree.
type route struct {
	path     string
	matchers []*matcher
	cont     bool

	minPosition     int
	minEWT, minWait time.Duration
	active, mute    []*namedInterval

	settings
	children []*route

	// queueScope: the route speaks for whole queues (for ShortAbandon):
	// it has matchers and they all test the queue label, or it has no
	// matchers, conditions or time intervals at all.
	queueScope bool
	// problems are what the route lacks for its action (validation only).
	problems problem
}

// settings are the fields a route inherits from its parent unless it sets
// them.
type settings struct {
	action          Action
	template        string
	sla             time.Duration
	entryEWT        time.Duration
	reoffer         time.Duration
	maxOffers       int
	offerTimeout    time.Duration
	shortAbandon    time.Duration
	recover         bool
	recoverTemplate string
}

// Defaults of the root route.
const (
	// DefaultShortAbandon is the short-abandon threshold when no route
	// sets short_abandon.
	DefaultShortAbandon = 10 * time.Second
	// DefaultOfferTimeout is how long an offer waits for a key press
	// when no route sets offer_timeout.
	DefaultOfferTimeout = 8 * time.Second
	// DefaultMaxOffers is the number of offers per call when no route
	// sets max_offers.
	DefaultMaxOffers = 1
)

var defaultSettings = settings{
	action:       ActionNone,
	maxOffers:    DefaultMaxOffers,
	offerTimeout: DefaultOfferTimeout,
	shortAbandon: DefaultShortAbandon,
}

// Evaluate decides what to do with c at now. It is pure: the same call
// and time always give the same decision. docs/rules.md describes the
// semantics. A nil *Rules decides none for every call.
func (r *Rules) Evaluate(c Call, now time.Time) Decision {
	return r.evaluate(&c, now, nil)
}

// Explain is Evaluate with its reasons: the decision and every route
// tried on the way to it, for the dry-run endpoint and check-config.
func (r *Rules) Explain(c Call, now time.Time) Explanation {
	var e Explanation
	e.Decision = r.evaluate(&c, now, &e.Steps)
	return e
}

// walker walks the tree for one call.
type walker struct {
	c     *Call
	at    time.Time     // when the call is judged: now, or when it was abandoned
	now   time.Time     // for Next
	wait  time.Duration // at - Entered, at least 0
	next  time.Time     // earliest moment a route tried could change its match
	cands []*route      // the routes that decide, in order
	steps *[]Step       // nil unless explaining
	index []int         // with steps: the step of each candidate
}

func (r *Rules) evaluate(c *Call, now time.Time, steps *[]Step) Decision {
	if r == nil || r.root == nil {
		return Decision{Action: ActionNone}
	}
	w := &walker{c: c, at: now, now: now, steps: steps}
	if c.Abandoned && !c.AbandonedAt.IsZero() {
		w.at = c.AbandonedAt
	}
	w.wait = max(w.at.Sub(c.Entered), 0)
	w.step(r.root, 0, true, "")
	w.visit(r.root, 0, len(w.stepsSoFar())-1)

	var first Decision
	next := w.next
	for i, rt := range w.cands {
		d, why := rt.decide(w)
		if w.steps != nil {
			s := &(*w.steps)[w.index[i]]
			s.Decides, s.Action, s.Reason = true, d.Action, why
		}
		if i == 0 {
			first = d
		}
		if d.Action != ActionNone {
			if w.steps != nil {
				// The routes after the acting one are not
				// considered: say so rather than leave them blank.
				for _, j := range w.index[i+1:] {
					(*w.steps)[j].Reason = "not considered: an earlier route acted"
				}
			}
			return d
		}
		next = earliest(next, d.Next, now)
	}
	first.Next = time.Time{}
	if !c.Abandoned {
		first.Next = next
	}
	return first
}

func (w *walker) stepsSoFar() []Step {
	if w.steps == nil {
		return nil
	}
	return *w.steps
}

func (w *walker) step(rt *route, depth int, matched bool, why string) {
	if w.steps != nil {
		*w.steps = append(*w.steps, Step{Route: rt.path, Depth: depth, Matched: matched, Reason: why})
	}
}

// visit tries the children of a matched route: the first that matches is
// descended into, and the search goes on to its later siblings only if it
// has continue. A route with no matching child decides itself.
func (w *walker) visit(rt *route, depth, stepIndex int) {
	matched := false
	for _, ch := range rt.children {
		ok, why := ch.matches(w)
		w.step(ch, depth+1, ok, why)
		if !ok {
			continue
		}
		matched = true
		w.visit(ch, depth+1, len(w.stepsSoFar())-1)
		if !ch.cont {
			break
		}
	}
	if !matched {
		w.cands = append(w.cands, rt)
		w.index = append(w.index, stepIndex)
	}
}

// matches says whether the call matches rt (matchers, conditions, time
// intervals) and if not, why. It also records in w.next when a condition
// that depends on time could change.
func (rt *route) matches(w *walker) (bool, string) {
	for _, m := range rt.matchers {
		if v := labelValue(w.c, m.label); !m.matches(v) {
			return false, fmt.Sprintf("%s: %s is %q", m, m.label, v)
		}
	}
	// The labels never change; the rest can, with time.
	if rt.minWait > 0 && w.wait < rt.minWait {
		w.next = earliest(w.next, w.c.Entered.Add(rt.minWait), w.now)
	}
	for _, ivs := range [][]*namedInterval{rt.mute, rt.active} {
		for _, iv := range ivs {
			w.next = earliest(w.next, iv.nextChange(w.at), w.now)
		}
	}
	switch {
	case rt.minPosition > 0 && w.c.Position <= 0:
		return false, fmt.Sprintf("min_position %d: position unknown", rt.minPosition)
	case rt.minPosition > 0 && w.c.Position < rt.minPosition:
		return false, fmt.Sprintf("min_position %d: position %d", rt.minPosition, w.c.Position)
	case rt.minEWT > 0 && w.c.EWT <= 0:
		return false, fmt.Sprintf("min_ewt %s: EWT unknown", rt.minEWT)
	case rt.minEWT > 0 && w.c.EWT < rt.minEWT:
		return false, fmt.Sprintf("min_ewt %s: EWT %s", rt.minEWT, w.c.EWT)
	case rt.minWait > 0 && w.wait < rt.minWait:
		return false, fmt.Sprintf("min_wait %s: waited %s", rt.minWait, w.wait)
	}
	for _, iv := range rt.mute {
		if iv.contains(w.at) {
			return false, fmt.Sprintf("muted: inside time interval %s", iv.name)
		}
	}
	if len(rt.active) > 0 {
		for _, iv := range rt.active {
			if iv.contains(w.at) {
				return true, ""
			}
		}
		return false, "inactive: outside active_time_intervals " + intervalNames(rt.active)
	}
	return true, ""
}

func intervalNames(ivs []*namedInterval) string {
	s := ""
	for i, iv := range ivs {
		if i > 0 {
			s += ", "
		}
		s += iv.name
	}
	return "[" + s + "]"
}

// decide applies a deciding route's own rule to the call, and says why.
func (rt *route) decide(w *walker) (Decision, string) {
	c, s := w.c, &rt.settings
	d := Decision{Action: ActionNone, Route: rt.path}
	if c.Abandoned {
		d.Trigger = TriggerAbandon
		switch {
		case !s.recover:
			return d, "abandoned; recover is off"
		case w.wait < s.shortAbandon:
			return d, fmt.Sprintf("short abandon: waited %s < short_abandon %s", w.wait, s.shortAbandon)
		}
		d.Action, d.Template = ActionRecover, s.recoverTemplate
		return d, fmt.Sprintf("abandoned after %s >= short_abandon %s", w.wait, s.shortAbandon)
	}
	offers := max(c.Offers, 0)
	switch s.action {
	case ActionNone:
		return d, "action none"
	case ActionPerform:
		if offers > 0 {
			return d, fmt.Sprintf("perform: already offered (%d)", offers)
		}
		d.Action, d.Trigger, d.Template = ActionPerform, TriggerPerform, s.template
		return d, "perform: not offered yet"
	}
	fire := func(trigger string) Decision {
		d.Action, d.Trigger, d.Template, d.OfferTimeout = ActionOffer, trigger, s.template, s.offerTimeout
		return d
	}
	if offers >= s.maxOffers {
		return d, fmt.Sprintf("%d offers made, max_offers %d", offers, s.maxOffers)
	}
	if offers == 0 {
		if s.entryEWT > 0 && c.EWT > s.entryEWT {
			return fire(TriggerEntryEWT), fmt.Sprintf("EWT %s > offer_at_entry_ewt_above %s", c.EWT, s.entryEWT)
		}
		if s.sla > 0 && w.wait >= s.sla {
			return fire(TriggerSLA), fmt.Sprintf("waited %s >= sla %s", w.wait, s.sla)
		}
		why := "no offer yet"
		if s.entryEWT > 0 {
			ewt := "unknown"
			if c.EWT > 0 {
				ewt = c.EWT.String()
			}
			why += fmt.Sprintf(": EWT %s, not above %s", ewt, s.entryEWT)
		}
		if s.sla > 0 {
			d.Next = c.Entered.Add(s.sla)
			why += fmt.Sprintf(": waited %s < sla %s", w.wait, s.sla)
		}
		return d, why
	}
	if !c.Declined {
		return d, fmt.Sprintf("offer %d awaiting the caller's answer", offers)
	}
	if s.reoffer <= 0 {
		return d, fmt.Sprintf("offer %d declined; reoffer_every is 0", offers)
	}
	last := c.LastOffer
	if last.IsZero() {
		last = c.Entered
	}
	if since := w.now.Sub(last); since >= s.reoffer {
		return fire(TriggerReoffer), fmt.Sprintf("offer %d declined %s ago, reoffer_every %s", offers, since, s.reoffer)
	}
	d.Next = last.Add(s.reoffer)
	return d, fmt.Sprintf("offer %d declined %s ago < reoffer_every %s", offers, max(w.now.Sub(last), 0), s.reoffer)
}

// ShortAbandon returns the threshold below which an abandon in queue is
// short: excluded from the abandonment rate and never recovered. It is the
// short_abandon of the route reached by following, from the root, the
// first child that speaks for whole queues and matches queue: one whose
// matchers all test the queue label (its conditions and time intervals are
// ignored), or a catch-all with no matchers, conditions or time intervals.
// A route that selects calls by option, reason or language, or by
// conditions alone, is skipped with its subtree; continue is ignored.
// Evaluate applies the threshold of the route that decides the call, which
// differs only where such a route sets its own short_abandon.
func (r *Rules) ShortAbandon(queue string) time.Duration {
	if r == nil || r.root == nil {
		return DefaultShortAbandon
	}
	rt := r.root
	c := &Call{Queue: queue}
next:
	for {
		for _, ch := range rt.children {
			if !ch.queueScope {
				continue
			}
			ok := true
			for _, m := range ch.matchers {
				ok = ok && m.matches(labelValue(c, m.label))
			}
			if ok {
				rt = ch
				continue next
			}
		}
		return rt.shortAbandon
	}
}

// Templates returns every WhatsApp template the rules name (template and
// recover_template, wherever set), sorted and without repeats, so that the
// application can check them against the template catalog.
func (r *Rules) Templates() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.templates...)
}

// Routes returns the path of every route, in tree order, so that metrics
// labelled by route can be initialised up front.
func (r *Rules) Routes() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.routes...)
}
