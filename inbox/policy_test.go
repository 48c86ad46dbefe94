package inbox_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/deflect/rules"
	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

func dur(d time.Duration) *time.Duration { return &d }

// Rule 3, "seen and unanswered": with the default policy a pending chat is
// normal for 0–5 min, critical for 5–15 min and escalated from 15 min
// (Assess is the pure decision the timer carries out).
func TestAssessDefaultThresholds(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	p := inbox.Policy{CriticalAfter: inbox.DefaultCriticalAfter, EscalateAfter: inbox.DefaultEscalateAfter, OnEscalate: inbox.EscalateNotify}
	tests := []struct {
		waited time.Duration
		want   inbox.Level
	}{
		{0, inbox.LevelNormal},
		{4*time.Minute + 59*time.Second, inbox.LevelNormal},
		{5 * time.Minute, inbox.LevelCritical},
		{14*time.Minute + 59*time.Second, inbox.LevelCritical},
		{15 * time.Minute, inbox.LevelEscalated},
		{3 * time.Hour, inbox.LevelEscalated},
	}
	for _, tt := range tests {
		c := &inbox.Conversation{Status: inbox.StatusOpen, PendingSince: start, LastInbound: start}
		a := inbox.Assess(c, p, inbox.Presence{}, start.Add(tt.waited))
		if a.Level != tt.want || a.Waited != tt.waited {
			t.Errorf("Assess(pending %v) = level %v waited %v, want %v", tt.waited, a.Level, a.Waited, tt.want)
		}
	}
	answered := &inbox.Conversation{Status: inbox.StatusOpen, LastInbound: start}
	if a := inbox.Assess(answered, p, inbox.Presence{}, start.Add(time.Hour)); a.Level != inbox.LevelNone {
		t.Errorf("Assess(answered) = %v, want none", a.Level)
	}
}

// Rule 3: at critical the owner is alerted, at escalation the supervisors
// are notified; with on_escalate: unassign the chat also goes back to
// Unassigned, with notify it stays with its owner.
func TestEscalationNotifiesAndUnassigns(t *testing.T) {
	for _, onEscalate := range []string{inbox.EscalateNotify, inbox.EscalateUnassign} {
		t.Run(onEscalate, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Policy.OnEscalate = onEscalate
			cfg.Policy.ClaimTimeout = dur(0) // only the escalation moves the chat
			e := newEnv(t, envOptions{cfg: cfg})
			const from = "5491155550201"
			id := inbox.ConversationID(from, "")
			e.write(from, "factura")
			e.claim(id, "ana")
			start := e.clock.Now()

			e.at(start, 5*time.Minute)
			alerts := e.history(id, inbox.EvAlert)
			if len(alerts) != 1 || strings.Join(alerts[0].To, ",") != "ana" {
				t.Errorf("alerts at 5 min = %+v, want one to the owner", alerts)
			}
			e.at(start, 15*time.Minute)
			d := e.conv(id)
			esc := e.history(id, inbox.EvEscalation)
			if d.Level != inbox.LevelEscalated || len(esc) != 1 || strings.Join(esc[0].To, ",") != "sue" {
				t.Fatalf("at 15 min: level %v, escalations %+v; want escalated, one to sue", d.Level, esc)
			}
			wantOwner, wantUnassigned := "ana", 0.0
			if onEscalate == inbox.EscalateUnassign {
				wantOwner, wantUnassigned = "", 1
			}
			if d.Owner != wantOwner {
				t.Errorf("owner after escalation = %q, want %q", d.Owner, wantOwner)
			}
			if got := e.metric("deflectd_inbox_unassigned_total", "team", "billing", "reason", inbox.ReasonEscalated); got != wantUnassigned {
				t.Errorf("unassigned_total{escalated} = %v, want %v", got, wantUnassigned)
			}
			if wantOwner == "" {
				un := e.history(id, inbox.EvUnassigned)
				if len(un) != 1 || un[0].Data["reason"] != inbox.ReasonEscalated || un[0].Data["from"] != "ana" {
					t.Errorf("unassigned events = %+v, want one, reason escalated, from ana", un)
				}
			}
			for _, lvl := range []string{"critical", "escalated"} {
				if got := e.metric("deflectd_inbox_escalations_total", "team", "billing", "level", lvl, "reason", inbox.ReasonThreshold); got != 1 {
					t.Errorf("escalations_total{%s} = %v, want 1", lvl, got)
				}
			}
		})
	}
}

