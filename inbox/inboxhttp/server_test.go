package inboxhttp_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/inbox/inboxhttp"
)

// The authorization matrix: every actor against every kind of
// conversation, for every call on a conversation. An agent sees and acts
// on the Unassigned of its own teams and its own chats; a supervisor on
// everything; only a supervisor reassigns. Every denied cell is a 403 and
// every allowed one is not (it may still be refused for another reason,
// such as a 409 for taking a chat someone else took).
func TestAuthorizationMatrix(t *testing.T) {
	a := newAPI(t)
	type call struct {
		name, method, path, body string
	}
	calls := []call{
		{"view", "GET", "conversations/%s", ""},
		{"quick-replies", "GET", "conversations/%s/quick-replies", ""},
		{"seen", "POST", "conversations/%s/seen", ""},
		{"typing", "POST", "conversations/%s/typing", ""},
		{"claim", "POST", "conversations/%s/claim", ""},
		{"reply", "POST", "conversations/%s/reply", `{"text":"hola"}`},
		{"template", "POST", "conversations/%s/template", `{"name":"queue_recover_v1","language":"es"}`},
		{"handoff", "POST", "conversations/%s/handoff", `{"to_team":"support","reason":"Needs a technician.","priority":"high","next_step":"Call back","tag":"tech"}`},
		{"resolve", "POST", "conversations/%s/resolve", `{"note":"Done.","kind":"confirmation"}`},
		{"reopen", "POST", "conversations/%s/reopen", ""},
		{"reassign", "POST", "conversations/%s/reassign", `{"to_agent":"bob"}`},
	}
	// The states of a billing conversation, and how to reach each.
	states := []struct {
		name  string
		setup func(id string)
	}{
		{"unassigned", func(string) {}},
		{"ana's", func(id string) { a.mustOK("ana", "POST", "conversations/"+id+"/claim", "") }},
		{"bob's", func(id string) { a.mustOK("bob", "POST", "conversations/"+id+"/claim", "") }},
		{"ana's resolved", func(id string) {
			a.mustOK("ana", "POST", "conversations/"+id+"/claim", "")
			a.mustOK("ana", "POST", "conversations/"+id+"/resolve", `{"note":"Done.","kind":"confirmation"}`)
		}},
	}
	// allowed is the matrix, written out rather than derived from
	// inbox.Can, so that the test checks the rule and not itself.
	allowed := map[string]map[string]string{
		// actor -> state -> the calls allowed
		"ana": {
			"unassigned":     "view quick-replies seen typing claim reply template",
			"ana's":          "view quick-replies seen typing claim reply template handoff resolve reopen",
			"bob's":          "claim",
			"ana's resolved": "view quick-replies seen typing reply template handoff resolve reopen",
		},
		"carla": {}, // another team: nothing
		"sue": {
			"unassigned":     "*",
			"ana's":          "*",
			"bob's":          "*",
			"ana's resolved": "*",
		},
	}
	cells := 0
	for _, actor := range []string{"ana", "carla", "sue"} {
		for _, st := range states {
			for _, c := range calls {
				id := a.customer("Hola, necesito ayuda con mi factura")
				st.setup(id)
				r := a.do(actor, c.method, fmt.Sprintf(c.path, id), c.body)
				list := allowed[actor][st.name]
				want := list == "*" || strings.Contains(" "+list+" ", " "+c.name+" ")
				cells++
				switch {
				case want && r.status == http.StatusForbidden:
					t.Errorf("%s %s on %s: 403 %s, want allowed", actor, c.name, st.name, r.body)
				case !want && r.status != http.StatusForbidden:
					t.Errorf("%s %s on %s: %d %s, want 403", actor, c.name, st.name, r.status, r.body)
				case !want && r.errorCode() != "forbidden":
					t.Errorf("%s %s on %s: error code %q, want forbidden", actor, c.name, st.name, r.errorCode())
				case want && r.status >= 500:
					t.Errorf("%s %s on %s: %d %s", actor, c.name, st.name, r.status, r.body)
				}
			}
		}
	}

	// The calls that are not on one conversation.
	other := []struct {
		actor, method, path, body string
		want                      int
	}{
		{"ana", "GET", "conversations?view=all", "", http.StatusForbidden},
		{"ana", "GET", "conversations?view=unassigned&team=support", "", http.StatusForbidden},
		{"ana", "GET", "conversations?view=mine&agent=bob", "", http.StatusForbidden},
		{"ana", "GET", "agents", "", http.StatusForbidden},
		{"ana", "GET", "today", "", http.StatusForbidden},
		{"ana", "PUT", "availability", `{"status":"away","agent":"bob"}`, http.StatusForbidden},
		{"ana", "GET", "conversations?view=unassigned&team=billing", "", http.StatusOK},
		{"ana", "GET", "conversations?view=mine", "", http.StatusOK},
		{"ana", "GET", "conversations?view=pending", "", http.StatusOK},
		{"ana", "GET", "conversations?view=resolved", "", http.StatusOK},
		{"ana", "PUT", "availability", `{"status":"away"}`, http.StatusOK},
		{"ana", "GET", "counts", "", http.StatusOK},
		{"sue", "GET", "conversations?view=all", "", http.StatusOK},
		{"sue", "GET", "conversations?view=mine&agent=bob", "", http.StatusOK},
		{"sue", "GET", "agents", "", http.StatusOK},
		{"sue", "GET", "today", "", http.StatusOK},
		{"sue", "PUT", "availability", `{"status":"offline","agent":"bob"}`, http.StatusOK},
	}
	for _, o := range other {
		cells++
		if r := a.do(o.actor, o.method, o.path, o.body); r.status != o.want {
			t.Errorf("%s %s %s = %d %s, want %d", o.actor, o.method, o.path, r.status, r.body, o.want)
		}
	}
	t.Logf("%d cells", cells)
}

