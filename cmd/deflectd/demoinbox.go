package main

// The demo's inbox: three teams, two simulated agents in each and a
// supervisor (inbox/inboxsim), working the chats that the deflected
// customers and a few customers of their own open, over the inbox's HTTP
// API as a browser would.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/deflectd/deflectd/inbox"
	"github.com/deflectd/deflectd/inbox/inboxhttp"
	"github.com/deflectd/deflectd/inbox/inboxsim"
	"github.com/deflectd/deflectd/whatsapp/whatsapptest"
)

// demoInbox is the inbox side of the demo.
type demoInbox struct {
	agents     []inboxsim.Agent
	supervisor inboxsim.Agent
	teams      []string
	sim        *inboxsim.Sim
	api        string // the API's base URL
}

// demoPassword signs the demo's people in to the web UI. The demo's
// users file lives in a temporary directory for one run, on loopback.
const demoPassword = "deflectd-demo"

// demoPolicy is the demo's "seen and unanswered" policy, in simulated
// time: shorter than production's, so that ten simulated minutes show
// alerts, escalations and claim timeouts.
var demoPolicy = []struct {
	key string
	d   time.Duration
}{
	{"critical_after", 2 * time.Minute}, {"escalate_after", 5 * time.Minute},
	{"claim_timeout", 4 * time.Minute}, {"lost_after", 10 * time.Minute}, {"offline_grace", time.Minute},
}

// newDemoInbox writes the users file into dir, with a fresh API token
// for each person, and returns the inbox section of the demo's config.
func newDemoInbox(dir string, speed float64) (*demoInbox, string, error) {
	d := &demoInbox{teams: []string{"sales", "billing", "support"}}
	people := map[string][]string{"sales": {"ana", "bruno"}, "billing": {"carla", "diego"}, "support": {"elena", "facundo"}}
	var users strings.Builder
	users.WriteString("users:\n")
	token := func() string {
		var b [24]byte
		rand.Read(b[:])
		return "dfi_" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	for _, t := range d.teams {
		for _, id := range people[t] {
			a := inboxsim.Agent{ID: id, Token: token()}
			d.agents = append(d.agents, a)
			fmt.Fprintf(&users, "  - {id: %s, name: %s, role: agent, teams: [%s], tokens: [%q]}\n",
				id, strings.ToUpper(id[:1])+id[1:], t, inbox.HashToken(a.Token))
		}
	}
	// The people at the keyboard: sofia, the supervisor, and "demo", an
	// agent of every team who works beside the simulated ones. They sign
	// in to the web UI with demoPassword.
	hash, err := inbox.HashPassword(demoPassword)
	if err != nil {
		return nil, "", err
	}
	d.supervisor = inboxsim.Agent{ID: "sofia", Token: token()}
	fmt.Fprintf(&users, "  - {id: sofia, name: Sofía, role: supervisor, teams: [%s], tokens: [%q], password_hash: %q}\n",
		strings.Join(d.teams, ", "), inbox.HashToken(d.supervisor.Token), hash)
	fmt.Fprintf(&users, "  - {id: demo, name: Demo Agent, role: agent, teams: [%s], password_hash: %q}\n", strings.Join(d.teams, ", "), hash)
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users.String()), 0o600); err != nil {
		return nil, "", err
	}
	var policy strings.Builder
	for _, p := range demoPolicy {
		fmt.Fprintf(&policy, "    %s: %s\n", p.key, time.Duration(float64(p.d)/speed).Round(time.Millisecond))
	}
	cfg := fmt.Sprintf(`inbox:
  users_file: %q
  teams: [{name: sales}, {name: billing}, {name: support}]
  default_team: sales
  policy:
%s  routing:
    calls:
      - {queue: sales, reason: billing, team: billing}
      - {queue: sales, team: sales}
      - {queue: support, team: support}
    keywords:
      - {team: billing, words: [factura, pago, cuota]}
      - {team: support, words: [error, falla, modem]}
  survey: {template: csat_v1, language: es_AR}
`, filepath.Join(dir, "users.yaml"), policy.String())
	return d, cfg, nil
}

// start creates the simulated agents against the running bridge.
func (d *demoInbox) start(appURL string, wa *whatsapptest.Server, o demoOptions) error {
	d.api = appURL + inboxhttp.Base
	var err error
	d.sim, err = inboxsim.New(inboxsim.Options{BaseURL: d.api, Agents: d.agents, Teams: d.teams, Speed: o.speed, Seed: o.seed,
		Customer: func(ctx context.Context, from, text string) error {
			_, err := wa.SendText(ctx, from, text)
			return err
		},
		ThinkTime: 20 * time.Second, IgnoreRate: 0.15, HandoffRate: 0.15, BounceRate: 0.3, FollowUpRate: 0.4,
		DirectRate: 1, DirectFor: o.duration})
	return err
}

