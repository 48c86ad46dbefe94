// Package report turns Asterisk's queue_log into contact-center KPIs, so
// that the effect of deflection is measured with the PBX's own records:
// what a manager's queue reports already count, with deflections told
// apart from abandons.
//
// This file assembles calls: each queue visit of a channel, from its
// ENTERQUEUE to the event that ends it. KPIs are computed from calls.
package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deflectd/deflectd/ari/queuelog"
)

// Outcome is how a queue visit ended.
type Outcome string

// The outcomes of a queue visit.
const (
	Answered  Outcome = "answered"   // an agent took it (CONNECT)
	Abandoned Outcome = "abandoned"  // the caller hung up while waiting (ABANDON)
	Deflected Outcome = "deflected"  // left with the bridge's exit key for WhatsApp (EXITWITHKEY|D)
	ExitKey   Outcome = "exit_key"   // left with another key (EXITWITHKEY)
	Timeout   Outcome = "timeout"    // the queue's timeout (EXITWITHTIMEOUT)
	ExitEmpty Outcome = "exit_empty" // no agents left (EXITEMPTY)
	Open      Outcome = "open"       // no end in the log (still waiting, or the log was cut)
)

// Call is one visit of a channel to a queue.
type Call struct {
	ID       string // queue_log call id (deflectd's <caller>-q2)
	Queue    string
	Caller   string // caller id from ENTERQUEUE
	Entered  time.Time
	Position int // at entry
	Outcome  Outcome
	// Wait is entry to answer, or to leaving unanswered: queue_log's own
	// figure where the ending event has one, else the time between the
	// lines.
	Wait time.Duration
	// Talk is the answered call's duration (COMPLETE*, *TRANSFER).
	Talk          time.Duration
	Agent         string
	Transferred   bool
	RingNoAnswers int    // RINGNOANSWER events while waiting
	Key           string // for Deflected and ExitKey
}

// Assembler builds calls from queue_log events in file order.
type Assembler struct {
	// ExitKey is the key that marks a deflection (deflectd's
	// calls.queue_exit_key). Default "D".
	ExitKey string

	open     map[string]*Call // by call id, visits not ended yet
	done     []Call
	answered map[string]int // by call id, the index in done of its last visit when answered
	// Problems are events that fit no visit: an end without an entry (the
	// log started mid-call), a second entry while one is open, a bad data
	// column. They are counted, never fatal.
	Problems []string
}

// Add applies one event.
func (a *Assembler) Add(e queuelog.Event) {
	if a.open == nil {
		a.open, a.answered = map[string]*Call{}, map[string]int{}
	}
	if a.ExitKey == "" {
		a.ExitKey = "D"
	}
	c := a.open[e.CallID]
	switch e.Event {
	case "ENTERQUEUE":
		if c != nil {
			a.problem(e, "entered again while in queue %s; the earlier visit is closed as open", c.Queue)
			a.finish(c)
		}
		a.open[e.CallID] = &Call{ID: e.CallID, Queue: e.Queue, Caller: col(e, 1), Entered: e.Time, Position: a.num(e, 2), Outcome: Open}
		return
	case "QUEUESTART", "ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "CONFIGRELOAD", "AGENTLOGIN", "AGENTLOGOFF":
		return // queue-wide or staffing events: not a call's
	}
	if c == nil {
		switch e.Event {
		case "COMPLETECALLER", "COMPLETEAGENT", "ATTENDEDTRANSFER", "BLINDTRANSFER":
			// The end of a call already answered and closed, or one whose
			// entry is before the log: only the latter is a problem.
			if i, ok := a.answered[e.CallID]; ok {
				a.completed(e, &a.done[i])
				return
			}
		}
		if e.Event != "RINGCANCELED" && e.Event != "RINGNOANSWER" {
			a.problem(e, "%s without an ENTERQUEUE", e.Event)
		}
		return
	}
	switch e.Event {
	case "CONNECT":
		c.Outcome, c.Agent = Answered, e.Agent
		c.Wait = a.secs(e, 0, e.Time.Sub(c.Entered))
		a.finish(c) // what follows (COMPLETE*) completes the closed call
	case "ABANDON":
		c.Outcome, c.Wait = Abandoned, a.secs(e, 2, e.Time.Sub(c.Entered))
		a.finish(c)
	case "EXITWITHKEY":
		c.Key = col(e, 0)
		c.Outcome = ExitKey
		if c.Key == a.ExitKey {
			c.Outcome = Deflected
		}
		c.Wait = a.secs(e, 3, e.Time.Sub(c.Entered))
		a.finish(c)
	case "EXITWITHTIMEOUT":
		c.Outcome, c.Wait = Timeout, a.secs(e, 2, e.Time.Sub(c.Entered))
		a.finish(c)
	case "EXITEMPTY":
		c.Outcome, c.Wait = ExitEmpty, a.secs(e, 2, e.Time.Sub(c.Entered))
		a.finish(c)
	case "RINGNOANSWER":
		c.RingNoAnswers++
	}
}

// completed applies COMPLETE* or a transfer to an answered call.
func (a *Assembler) completed(e queuelog.Event, c *Call) {
	switch e.Event {
	case "COMPLETECALLER", "COMPLETEAGENT":
		c.Talk = a.secs(e, 1, 0)
	case "BLINDTRANSFER": // extension|context|holdtime|calltime|origpos
		c.Transferred, c.Talk = true, a.secs(e, 3, 0)
	case "ATTENDEDTRANSFER": // method|data|holdtime|calltime|origpos
		c.Transferred, c.Talk = true, a.secs(e, 3, 0)
	}
}

func (a *Assembler) finish(c *Call) {
	a.done = append(a.done, *c)
	delete(a.open, c.ID)
	if c.Outcome == Answered {
		a.answered[c.ID] = len(a.done) - 1 // for its COMPLETE* or transfer
	} else {
		delete(a.answered, c.ID)
	}
}

// Calls returns every visit, ended ones in the order they ended, then the
// open ones (Outcome Open) by entry.
func (a *Assembler) Calls() []Call {
	out := append([]Call(nil), a.done...)
	var open []Call
	for _, c := range a.open {
		open = append(open, *c)
	}
	sortByEntry(open)
	return append(out, open...)
}

func (a *Assembler) problem(e queuelog.Event, format string, args ...any) {
	a.Problems = append(a.Problems, fmt.Sprintf("%s %s: ", e.Time.UTC().Format(time.DateTime), e.CallID)+fmt.Sprintf(format, args...))
}

// secs reads data column i as seconds, or returns def (and notes the
// problem) when it is missing or not a number.
func (a *Assembler) secs(e queuelog.Event, i int, def time.Duration) time.Duration {
	s := col(e, i)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		a.problem(e, "%s: data column %d = %q, want seconds", e.Event, i+1, s)
		return def
	}
	return time.Duration(n) * time.Second
}

func (a *Assembler) num(e queuelog.Event, i int) int {
	n, err := strconv.Atoi(col(e, i))
	if err != nil {
		return 0
	}
	return n
}

func col(e queuelog.Event, i int) string {
	if i < len(e.Data) {
		return e.Data[i]
	}
	return ""
}

// sortByEntry orders visits by entry, then call id.
func sortByEntry(cs []Call) {
	slices.SortFunc(cs, func(a, b Call) int {
		return cmp.Or(a.Entered.Compare(b.Entered), strings.Compare(a.ID, b.ID))
	})
}
