package inbox_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// Rule 3, claim_timeout: a chat taken and not answered within
// claim_timeout (default 10 min) goes back to Unassigned with a history
// entry; one that was answered stays. Unassigned lists the oldest waiting
// customer first, so the returned chat is at the top.
func TestClaimTimeoutReturnsToUnassignedOldestFirst(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	var ids []string
	for i := range 3 {
		from := fmt.Sprintf("54911555507%02d", i)
		ids = append(ids, inbox.ConversationID(from, ""))
		e.write(from, "factura")
		if i == 0 {
			e.claim(ids[0], "ana")
		}
		e.clock.Advance(time.Minute)
	}
	e.claim(ids[2], "bob")
	e.reply(ids[2], "bob", "Hola, ya te ayudo") // answered: no timeout
	unassigned := func() []string {
		t.Helper()
		p, err := e.x.List(e.ctx, e.user("ana"), inbox.Query{View: inbox.ViewUnassigned})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range p.Items {
			out = append(out, it.ID)
		}
		return out
	}

	e.at(start, 10*time.Minute-time.Second)
	if got := e.conv(ids[0]).Owner; got != "ana" {
		t.Fatalf("before claim_timeout: owner %q, want ana", got)
	}
	e.at(start, 10*time.Minute)
	d := e.conv(ids[0])
	un := e.history(ids[0], inbox.EvUnassigned)
	if d.Owner != "" || len(un) != 1 || un[0].Data["reason"] != inbox.ReasonClaimTimeout || un[0].Data["from"] != "ana" {
		t.Fatalf("at claim_timeout: owner %q, unassigned events %+v; want back in Unassigned, reason claim_timeout from ana", d.Owner, un)
	}
	if got := e.metric("deflectd_inbox_unassigned_total", "team", "billing", "reason", inbox.ReasonClaimTimeout); got != 1 {
		t.Errorf("unassigned_total{claim_timeout} = %v, want 1", got)
	}
	if got, want := strings.Join(unassigned(), ","), ids[0]+","+ids[1]; got != want {
		t.Errorf("Unassigned = %s, want oldest first %s", got, want)
	}
	e.at(start, 30*time.Minute)
	if got := e.conv(ids[2]).Owner; got != "bob" {
		t.Errorf("answered chat after 30 min: owner %q, want bob", got)
	}
}