// An agent's lists hold only what it may see: the Unassigned of its teams
// and its own chats.
func TestAgentSeesOnlyItsOwn(t *testing.T) {
	a := newAPI(t)
	billing := a.customer("factura")
	taken := a.customer("otra factura")
	a.mustOK("bob", "POST", "conversations/"+taken+"/claim", "")
	support := a.customer("soporte")
	a.mustOK("sue", "POST", "conversations/"+support+"/reassign", `{"to_team":"support"}`)

	ids := func(user, query string) []string {
		var p struct {
			Items []struct{ ID string } `json:"items"`
		}
		a.mustOK(user, "GET", "conversations?"+query, "").decode(t, &p)
		var out []string
		for _, c := range p.Items {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids("ana", "view=unassigned"); len(got) != 1 || got[0] != billing {
		t.Errorf("ana's Unassigned = %v, want only %s", got, billing)
	}
	if got := ids("carla", "view=unassigned"); len(got) != 1 || got[0] != support {
		t.Errorf("carla's Unassigned = %v, want only %s", got, support)
	}
	if got := ids("bob", "view=mine"); len(got) != 1 || got[0] != taken {
		t.Errorf("bob's Mine = %v, want only %s", got, taken)
	}
	if got := ids("sue", "view=all"); len(got) != 3 {
		t.Errorf("sue's All = %v, want all 3", got)
	}
}

// The take race over the API: 50 agents press "take" at once; exactly one
// gets 200 and 49 get a 409 naming the winner.
func TestTakeRaceOverAPI(t *testing.T) {
	a := newAPI(t)
	id := a.customer("hola")
	const n = 50
	var wg sync.WaitGroup
	codes := make([]resp, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"ana", "bob", "sue"}[i%3]
			codes[i] = a.do(user, "POST", "conversations/"+id+"/claim", "")
		}()
	}
	wg.Wait()
	won, lost := 0, 0
	for _, r := range codes {
		switch r.status {
		case http.StatusOK:
			won++
		case http.StatusConflict:
			lost++
			if !strings.Contains(string(r.body), "taken") && r.errorCode() == "" {
				t.Errorf("409 without a code: %s", r.body)
			}
		default:
			t.Errorf("claim = %d %s", r.status, r.body)
		}
	}
	// The same user pressing twice is not a conflict with itself: claims
	// by the winner are idempotent, so count distinct outcomes per user.
	if won < 1 || won+lost != n {
		t.Errorf("%d won, %d lost of %d", won, lost, n)
	}
	var c inbox.Detail
	a.mustOK("sue", "GET", "conversations/"+id, "").decode(t, &c)
	winners := map[string]bool{}
	for i, r := range codes {
		if r.status == http.StatusOK {
			winners[[]string{"ana", "bob", "sue"}[i%3]] = true
		}
	}
	if len(winners) != 1 || !winners[c.Conversation.Owner] {
		t.Errorf("winners %v, owner %q: want exactly one winner, the owner", winners, c.Conversation.Owner)
	}
}