// Rule 3: the thresholds are set per team and per priority; a team's key
// overrides the global one, a priority's the team's.
func TestThresholdsPerTeamAndPriority(t *testing.T) {
	cfg := baseConfig()
	cfg.Routing.Keywords = append(cfg.Routing.Keywords, inbox.KeywordRoute{Team: "support", Words: []string{"internet"}})
	cfg.Teams[2].Policy = inbox.PolicyConfig{CriticalAfter: dur(2 * time.Minute), EscalateAfter: dur(4 * time.Minute)} // support
	cfg.Teams[1].Policy = inbox.PolicyConfig{Priorities: map[inbox.Priority]*inbox.PolicyConfig{                       // billing
		inbox.PriorityHigh: {CriticalAfter: dur(time.Minute), EscalateAfter: dur(3 * time.Minute)}}}
	tests := []struct {
		name     string
		text     string
		high     bool
		critical time.Duration
		escalate time.Duration
	}{
		{"default policy", "hola", false, 5 * time.Minute, 15 * time.Minute},
		{"team policy", "sin internet", false, 2 * time.Minute, 4 * time.Minute},
		{"team, medium priority", "factura", false, 5 * time.Minute, 15 * time.Minute},
		{"team, high priority", "factura", true, time.Minute, 3 * time.Minute},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{cfg: cfg})
			from := fmt.Sprintf("54911555502%02d", i)
			id := inbox.ConversationID(from, "")
			e.write(from, tt.text)
			start := e.clock.Now()
			if tt.high {
				// A handoff back to the team's Unassigned sets the priority.
				e.claim(id, "ana")
				r := validHandoff()
				r.ToTeam = "billing"
				if _, err := e.x.Handoff(e.ctx, e.user("ana"), id, r); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []struct {
				at   time.Duration
				want inbox.Level
			}{
				{tt.critical - time.Second, inbox.LevelNormal},
				{tt.critical, inbox.LevelCritical},
				{tt.escalate - time.Second, inbox.LevelCritical},
				{tt.escalate, inbox.LevelEscalated},
			} {
				e.at(start, s.at)
				if got := e.conv(id).Level; got != s.want {
					t.Fatalf("%s at %v: level %v, want %v", e.conv(id).Team, s.at, got, s.want)
				}
			}
		})
	}
}