// Rule 4, availability, when the page closes: an agent whose web UI sent
// its last heartbeat and lapsed is set offline (once, by whichever
// instance sweeps first), and their pending chats then follow the offline
// path. A page that keeps pinging keeps them online, and a user who never
// had a page (an API client) keeps what they set.
func TestClosedPageGoesOffline(t *testing.T) {
	e := newEnv(t, envOptions{})
	other := e.newInbox()
	const from = "5491155550802"
	id := inbox.ConversationID(from, "")
	e.setPresence(inbox.Online, "ana", "bob")
	e.write(from, "factura")
	e.claim(id, "ana")
	start := e.clock.Now()
	const lapse = 45 * time.Second
	for _, u := range []string{"ana", "carla"} {
		if err := e.x.Heartbeat(e.ctx, u, start.Add(lapse)); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func(x *inbox.Inbox) []string {
		t.Helper()
		gone, err := x.SweepAbsent(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return gone
	}
	e.clock.Set(start.Add(lapse - time.Second))
	if gone := sweep(e.x); len(gone) != 0 {
		t.Fatalf("before the lapse: %v set offline", gone)
	}
	e.clock.Set(start.Add(lapse))
	gone := append(sweep(e.x), sweep(other)...)
	// carla was offline already: nothing to do for her.
	if strings.Join(gone, ",") != "ana" {
		t.Fatalf("after the lapse, set offline: %v, want ana, once", gone)
	}
	for u, want := range map[string]inbox.Availability{"ana": inbox.Offline, "bob": inbox.Online, "carla": inbox.Offline} {
		if p, _ := e.x.Presence(e.ctx, u); p.Status != want {
			t.Errorf("%s is %s, want %s", u, p.Status, want)
		}
	}
	e.at(start, lapse+inbox.DefaultOfflineGrace)
	if d := e.conv(id); d.Owner != "" || d.Level != inbox.LevelEscalated {
		t.Errorf("ana's pending chat after the grace: owner %q level %v, want Unassigned and escalated", d.Owner, d.Level)
	}
	// A page that was only cut off comes back: its next heartbeat
	// restores what the sweep took. One who chose offline stays so.
	if err := e.x.Heartbeat(e.ctx, "ana", e.clock.Now().Add(lapse)); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.x.Presence(e.ctx, "ana"); p.Status != inbox.Online || p.Absent {
		t.Errorf("ana after her page came back: %+v, want online again", p)
	}
	e.setPresence(inbox.Offline, "bob")
	e.x.Heartbeat(e.ctx, "bob", e.clock.Now().Add(lapse))
	if p, _ := e.x.Presence(e.ctx, "bob"); p.Status != inbox.Offline {
		t.Errorf("bob chose offline, then his page pinged: %s, want offline", p.Status)
	}
	// A page that pings stays.
	e.setPresence(inbox.Online, "ana")
	now := e.clock.Now()
	e.x.Heartbeat(e.ctx, "ana", now.Add(lapse))
	e.clock.Set(now.Add(lapse - time.Second))
	e.x.Heartbeat(e.ctx, "ana", e.clock.Now().Add(lapse))
	e.clock.Set(now.Add(lapse + time.Second))
	if gone := sweep(e.x); len(gone) != 0 {
		t.Errorf("a page that pinged: %v set offline", gone)
	}
}

// Rule 4, availability: the pending chats of an agent who goes offline
// follow the escalation path after offline_grace (default 1 min):
// escalated, supervisors notified, back to Unassigned. An away agent
// keeps them.
func TestOfflineOwnerChatsEscalate(t *testing.T) {
	tests := []struct {
		status    inbox.Availability
		wantOwner string
		wantLevel inbox.Level
	}{
		{inbox.Offline, "", inbox.LevelEscalated},
		{inbox.Away, "ana", inbox.LevelNormal},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			const from = "5491155550801"
			id := inbox.ConversationID(from, "")
			e.setPresence(inbox.Online, "ana")
			e.write(from, "factura")
			e.claim(id, "ana")
			start := e.clock.Now()
			e.clock.Advance(30 * time.Second)
			e.setPresence(tt.status, "ana")
			e.at(start, 30*time.Second+inbox.DefaultOfflineGrace-time.Second)
			if d := e.conv(id); d.Owner != "ana" || d.Level != inbox.LevelNormal {
				t.Fatalf("within offline_grace: owner %q level %v, want ana's, normal", d.Owner, d.Level)
			}
			e.at(start, 30*time.Second+inbox.DefaultOfflineGrace)
			d := e.conv(id)
			if d.Owner != tt.wantOwner || d.Level != tt.wantLevel {
				t.Fatalf("after offline_grace: owner %q level %v, want %q, %v", d.Owner, d.Level, tt.wantOwner, tt.wantLevel)
			}
			want := 0.0
			if tt.status == inbox.Offline {
				want = 1
				esc := e.history(id, inbox.EvEscalation)
				if len(esc) != 1 || esc[0].Data["reason"] != inbox.ReasonOffline || strings.Join(esc[0].To, ",") != "sue" {
					t.Errorf("escalations = %+v, want one for offline, to sue", esc)
				}
			}
			if got := e.metric("deflectd_inbox_unassigned_total", "team", "billing", "reason", inbox.ReasonOffline); got != want {
				t.Errorf("unassigned_total{offline} = %v, want %v", got, want)
			}
			if got := e.metric("deflectd_inbox_escalations_total", "team", "billing", "level", "escalated", "reason", inbox.ReasonOffline); got != want {
				t.Errorf("escalations_total{escalated, offline} = %v, want %v", got, want)
			}
		})
	}
}