// Bearer tokens: a wrong or missing one is a 401 with WWW-Authenticate.
func TestBearerTokens(t *testing.T) {
	a := newAPI(t)
	if r := a.do("", "GET", "me", ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", r.status, r.header)
	}
	if r := a.do("nobody", "GET", "me", ""); r.status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
		t.Errorf("a wrong token: %d %s", r.status, r.body)
	}
	h := http.Header{"Authorization": {"Basic YW5hOng="}}
	if r := a.call(http.DefaultClient, h, "GET", "me", ""); r.status != http.StatusUnauthorized {
		t.Errorf("basic auth: %d %s", r.status, r.body)
	}
	var me struct {
		User inbox.User `json:"user"`
	}
	a.mustOK("ana", "GET", "me", "").decode(t, &me)
	if me.User.ID != "ana" {
		t.Errorf("me = %+v", me.User)
	}
	// A bearer token needs no CSRF header: it is not sent by a browser on
	// its own.
	a.mustOK("ana", "PUT", "availability", `{"status":"online"}`)
}

// Log in to a session cookie (HttpOnly, SameSite=Strict); every write
// with the cookie needs the session's CSRF token; logging out ends it.
func TestSessionsAndCSRF(t *testing.T) {
	a := newAPI(t)
	b := a.browser()
	if r := a.call(b, nil, "POST", "login", `{"user":"ana","password":"wrong"}`); r.status != http.StatusUnauthorized || r.errorCode() != "bad_credentials" {
		t.Errorf("a wrong password: %d %s", r.status, r.body)
	}
	if r := a.call(b, nil, "POST", "login", `{"user":"nobody","password":"x"}`); r.status != http.StatusUnauthorized || r.errorCode() != "bad_credentials" {
		t.Errorf("an unknown user: %d %s", r.status, r.body)
	}
	if r := a.call(b, nil, "POST", "login", `{"user":"bob","password":"x"}`); r.status != http.StatusUnauthorized {
		t.Errorf("a user without a password: %d %s", r.status, r.body)
	}
	if r := a.call(b, nil, "POST", "login", `{"user":"ana"}`); r.status != http.StatusBadRequest || r.errorField() != "password" {
		t.Errorf("no password: %d %s", r.status, r.body)
	}
	r := a.call(b, nil, "POST", "login", jsonBody(map[string]string{"user": "ana", "password": anaPassword}))
	if r.status != http.StatusOK {
		t.Fatalf("login = %d %s", r.status, r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"deflectd_inbox=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	r.decode(t, &login)
	if login.CSRF == "" {
		t.Fatal("login gave no csrf_token")
	}

	if r := a.call(b, nil, "GET", "me", ""); r.status != http.StatusOK {
		t.Errorf("GET with the cookie = %d %s", r.status, r.body)
	}
	id := a.customer("hola")
	if r := a.call(b, nil, "POST", "conversations/"+id+"/claim", ""); r.status != http.StatusForbidden || r.errorCode() != "csrf" {
		t.Errorf("a write without the CSRF token = %d %s, want 403 csrf", r.status, r.body)
	}
	if r := a.call(b, http.Header{"X-Csrf-Token": {"forged"}}, "POST", "conversations/"+id+"/claim", ""); r.status != http.StatusForbidden {
		t.Errorf("a write with a wrong CSRF token = %d %s, want 403", r.status, r.body)
	}
	csrf := http.Header{"X-Csrf-Token": {login.CSRF}}
	if r := a.call(b, csrf, "POST", "conversations/"+id+"/claim", ""); r.status != http.StatusOK {
		t.Errorf("a write with the CSRF token = %d %s", r.status, r.body)
	}
	if r := a.call(b, csrf, "POST", "logout", ""); r.status != http.StatusOK {
		t.Errorf("logout = %d %s", r.status, r.body)
	}
	if r := a.call(b, nil, "GET", "me", ""); r.status != http.StatusUnauthorized {
		t.Errorf("after logout = %d %s, want 401", r.status, r.body)
	}
}

// Password guessing is bounded per user.
func TestLoginLimit(t *testing.T) {
	a := newAPI(t)
	b := a.browser()
	var last resp
	for range 11 {
		last = a.call(b, nil, "POST", "login", `{"user":"ana","password":"guess"}`)
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("the 11th wrong password = %d %s, want 429 with Retry-After", last.status, last.body)
	}
	if r := a.call(b, nil, "POST", "login", jsonBody(map[string]string{"user": "ana", "password": anaPassword})); r.status != http.StatusTooManyRequests {
		t.Errorf("the right password while locked = %d, want 429", r.status)
	}
	// Counted: 10 wrong passwords, then two refusals while locked.
	got := map[string]float64{}
	fams, _ := a.instance.reg.Gather()
	for _, f := range fams {
		if f.GetName() == "deflectd_inbox_logins_total" {
			for _, m := range f.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["bad_credentials"] != 10 || got["locked_out"] != 2 || got["ok"] != 0 {
		t.Errorf("deflectd_inbox_logins_total = %v, want 10 bad_credentials, 2 locked_out", got)
	}
}

// Bad input gets a 400 that names the field, with a stable code; an
// oversized body gets a 413; an unknown call a JSON 404.
func TestBadInput(t *testing.T) {
	a := newAPI(t)
	id := a.customer("hola")
	a.mustOK("ana", "POST", "conversations/"+id+"/claim", "")
	tests := []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "conversations/%s/reply", `{"text":""}`, 400, "invalid", "text"},
		{"POST", "conversations/%s/reply", `{"text":"hi","colour":"red"}`, 400, "invalid", "colour"},
		{"POST", "conversations/%s/reply", `{"text":42}`, 400, "invalid", "text"},
		{"POST", "conversations/%s/reply", `{"text":"a"} {"text":"b"}`, 400, "invalid", ""},
		{"POST", "conversations/%s/reply", `{"text":`, 400, "invalid", ""},
		{"POST", "conversations/%s/reply", ``, 400, "invalid", ""},
		{"POST", "conversations/%s/reply", `{"text":"hi","client_id":"no spaces allowed"}`, 400, "invalid", "client_id"},
		{"POST", "conversations/%s/reply", `{"text":"` + strings.Repeat("x", 9000) + `"}`, 413, "too_large", ""},
		{"POST", "conversations/%s/handoff", `{"to_team":"support","priority":"high","next_step":"x","tag":"t"}`, 400, "invalid", "reason"},
		{"POST", "conversations/%s/handoff", `{"to_team":"support","reason":"r","priority":"urgent","next_step":"x","tag":"t"}`, 400, "invalid", "priority"},
		{"POST", "conversations/%s/handoff", `{"to_team":"support","reason":"r","priority":"high","tag":"t"}`, 400, "invalid", "next_step"},
		{"POST", "conversations/%s/handoff", `{"to_team":"support","reason":"r","priority":"high","next_step":"x"}`, 400, "invalid", "tag"},
		{"POST", "conversations/%s/handoff", `{"to_team":"nowhere","reason":"r","priority":"high","next_step":"x","tag":"t"}`, 400, "invalid", "to_team"},
		{"POST", "conversations/%s/resolve", `{"kind":"confirmation"}`, 400, "invalid", "note"},
		{"POST", "conversations/%s/resolve", `{"note":"n","kind":"maybe"}`, 400, "invalid", "kind"},
		{"POST", "conversations/%s/template", `{"language":"es"}`, 400, "invalid", "name"},
		{"POST", "conversations/%s/template", `{"name":"no_such","language":"es"}`, 400, "invalid", "name"},
		{"POST", "conversations/%s/claim", `{"force":true}`, 400, "invalid", ""},
		{"GET", "conversations?view=sideways", ``, 400, "invalid", "view"},
		{"GET", "conversations?view=mine&limit=many", ``, 400, "invalid", "limit"},
		{"GET", "conversations?view=mine&sort=asc", ``, 400, "invalid", "sort"},
		{"GET", "conversations?view=mine&cursor=garbage", ``, 400, "invalid", "cursor"},
		{"PUT", "availability", `{"status":"sleeping"}`, 400, "invalid", "status"},
		{"GET", "conversations/wa0000/reply", ``, 405, "method_not_allowed", ""},
		{"GET", "conversations/nosuch", ``, 404, "not_found", ""},
		{"GET", "nosuchcall", ``, 404, "not_found", ""},
	}
	for _, tt := range tests {
		path := tt.path
		if strings.Contains(path, "%s") {
			path = fmt.Sprintf(path, id)
		}
		r := a.do("ana", tt.method, path, tt.body)
		if r.status != tt.status || r.errorCode() != tt.code || r.errorField() != tt.field {
			t.Errorf("%s %s %.60q = %d %s, want %d code %q field %q", tt.method, tt.path, tt.body, r.status, r.body, tt.status, tt.code, tt.field)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q, want JSON", tt.method, tt.path, ct)
		}
	}
}

// A reply is acknowledged once durable in the outbox, and the same
// client_id sends once however often the agent's browser retries.
func TestReplyIdempotent(t *testing.T) {
	a := newAPI(t)
	id := a.customer("hola")
	for range 3 {
		if r := a.do("ana", "POST", "conversations/"+id+"/reply", `{"text":"¡Hola! Ya lo vemos.","client_id":"c-1"}`); r.status != http.StatusCreated {
			t.Fatalf("reply = %d %s", r.status, r.body)
		}
	}
	a.eventually("the reply reaches the fake Cloud API", func() bool { return len(a.wa.Messages()) >= 1 })
	var d inbox.Detail
	a.mustOK("ana", "GET", "conversations/"+id, "").decode(t, &d)
	out := 0
	for _, m := range d.Messages {
		if m.Direction == inbox.Out {
			out++
		}
	}
	if out != 1 || len(a.wa.Messages()) != 1 {
		t.Errorf("%d outbound messages stored, %d sent, want 1 and 1", out, len(a.wa.Messages()))
	}
	// The same id for another text is a mistake, not a retry.
	if r := a.do("ana", "POST", "conversations/"+id+"/reply", `{"text":"Otra cosa","client_id":"c-1"}`); r.status != http.StatusConflict || r.errorCode() != "client_id_reused" {
		t.Errorf("another text under the same client_id = %d %s, want 409 client_id_reused", r.status, r.body)
	}
}

// A stream ends when its instance stops, so that the HTTP server's
// graceful shutdown does not wait on every agent's open browser; the
// browser reconnects (to another instance, or this one restarted), and
// until then a new stream is refused with a 503.
func TestEventStreamEndsOnStop(t *testing.T) {
	a := newAPI(t)
	in := a.newInstance()
	s := a.streamOn(in, "ana", "")
	if e := s.next(t); e.typ != "hello" {
		t.Fatalf("first event = %+v, want hello", e)
	}
	in.stop()
	select {
	case e, ok := <-s.events:
		if ok {
			t.Fatalf("after the stop the stream sent %+v, want its end", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still open 10 s after its instance stopped")
	}
	req, _ := http.NewRequestWithContext(a.ctx, "GET", in.srv.URL+inboxhttp.Base+"events", nil)
	req.Header.Set("Authorization", "Bearer tok-ana")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream on a stopped instance = %d, want 503", res.StatusCode)
	}
}

// The live stream: a fresh client gets "hello" and then the events it may
// see; a client that comes back with Last-Event-ID is replayed what it
// missed; one whose id is gone gets "reset"; a bad id is a 400.
func TestEventStream(t *testing.T) {
	a := newAPI(t)
	first := a.customer("hola")
	ana := a.stream("ana", "")
	hello := ana.next(t)
	if hello.typ != "hello" || hello.id == "" {
		t.Fatalf("first event = %+v, want hello", hello)
	}
	carla := a.stream("carla", "")
	if e := carla.next(t); e.typ != "hello" {
		t.Fatalf("carla's first event = %+v", e)
	}

	a.mustOK("ana", "POST", "conversations/"+first+"/claim", "")
	e := ana.waitFor(t, func(e sse) bool { return strings.Contains(e.data, first) && e.typ == inbox.EvClaimed })
	a.mustOK("carla", "PUT", "availability", `{"status":"away"}`)
	// carla sees her own availability change, but never billing's claim.
	for {
		e := carla.next(t)
		if strings.Contains(e.data, first) {
			t.Fatalf("carla (support) saw billing's event %+v", e)
		}
		if e.typ == inbox.EvAvailability {
			break
		}
	}

	// Resume after the claim: the events since then, not the claim again.
	a.mustOK("ana", "POST", "conversations/"+first+"/reply", `{"text":"hola"}`)
	ana.close()
	resumed := a.stream("ana", e.id)
	got := resumed.waitFor(t, func(e sse) bool { return strings.Contains(e.data, first) })
	if got.id == e.id || got.typ == inbox.EvClaimed || got.typ == "hello" {
		t.Errorf("resumed with %+v after %s", got, e.id)
	}
	resumed.close()

	// An id from before the first event, with nothing trimmed: the whole
	// stream is replayed.
	if e := a.stream("sue", "1-0").next(t); e.typ != inbox.EvCreated {
		t.Errorf("resuming from before the first event = %+v, want the first event", e)
	}
	// Events trimmed past the client's id are gone: reset, and reload. The
	// first instance still holds them in its buffer and serves them from
	// there; an instance started after the trim has only Redis.
	if err := a.redis.Client().XTrimMaxLen(a.ctx, a.redis.Prefix+"inbox:{inbox}:events", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if e := a.streamOn(a.newInstance(), "ana", e.id).next(t); e.typ != "reset" {
		t.Errorf("resuming from an id that is gone = %+v, want reset", e)
	}
	h := http.Header{"Authorization": {"Bearer tok-ana"}, "Last-Event-Id": {"not-an-id"}}
	if r := a.call(http.DefaultClient, h, "GET", "events", ""); r.status != http.StatusBadRequest || r.errorField() != "Last-Event-ID" {
		t.Errorf("a bad Last-Event-ID = %d %s", r.status, r.body)
	}
}

// ---- helpers ----

func (a *api) mustOK(user, method, path, body string) resp {
	a.t.Helper()
	r := a.do(user, method, path, body)
	if r.status/100 != 2 {
		a.t.Fatalf("%s %s %s as %s = %d %s", method, path, body, user, r.status, r.body)
	}
	return r
}

// eventually waits for cond, woken by the inbox's own event stream.
func (a *api) eventually(what string, cond func() bool) {
	a.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last, _ := a.x.LastEventID(a.ctx)
	for !cond() {
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: not within 15 s", what)
		}
		evs, _ := a.x.Events(a.ctx, last, 100*time.Millisecond)
		if len(evs) > 0 {
			last = evs[len(evs)-1].ID
		}
	}
}

type sse struct{ typ, id, data string }

type stream struct {
	cancel context.CancelFunc
	events chan sse
}

// stream opens the event stream as user, resuming after last.
func (a *api) stream(user, last string) *stream {
	a.t.Helper()
	return a.streamOn(a.instance, user, last)
}

// streamOn opens the event stream of instance in.
func (a *api) streamOn(in *instance, user, last string) *stream {
	a.t.Helper()
	ctx, cancel := context.WithCancel(a.ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", in.srv.URL+inboxhttp.Base+"events", nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok-"+user)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		a.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		cancel()
		a.t.Fatalf("events = %d", res.StatusCode)
	}
	s := &stream{cancel: cancel, events: make(chan sse, 1024)}
	a.t.Cleanup(s.close)
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.typ != "" {
					s.events <- e
				}
				e = sse{}
			case strings.HasPrefix(line, "event: "):
				e.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

func (s *stream) close() { s.cancel() }

func (s *stream) next(t *testing.T) sse {
	t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return e
	case <-time.After(15 * time.Second):
		t.Fatal("no event within 15 s")
	}
	return sse{}
}

func (s *stream) waitFor(t *testing.T, cond func(sse) bool) sse {
	t.Helper()
	for {
		if e := s.next(t); cond(e) {
			return e
		}
	}
}