// Rule 3, seen vs unseen: a pending chat is "seen and unanswered" once an
// agent opened it after the customer's last message, "unseen" before and
// again when the customer writes more; both are counted per team.
func TestSeenAndUnseenUnanswered(t *testing.T) {
	e := newEnv(t, envOptions{})
	const from = "5491155550301"
	id := inbox.ConversationID(from, "")
	check := func(step string, wantPending, wantSeen bool) {
		t.Helper()
		d := e.conv(id)
		counts, err := e.x.Counts(e.ctx, e.user("sue"))
		if err != nil {
			t.Fatal(err)
		}
		var seen, unseen int64
		switch {
		case wantPending && wantSeen:
			seen = 1
		case wantPending:
			unseen = 1
		}
		tc := counts.ByTeam["billing"]
		if d.Pending != wantPending || d.Seen != wantSeen || tc.Seen != seen || tc.Unseen != unseen {
			t.Errorf("%s: pending %v seen %v, counts seen %d unseen %d; want pending %v seen %v", step, d.Pending, d.Seen, tc.Seen, tc.Unseen, wantPending, wantSeen)
		}
		e.x.RefreshGauges(e.ctx)
		if got := e.metric("deflectd_inbox_pending_seen", "team", "billing", "seen", "true"); got != float64(seen) {
			t.Errorf("%s: pending_seen{seen=true} = %v, want %d", step, got, seen)
		}
		if got := e.metric("deflectd_inbox_pending_seen", "team", "billing", "seen", "false"); got != float64(unseen) {
			t.Errorf("%s: pending_seen{seen=false} = %v, want %d", step, got, unseen)
		}
	}
	e.write(from, "factura")
	check("new message", true, false)
	e.clock.Advance(time.Minute)
	if _, err := e.x.Seen(e.ctx, e.user("ana"), id); err != nil {
		t.Fatal(err)
	}
	check("opened by ana", true, true)
	today, _ := e.x.Today(e.ctx, e.user("sue"))
	if today.SeenUnanswered != 1 || today.SeenPercent != 100 {
		t.Errorf("Today = %d seen and unanswered, %v%%; want 1, 100%%", today.SeenUnanswered, today.SeenPercent)
	}
	e.clock.Advance(time.Minute)
	e.write(from, "¿hola?")
	check("customer wrote again", true, false)
	e.clock.Advance(time.Minute)
	e.x.Seen(e.ctx, e.user("ana"), id)
	check("opened again", true, true)
	e.reply(id, "ana", "Hola, ya lo miro")
	check("answered", false, false)
}

// Rule 3, business hours: a team with business_hours (a time interval of
// deflect/rules) counts only office time. A message on Friday at 17:57
// with 09:00–18:00 on weekdays has waited 3 min at closing and turns
// critical on Monday at 09:02, escalating at 09:12; the customer writing
// over the weekend keeps the 24 h window open.
func TestBusinessHoursCountOnlyOfficeTime(t *testing.T) {
	rs, err := rules.Load(strings.NewReader(`
time_intervals:
  - name: office
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '18:00'}]
        location: UTC
route:
  action: none
`))
	if err != nil {
		t.Fatal(err)
	}
	office, ok := rs.Interval("office")
	if !ok {
		t.Fatal("no interval office")
	}
	cfg := baseConfig()
	cfg.Teams[1].BusinessHours = "office" // billing
	e := newEnv(t, envOptions{cfg: cfg, hours: map[string]inbox.Hours{"office": office}})
	const from = "5491155550401"
	id := inbox.ConversationID(from, "")
	fri := time.Date(2026, 3, 6, 17, 57, 0, 0, time.UTC)
	e.clock.Set(fri)
	e.write(from, "factura")
	d := e.conv(id)
	if want := time.Date(2026, 3, 9, 9, 2, 0, 0, time.UTC); !d.CriticalAt.Equal(want) {
		t.Errorf("critical at %v, want Monday 09:02 %v", d.CriticalAt, want)
	}
	steps := []struct {
		at    time.Time
		write string
		want  inbox.Level
	}{
		{fri.Add(2 * time.Minute), "", inbox.LevelNormal},
		{time.Date(2026, 3, 6, 23, 0, 0, 0, time.UTC), "", inbox.LevelNormal},
		{time.Date(2026, 3, 7, 15, 0, 0, 0, time.UTC), "¿siguen ahí?", inbox.LevelNormal},
		{time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), "hola??", inbox.LevelNormal},
		{time.Date(2026, 3, 9, 9, 1, 59, 0, time.UTC), "", inbox.LevelNormal},
		{time.Date(2026, 3, 9, 9, 2, 0, 0, time.UTC), "", inbox.LevelCritical},
		{time.Date(2026, 3, 9, 9, 11, 59, 0, time.UTC), "", inbox.LevelCritical},
		{time.Date(2026, 3, 9, 9, 12, 0, 0, time.UTC), "", inbox.LevelEscalated},
	}
	for _, s := range steps {
		e.clock.Set(s.at)
		if s.write != "" {
			e.write(from, s.write)
		}
		e.due(e.x)
		d := e.conv(id)
		if d.Level != s.want {
			t.Fatalf("at %v: level %v (%s), want %v", s.at.Format("Mon 15:04:05"), d.Level, d.LevelReason, s.want)
		}
	}
	d = e.conv(id)
	if d.LevelReason != inbox.ReasonThreshold || d.Waited != (15*time.Minute).Seconds() {
		t.Errorf("escalated by %q after %vs of office time, want threshold after 900s", d.LevelReason, d.Waited)
	}
}