// Rule 5, context travels: a customer answering a deflection message (the
// outbox record of that number within context_lookback) gets the call's
// context card and is routed by the call's queue and reason; any other
// chat goes to keyword routing, else to the default team.
func TestContextTravelsAndRoutes(t *testing.T) {
	tests := []struct {
		name     string
		meta     map[string]string // nil: no deflection
		age      time.Duration     // from the deflection to the answer
		tap      bool
		text     string
		wantTeam string
		wantCtx  bool
	}{
		{"tap on a billing call's offer", map[string]string{"queue": "sales", "reason": "billing"}, time.Minute, true, "", "billing", true},
		{"text after a support call's offer", map[string]string{"queue": "support", "reason": "technical"}, time.Hour, false, "hola", "support", true},
		{"call without a route", map[string]string{"queue": "other", "reason": "sales"}, time.Minute, true, "", "general", true},
		{"offer older than the lookback", map[string]string{"queue": "support", "reason": "technical"}, 25 * time.Hour, false, "hola", "general", false},
		{"old offer, keyword", map[string]string{"queue": "support", "reason": "technical"}, 25 * time.Hour, false, "mi FACTURA", "billing", false},
		{"keyword", nil, 0, false, "Consulta por mi factura", "billing", false},
		{"default team", nil, 0, false, "hola", "general", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			from := fmt.Sprintf("54911555509%02d", i)
			id := inbox.ConversationID(from, "")
			callID := fmt.Sprintf("1795234870.%d", i)
			var wamid string
			if tt.meta != nil {
				for k, v := range map[string]string{"option": "2", "lang": "es", "wait_s": "420", "ewt_s": "300", "position": "3"} {
					tt.meta[k] = v
				}
				rec := e.deflect(from, callID, tt.meta)
				wamid = rec.WAMID
				e.clock.Advance(tt.age)
			}
			if tt.tap {
				e.tap(from, wamid, "dfl:"+callID+":offer", "Hablar con un agente")
			} else {
				e.write(from, tt.text)
			}
			d := e.conv(id)
			if d.Team != tt.wantTeam {
				t.Errorf("team = %q, want %q", d.Team, tt.wantTeam)
			}
			origin := "direct"
			if tt.wantCtx {
				origin = "deflection"
			}
			if got := e.metric("deflectd_inbox_conversations_total", "team", tt.wantTeam, "origin", origin); got != 1 {
				t.Errorf("conversations_total{%s, %s} = %v, want 1", tt.wantTeam, origin, got)
			}
			if !tt.wantCtx {
				if d.Context != nil {
					t.Errorf("context card = %+v, want none", d.Context)
				}
				return
			}
			k := d.Context
			if k == nil {
				t.Fatal("no context card")
			}
			button := ""
			if tt.tap {
				button = "Hablar con un agente"
			}
			if k.CallID != callID || k.Queue != tt.meta["queue"] || k.Option != "2" || k.Reason != tt.meta["reason"] || k.Waited != 7*time.Minute ||
				k.EWT != 5*time.Minute || k.Position != 3 || k.Kind != "offer" || k.Template != "queue_deflect_v1" || k.WAMID != wamid || k.Button != button {
				t.Errorf("context card = %+v, want call %s, queue %s, option 2, reason %s, waited 7m, EWT 5m, position 3, offer queue_deflect_v1 %s, button %q",
					k, callID, tt.meta["queue"], tt.meta["reason"], wamid, button)
			}
			// The message answered heads the conversation, and it is no answer.
			if m := d.Messages[0]; m.Type != "template" || !m.Automatic || m.WAMID != wamid {
				t.Errorf("first message = %+v, want the automatic offer %s", m, wamid)
			}
			if !d.Pending {
				t.Error("a customer answering the offer is not pending")
			}
		})
	}
}