// demoInboxSummary is the inbox's part of the summary.
type demoInboxSummary struct {
	Agents                      inboxsim.Stats
	Today                       inbox.Today
	Created, FromCalls          float64
	Handoffs, PingPongs         float64
	Critical, Escalated, Unasgn float64
	FirstResponse               map[string]time.Duration // by team, simulated time
	Err                         string
}

// collectInbox reads today's dashboard as the supervisor sees it, and the
// inbox's metrics.
func (d *demoInbox) collect(ctx context.Context, app *App, speed float64) demoInboxSummary {
	s := demoInboxSummary{Agents: d.sim.Stats(), FirstResponse: map[string]time.Duration{}}
	if err := d.today(ctx, &s.Today); err != nil {
		s.Err = err.Error()
	}
	// The dashboard's times are the bridge's, in real seconds.
	s.Today.FirstResponse *= speed
	fams, _ := app.reg.Gather()
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			switch f.GetName() {
			case "deflectd_inbox_conversations_total":
				s.Created += v
				if labelValue(m, "origin") == "deflection" {
					s.FromCalls += v
				}
			case "deflectd_inbox_handoffs_total":
				s.Handoffs += v
			case "deflectd_inbox_pingpongs_total":
				s.PingPongs += v
			case "deflectd_inbox_escalations_total":
				if labelValue(m, "level") == "critical" {
					s.Critical += v
				} else {
					s.Escalated += v
				}
			case "deflectd_inbox_unassigned_total":
				s.Unasgn += v
			case "deflectd_inbox_first_response_seconds":
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					mean := h.GetSampleSum() / float64(h.GetSampleCount()) * speed
					s.FirstResponse[labelValue(m, "team")] = time.Duration(mean * float64(time.Second)).Round(time.Second)
				}
			}
		}
	}
	return s
}

func (d *demoInbox) today(ctx context.Context, out *inbox.Today) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", d.api+"today", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.supervisor.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %stoday: %d %s", d.api, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func printInboxSummary(w io.Writer, s demoInboxSummary) {
	a, t := s.Agents, s.Today
	var teams []string
	for team, d := range s.FirstResponse {
		teams = append(teams, fmt.Sprintf("%s %v", team, d))
	}
	slices.Sort(teams)
	var agents []string
	for id, n := range t.Resolved {
		agents = append(agents, fmt.Sprintf("%s %d", id, n))
	}
	slices.Sort(agents)
	fr := "none yet"
	if t.FirstResponseCount > 0 {
		fr = fmt.Sprintf("%v mean over %d answers (%s)", (time.Duration(t.FirstResponse * float64(time.Second))).Round(time.Second),
			t.FirstResponseCount, strings.Join(teams, ", "))
	}
	csat := "no answers yet"
	if t.CSATCount > 0 {
		csat = fmt.Sprintf("%.1f of 5 over %d answers", t.CSAT, t.CSATCount)
	}
	fmt.Fprintf(w, `  inbox chats           %.0f opened (%.0f from calls' messages, %.0f direct); agents took %d (%d lost the race: 409),
                        sent %d replies, handed off %.0f (%.0f ping-pong), resolved %d; customers wrote back %d times
  first response        %s
  pending now           %d, of which %d seen and unanswered (%.0f%%)
  resolved per agent    %s
  policy                %.0f alerts to the owner, %.0f escalations to the supervisor, %.0f back to Unassigned, %d lost
  survey (CSAT)         %s
`, s.Created, s.FromCalls, s.Created-s.FromCalls, a.Claims, a.Conflicts, a.Replies, s.Handoffs, s.PingPongs, a.Resolved, a.FollowUps,
		fr, t.Pending, t.SeenUnanswered, t.SeenPercent, orNone(strings.Join(agents, ", ")), s.Critical, s.Escalated, s.Unasgn, t.Lost, csat)
	if a.Errors > 0 {
		fmt.Fprintf(w, "  inbox API errors      %d, the last: %s\n", a.Errors, a.LastError)
	}
	if s.Err != "" {
		fmt.Fprintf(w, "  inbox dashboard       %s\n", s.Err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