// Rule 3, the 24 h window: a pending chat whose window closes within
// window_margin (default 2 h) escalates at once; a window that closes
// unanswered is a lost chat; after it free text is refused with a clear
// error and only a template reaches the customer.
func TestServiceWindowDeadline(t *testing.T) {
	cfg := baseConfig()
	// Only the window acts: no thresholds, no escalated-and-lost.
	cfg.Policy.CriticalAfter, cfg.Policy.EscalateAfter, cfg.Policy.LostAfter = dur(0), dur(0), dur(0)
	e := newEnv(t, envOptions{cfg: cfg, templates: extraTemplates})
	const from = "5491155550501"
	id := inbox.ConversationID(from, "")
	e.write(from, "factura")
	start := e.clock.Now()

	e.at(start, 22*time.Hour-time.Second)
	if d := e.conv(id); d.Level != inbox.LevelNormal {
		t.Fatalf("2 h and 1 s before the window closes: level %v, want normal", d.Level)
	}
	e.at(start, 22*time.Hour)
	d := e.conv(id)
	if d.Level != inbox.LevelEscalated || d.LevelReason != inbox.ReasonWindow || len(e.history(id, inbox.EvEscalation)) != 1 {
		t.Fatalf("2 h before the window closes: level %v (%s), want escalated by the window", d.Level, d.LevelReason)
	}
	if got := e.metric("deflectd_inbox_escalations_total", "team", "billing", "level", "escalated", "reason", inbox.ReasonWindow); got != 1 {
		t.Errorf("escalations_total{escalated, window} = %v, want 1", got)
	}
	if d.Lost || d.WindowExpired {
		t.Errorf("before the window closed: lost %v expired %v", d.Lost, d.WindowExpired)
	}

	e.at(start, 24*time.Hour)
	d = e.conv(id)
	lost := e.history(id, inbox.EvLost)
	if !d.WindowExpired || !d.Lost || d.WindowOpen || d.WindowLeft != 0 || len(e.history(id, inbox.EvWindowExpired)) != 1 || len(lost) != 1 {
		t.Fatalf("at the window's close: expired %v lost %v open %v; want expired, lost, closed", d.WindowExpired, d.Lost, d.WindowOpen)
	}
	if lost[0].Data["reason"] != inbox.ReasonWindow || strings.Join(lost[0].To, ",") != "sue" {
		t.Errorf("lost event = %+v, want reason window, to sue", lost[0])
	}
	if got := e.metric("deflectd_inbox_window_expired_total", "team", "billing"); got != 1 {
		t.Errorf("window_expired_total = %v, want 1", got)
	}
	if got := e.metric("deflectd_inbox_lost_total", "team", "billing", "reason", inbox.ReasonWindow); got != 1 {
		t.Errorf("lost_total{window} = %v, want 1", got)
	}
	e.at(start, 25*time.Hour) // once
	if n := len(e.history(id, inbox.EvLost)); n != 1 {
		t.Errorf("lost events after another run = %d, want 1", n)
	}

	_, err := e.x.Reply(e.ctx, e.user("ana"), id, inbox.ReplyRequest{Text: "Perdón la demora"})
	if errCode(err) != "window_closed" || !strings.Contains(err.Error(), "template") {
		t.Fatalf("Reply after the window = %v, want window_closed saying only a template reaches the customer", err)
	}
	m, err := e.x.SendTemplate(e.ctx, e.user("ana"), id, inbox.TemplateRequest{Name: "followup_v1", Language: "es_AR"})
	if err != nil {
		t.Fatalf("SendTemplate after the window = %v", err)
	}
	m = e.waitSettled(id, m.ID)
	if m.State != inbox.StateSent {
		t.Fatalf("template after the window: state %s (%+v), want sent", m.State, m.Error)
	}
	if d := e.conv(id); d.Pending || d.Owner != "ana" {
		t.Errorf("after the template: pending %v owner %q; want answered, ana's", d.Pending, d.Owner)
	}
	var got []string
	for _, wm := range e.wa.Messages() {
		if wm.Body.Template != nil {
			got = append(got, wm.Body.Template.Name)
		}
	}
	if strings.Join(got, ",") != "followup_v1" {
		t.Errorf("templates at the fake = %v, want followup_v1", got)
	}
}