// Rule 3: only a message a person wrote and WhatsApp accepted stops the
// clock; the deflection template the customer answered does not, even
// with its delivered and read statuses coming in.
func TestAutomaticMessagesDoNotStopTheClock(t *testing.T) {
	e := newEnv(t, envOptions{auto: &whatsapptest.AutoStatus{}})
	const from = "5491155551001"
	id := inbox.ConversationID(from, "")
	rec := e.deflect(from, "1795234871.1", map[string]string{"queue": "sales", "reason": "billing", "option": "1", "lang": "es", "wait_s": "60"})
	e.waitFor("offer read", func() bool {
		r, err := e.ob.Get(e.ctx, rec.Key)
		return err == nil && r.Status == "read"
	})
	e.clock.Advance(time.Minute)
	e.tap(from, rec.WAMID, "dfl:"+rec.Key, "Hablar con un agente")
	start := e.clock.Now()
	d := e.conv(id)
	if !d.Pending || !d.Messages[0].Automatic {
		t.Fatalf("after the tap: pending %v, first message %+v; want pending under the automatic offer", d.Pending, d.Messages[0])
	}
	e.at(start, 5*time.Minute)
	if d := e.conv(id); d.Level != inbox.LevelCritical || !d.FirstResponse.IsZero() {
		t.Fatalf("5 min after the tap: level %v, first response %v; want critical, none", d.Level, d.FirstResponse)
	}
	e.claim(id, "ana")
	e.reply(id, "ana", "Hola, soy Ana")
	d = e.conv(id)
	if d.Pending || d.FirstResponse.IsZero() {
		t.Errorf("after ana's accepted reply: pending %v first response %v; want answered", d.Pending, d.FirstResponse)
	}
	if got := e.metric("deflectd_inbox_first_response_seconds", "team", "billing"); got != 1 {
		t.Errorf("first_response_seconds count = %v, want 1", got)
	}
}

// Rule 6, closing with a clear action: a resolve needs a closing note and
// a closing kind (next_step, question, confirmation); a customer message
// after it reopens the chat into Unassigned, and an owner may reopen it;
// resolves and reopens are counted.
func TestResolveAndReopen(t *testing.T) {
	e := newEnv(t, envOptions{})
	const from = "5491155551101"
	id := inbox.ConversationID(from, "")
	e.write(from, "factura")
	e.claim(id, "ana")
	e.reply(id, "ana", "Te envío el link de pago")
	for _, tt := range []struct {
		name  string
		r     inbox.ResolveRequest
		field string
	}{
		{"no note", inbox.ResolveRequest{Kind: inbox.ClosingNextStep}, "note"},
		{"blank note", inbox.ResolveRequest{Note: "  ", Kind: inbox.ClosingNextStep}, "note"},
		{"long note", inbox.ResolveRequest{Note: strings.Repeat("x", 1001), Kind: inbox.ClosingNextStep}, "note"},
		{"no kind", inbox.ResolveRequest{Note: "Link enviado"}, "kind"},
		{"bad kind", inbox.ResolveRequest{Note: "Link enviado", Kind: "done"}, "kind"},
	} {
		_, err := e.x.Resolve(e.ctx, e.user("ana"), id, tt.r)
		if ie := inboxErr(t, err); !errors.Is(err, inbox.ErrInvalid) || ie.Field != tt.field {
			t.Errorf("%s: Resolve(%+v) = %v, want invalid naming %s", tt.name, tt.r, err, tt.field)
		}
	}
	for i, kind := range inbox.ClosingKinds() {
		c, err := e.x.Resolve(e.ctx, e.user("ana"), id, inbox.ResolveRequest{Note: "Link de pago enviado", Kind: kind})
		if err != nil {
			t.Fatalf("Resolve(%s) = %v", kind, err)
		}
		if c.Status != inbox.StatusResolved || c.Resolution == nil || c.Resolution.Kind != kind || c.Resolution.By != "ana" {
			t.Fatalf("after Resolve(%s): %s, %+v", kind, c.Status, c.Resolution)
		}
		if got := e.metric("deflectd_inbox_resolved_total", "agent", "ana", "kind", string(kind)); got != 1 {
			t.Errorf("resolved_total{ana, %s} = %v, want 1", kind, got)
		}
		res, _ := e.x.List(e.ctx, e.user("ana"), inbox.Query{View: inbox.ViewResolved})
		if len(res.Items) != 1 || res.Items[0].ID != id {
			t.Errorf("ana's Resolved = %d items, want the chat", len(res.Items))
		}
		if i == 0 {
			// A customer message reopens it, into Unassigned.
			e.clock.Advance(time.Minute)
			e.write(from, "Una consulta más")
			if d := e.conv(id); d.Status != inbox.StatusOpen || d.Owner != "" || d.Cycle != 2 || !d.Pending || d.Resolution != nil {
				t.Fatalf("after the customer wrote: %s owner %q cycle %d pending %v", d.Status, d.Owner, d.Cycle, d.Pending)
			}
			e.claim(id, "ana")
			e.reply(id, "ana", "Claro")
		} else {
			if _, err := e.x.Reopen(e.ctx, e.user("bob"), id); !errors.Is(err, inbox.ErrForbidden) {
				t.Errorf("bob's Reopen of ana's chat = %v, want forbidden", err)
			}
			c, err := e.x.Reopen(e.ctx, e.user("ana"), id)
			if err != nil || c.Status != inbox.StatusOpen || c.Owner != "ana" {
				t.Fatalf("ana's Reopen = %+v, %v; want open, hers", c, err)
			}
		}
	}
	if got := e.metric("deflectd_inbox_reopens_total", "team", "billing", "by", "customer"); got != 1 {
		t.Errorf("reopens_total{customer} = %v, want 1", got)
	}
	if got := e.metric("deflectd_inbox_reopens_total", "team", "billing", "by", "agent"); got != 2 {
		t.Errorf("reopens_total{agent} = %v, want 2", got)
	}
	if n := len(e.history(id, inbox.EvReopened)); n != 3 {
		t.Errorf("reopened events = %d, want 3", n)
	}
	today, _ := e.x.Today(e.ctx, e.user("sue"))
	if today.Resolved["ana"] != 3 {
		t.Errorf("Today's resolved by ana = %d, want 3", today.Resolved["ana"])
	}
}

// Rule 7, the post-chat survey: with a survey configured, resolving sends
// the CSAT template (an automatic message); a 1–5 quick-reply answer is
// recorded on the conversation and in metrics, does not reopen the chat,
// and is no question waiting for an answer when the customer writes again.
func TestSurveyRecordsCSAT(t *testing.T) {
	cfg := baseConfig()
	cfg.Survey = inbox.SurveyConfig{Template: "csat_v1", Language: "es_AR"}
	e := newEnv(t, envOptions{cfg: cfg, templates: extraTemplates})
	const from = "5491155551201"
	id := inbox.ConversationID(from, "")
	e.write(from, "factura")
	e.claim(id, "ana")
	e.reply(id, "ana", "Listo, corregida")
	if _, err := e.x.Resolve(e.ctx, e.user("ana"), id, inbox.ResolveRequest{Note: "Factura corregida", Kind: inbox.ClosingConfirmation}); err != nil {
		t.Fatal(err)
	}
	s := e.waitState(id, "s1", inbox.StateSent)
	if !s.Automatic || s.Template == nil || s.Template.Name != "csat_v1" {
		t.Fatalf("survey message = %+v, want the automatic csat_v1", s)
	}
	e.clock.Advance(time.Minute)
	e.tap(from, s.WAMID, fmt.Sprintf("dfl:survey:%s:1:4", id), "4")
	d := e.conv(id)
	if d.CSAT != 4 || d.Status != inbox.StatusResolved || len(e.history(id, inbox.EvCSAT)) != 1 {
		t.Fatalf("after the survey answer: CSAT %d, status %s; want 4, still resolved", d.CSAT, d.Status)
	}
	if got := e.metric("deflectd_inbox_csat_total", "team", "billing", "score", "4"); got != 1 {
		t.Errorf("csat_total{4} = %v, want 1", got)
	}
	today, _ := e.x.Today(e.ctx, e.user("sue"))
	if today.CSATCount != 1 || today.CSAT != 4 {
		t.Errorf("Today's CSAT = %v over %d, want 4 over 1", today.CSAT, today.CSATCount)
	}
	e.clock.Advance(10 * time.Minute)
	msg := e.write(from, "Otra cosa")
	d = e.conv(id)
	if d.Status != inbox.StatusOpen || d.PendingMsg != msg || !d.PendingSince.Equal(e.clock.Now()) {
		t.Errorf("after writing again: %s, pending since %v on %s; want open, pending since the new message %s at %v",
			d.Status, d.PendingSince, d.PendingMsg, msg, e.clock.Now())
	}
}