// extraTemplates adds, to the catalog, a template for an agent's
// follow-up outside the window (the shipped catalog has the CSAT survey,
// csat_v1).
const extraTemplates = `
  - name: followup_v1
    language: es_AR
    category: UTILITY
    body:
      - {name: wait, value: "{{.WaitText}}"}
`

// Rule 3: an agent reply WhatsApp reports failed (asynchronously, as
// 131047 outside the window or 131026 undeliverable, or in the answer)
// does not answer: the chat stays pending, its clock keeps running, and
// the failure shows on the message and the conversation until a reply
// goes through.
func TestFailedReplyDoesNotStopTheClock(t *testing.T) {
	tests := []struct {
		name  string
		fault whatsapptest.Fault
		code  int
	}{
		{"131047 in a status", whatsapptest.Fault{Code: 131047, Async: true}, 131047},
		{"131026 in a status", whatsapptest.Fault{Code: 131026, Async: true}, 131026},
		{"131026 in the answer", whatsapptest.Fault{Code: 131026}, 131026},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			const from = "5491155550601"
			id := inbox.ConversationID(from, "")
			e.write(from, "factura")
			start := e.clock.Now()
			pendingSince := e.conv(id).PendingSince
			e.claim(id, "ana")
			e.wa.FailRecipient(from, 1, tt.fault)
			m, err := e.x.Reply(e.ctx, e.user("ana"), id, inbox.ReplyRequest{Text: "Hola, lo reviso"})
			if err != nil {
				t.Fatal(err)
			}
			m = e.waitState(id, m.ID, inbox.StateFailed)
			if m.Error == nil || m.Error.Code != tt.code {
				t.Errorf("failed reply's error = %+v, want code %d", m.Error, tt.code)
			}
			d := e.conv(id)
			if !d.Pending || !d.PendingSince.Equal(pendingSince) || d.Failure == nil || d.Failure.Code != tt.code || d.Failure.Message != m.ID {
				t.Fatalf("after a failed reply: pending %v since %v, failure %+v; want pending since %v, failure %d on %s",
					d.Pending, d.PendingSince, d.Failure, pendingSince, tt.code, m.ID)
			}
			if got := e.metric("deflectd_inbox_reply_failures_total", "team", "billing", "code", strconv.Itoa(tt.code)); got != 1 {
				t.Errorf("reply_failures_total{%d} = %v, want 1", tt.code, got)
			}
			e.at(start, 5*time.Minute)
			if d := e.conv(id); d.Level != inbox.LevelCritical {
				t.Errorf("5 min after the message, with only a failed reply: level %v, want critical", d.Level)
			}
			if m := e.reply(id, "ana", "Hola de nuevo"); m.State != inbox.StateSent {
				t.Fatalf("second reply: %s", m.State)
			}
			if d := e.conv(id); d.Pending || d.Failure != nil {
				t.Errorf("after an accepted reply: pending %v failure %+v; want answered, no failure", d.Pending, d.Failure)
			}
		})
	}
}