// Marking read: opening a chat (Seen) marks the customer's last message
// read on WhatsApp (blue ticks), once per message, and the typing
// indicator comes with a read receipt; mark_read: false turns both off.
func TestSeenMarksRead(t *testing.T) {
	for _, markRead := range []bool{true, false} {
		t.Run(fmt.Sprint("mark_read=", markRead), func(t *testing.T) {
			cfg := baseConfig()
			cfg.MarkRead = &markRead
			e := newEnv(t, envOptions{cfg: cfg})
			const from = "5491155551301"
			id := inbox.ConversationID(from, "")
			first := e.write(from, "factura")
			if _, err := e.x.Seen(e.ctx, e.user("carla"), id); !errors.Is(err, inbox.ErrForbidden) {
				t.Errorf("Seen by carla (support) = %v, want forbidden", err)
			}
			e.x.Seen(e.ctx, e.user("ana"), id)
			e.x.Seen(e.ctx, e.user("ana"), id)
			second := e.write(from, "hola?")
			e.x.Seen(e.ctx, e.user("bob"), id)
			if err := e.x.Typing(e.ctx, e.user("bob"), id); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range e.wa.Reads() {
				got = append(got, fmt.Sprintf("%s typing=%v", r.MessageID, r.Typing))
			}
			want := []string{first + " typing=false", second + " typing=false", second + " typing=true"}
			if !markRead {
				want = nil
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("reads at the fake = %v, want %v", got, want)
			}
		})
	}
}

// Inbound types: media is stored as a reference (media id and mime type),
// a reaction and a reply with context as such, and a type the inbox does
// not render is stored raw and shown as unsupported: nothing is dropped.
func TestInboundMessageTypes(t *testing.T) {
	e := newEnv(t, envOptions{})
	const from = "5491155551401"
	conv := inbox.ConversationID(from, "")
	text := e.write(from, "factura")
	type media struct{ id, mediaID, mime string }
	var ms []media
	for _, kind := range []string{whatsapptest.MediaImage, whatsapptest.MediaAudio, whatsapptest.MediaDocument} {
		id, mediaID, err := e.wa.SendMedia(e.ctx, from, kind, whatsapptest.MediaSpec{Caption: "mirá", Filename: "factura.pdf"})
		if err != nil {
			t.Fatal(err)
		}
		e.waitMessage(conv, id)
		ms = append(ms, media{id, mediaID, map[string]string{"image": "image/jpeg", "audio": "audio/ogg; codecs=opus", "document": "application/pdf"}[kind]})
	}
	for _, m := range ms {
		got := e.message(conv, m.id)
		if got.Media == nil || got.Media.ID != m.mediaID || got.Media.MimeType != m.mime {
			t.Errorf("media message %s = %+v, want media %s (%s)", got.Type, got.Media, m.mediaID, m.mime)
		}
	}
	reaction, err := e.wa.SendReaction(e.ctx, from, text, "👍")
	if err != nil {
		t.Fatal(err)
	}
	quote, err := e.wa.SendReply(e.ctx, from, text, "esta es la factura")
	if err != nil {
		t.Fatal(err)
	}
	unsupported, err := e.wa.SendUnsupported(e.ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{reaction, quote, unsupported} {
		e.waitMessage(conv, id)
	}
	if m := e.message(conv, reaction); m.Type != "reaction" || m.Reaction == nil || m.Reaction.MessageID != text || m.Reaction.Emoji != "👍" {
		t.Errorf("reaction = %+v", m)
	}
	if m := e.message(conv, quote); m.ContextID != text || m.Text != "esta es la factura" {
		t.Errorf("reply with context = %+v, want quoting %s", m, text)
	}
	m := e.message(conv, unsupported)
	if m.Type != "unsupported" || len(m.Raw) == 0 || !strings.Contains(string(m.Raw), "131051") {
		t.Errorf("unsupported = type %q raw %s, want stored raw", m.Type, m.Raw)
	}
	if d := e.conv(conv); d.Preview != "[unsupported]" || len(d.Messages) != 7 {
		t.Errorf("preview %q, %d messages; want [unsupported], 7", d.Preview, len(d.Messages))
	}
	for kind, want := range map[string]float64{"text": 2, "media": 3, "reaction": 1, "other": 1} {
		if got := e.metric("deflectd_inbox_messages_total", "direction", "in", "kind", kind); got != want {
			t.Errorf("messages_total{in, %s} = %v, want %v", kind, got, want)
		}
	}
}
