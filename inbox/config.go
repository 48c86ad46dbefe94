package inbox

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Config is the inbox section of deflectd's configuration file (the
// "inbox:" key of deflectd.yaml; docs/inbox.md describes every key). The
// people, their roles and passwords are in a separate users file
// (UsersFile), so that the config can be shared without secrets.
type Config struct {
	// UsersFile lists agents and supervisors (see ParseUsers); relative to
	// the config file.
	UsersFile string `yaml:"users_file"`
	// Teams are the teams chats are routed to. Each has its own
	// Unassigned view and may have business hours and its own policy.
	Teams []TeamConfig `yaml:"teams"`
	// DefaultTeam receives chats that no rule routes. Default: the first
	// team.
	DefaultTeam string `yaml:"default_team"`
	// Policy is the "seen and unanswered" policy of every team, which a
	// team's own Policy overrides key by key.
	Policy PolicyConfig `yaml:"policy"`
	// Routing sends new chats to a team.
	Routing RoutingConfig `yaml:"routing"`
	// StickyOwner sends a returning customer's chat back to its last
	// owner when that owner is online, instead of to Unassigned.
	StickyOwner bool `yaml:"sticky_owner"`
	// MarkRead sends WhatsApp read receipts (blue ticks) when an agent
	// opens a chat. Default true.
	MarkRead *bool `yaml:"mark_read"`
	// ContextLookback is how old the deflection message a customer
	// answers may be for its call to travel with the chat. Default 24 h.
	ContextLookback time.Duration `yaml:"context_lookback"`
	// PingPongWindow: a handoff back to where the chat came from within
	// it (A→B→A) is flagged as ping-pong. Default 1 h.
	PingPongWindow time.Duration `yaml:"ping_pong_window"`
	// Survey, when it names a template, sends a CSAT survey after a chat
	// is resolved.
	Survey SurveyConfig `yaml:"survey"`
	// QuickReplies are canned replies offered in the reply box.
	// Default: the recommended first message.
	QuickReplies []QuickReplyConfig `yaml:"quick_replies"`
}

// TeamConfig is one team.
type TeamConfig struct {
	Name string `yaml:"name"`
	// BusinessHours names a time interval of the rules file
	// (time_intervals): the policy's clocks count only time inside it.
	// Empty: every hour counts.
	BusinessHours string       `yaml:"business_hours"`
	Policy        PolicyConfig `yaml:"policy"`
}

// PolicyConfig is a policy as written: unset keys inherit.
type PolicyConfig struct {
	CriticalAfter *time.Duration `yaml:"critical_after"`
	EscalateAfter *time.Duration `yaml:"escalate_after"`
	OnEscalate    string         `yaml:"on_escalate"`
	ClaimTimeout  *time.Duration `yaml:"claim_timeout"`
	WindowMargin  *time.Duration `yaml:"window_margin"`
	LostAfter     *time.Duration `yaml:"lost_after"`
	OfflineGrace  *time.Duration `yaml:"offline_grace"`
	// Priorities override the policy for chats of one priority (high
	// chats may turn critical sooner).
	Priorities map[Priority]*PolicyConfig `yaml:"priorities"`
}

// RoutingConfig routes a new chat: by the call it came from, then by
// keywords of the customer's first message, then to the default team.
type RoutingConfig struct {
	Calls    []CallRoute    `yaml:"calls"`
	Keywords []KeywordRoute `yaml:"keywords"`
}

// CallRoute maps a deflected call's queue and reason to a team; an empty
// queue or reason matches any. The first match wins.
type CallRoute struct {
	Queue  string `yaml:"queue"`
	Reason string `yaml:"reason"`
	Team   string `yaml:"team"`
}

// KeywordRoute sends a chat whose first message contains one of Words
// (ignoring case and accents, as whole words) to Team.
type KeywordRoute struct {
	Team  string   `yaml:"team"`
	Words []string `yaml:"words"`
}

// SurveyConfig is the post-chat CSAT survey: a template whose quick-reply
// buttons carry the scores. Its button payloads must be "{{.Payload}}:1"
// to "{{.Payload}}:5" in the template catalog.
type SurveyConfig struct {
	Template string `yaml:"template"`
	Language string `yaml:"language"`
}

// QuickReplyConfig is a canned reply. Text is a Go text/template over
// QuickReplyData.
type QuickReplyConfig struct {
	ID    string `yaml:"id"`
	Title string `yaml:"title"`
	Text  string `yaml:"text"`
}

// QuickReplyData is what a quick reply's text can use.
type QuickReplyData struct {
	// Name is the first word of the customer's profile name ("" when
	// unknown): a greeting uses the first name.
	Name string
	// Agent is the replying agent's first name, Team the chat's team.
	Agent, Team string
	// Queue, Option and Reason come from the call, when there was one.
	Queue, Option, Reason string
	// WaitedMinutes is how long they waited on the phone; EWTMinutes the
	// estimated wait they were told.
	WaitedMinutes, EWTMinutes int
	// ReplyMinutes is the team's critical threshold in minutes: the time
	// within which an agent answers, for "we'll answer within N minutes".
	ReplyMinutes int
}

// DefaultQuickReplies returns the recommended first message: a
// confirmation, an estimated time and the next question.
func DefaultQuickReplies() []QuickReplyConfig {
	return []QuickReplyConfig{
		{ID: "first", Title: "Primer mensaje",
			Text: "Hola{{if .Name}} {{.Name}}{{end}}, soy {{.Agent}}. Recibimos tu consulta{{if .Reason}} sobre {{.Reason}}{{end}} y la seguimos por acá: te respondo en menos de {{.ReplyMinutes}} minutos. ¿Me contás en qué te puedo ayudar?"},
		{ID: "first_en", Title: "First message",
			Text: "Hi{{if .Name}} {{.Name}}{{end}}, I'm {{.Agent}}. We got your request{{if .Reason}} about {{.Reason}}{{end}} and will continue here: I'll answer within {{.ReplyMinutes}} minutes. How can I help?"},
	}
}

// Default policy values, from our users' operating model.
const (
	DefaultCriticalAfter   = 5 * time.Minute
	DefaultEscalateAfter   = 15 * time.Minute
	DefaultClaimTimeout    = 10 * time.Minute
	DefaultWindowMargin    = 2 * time.Hour
	DefaultLostAfter       = time.Hour
	DefaultOfflineGrace    = time.Minute
	DefaultContextLookback = 24 * time.Hour
	DefaultPingPongWindow  = time.Hour
)

// markRead returns the effective MarkRead.
func (c *Config) markRead() bool { return c.MarkRead == nil || *c.MarkRead }

// Validate checks the config on its own; CheckReferences checks its
// references to the rules file and the template catalog. Errors name the
// key, e.g. "inbox.teams[1].policy.critical_after".
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("inbox.%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if len(c.Teams) == 0 {
		bad("teams", "at least one team is required")
	}
	seen := map[string]int{}
	for i, t := range c.Teams {
		f := fmt.Sprintf("teams[%d]", i)
		switch j, dup := seen[t.Name]; {
		case !validName(t.Name):
			bad(f+".name", "%q: want letters, digits, '-', '_' or '.'", t.Name)
		case dup:
			bad(f+".name", "%q already names teams[%d]", t.Name, j)
		default:
			seen[t.Name] = i
		}
		checkPolicy(bad, f+".policy", &t.Policy, true)
	}
	team := func(field, name string) {
		if _, ok := seen[name]; !ok {
			bad(field, "%q is not a team (teams: %s)", name, strings.Join(c.TeamNames(), ", "))
		}
	}
	if c.DefaultTeam != "" {
		team("default_team", c.DefaultTeam)
	}
	checkPolicy(bad, "policy", &c.Policy, true)
	for i, r := range c.Routing.Calls {
		f := fmt.Sprintf("routing.calls[%d]", i)
		team(f+".team", r.Team)
		if r.Queue == "" && r.Reason == "" && i < len(c.Routing.Calls)-1 {
			bad(f, "matches every call, so the routes after it never apply")
		}
	}
	for i, r := range c.Routing.Keywords {
		f := fmt.Sprintf("routing.keywords[%d]", i)
		team(f+".team", r.Team)
		if len(r.Words) == 0 {
			bad(f+".words", "at least one word is required")
		}
		for j, w := range r.Words {
			if fold(w) == "" {
				bad(fmt.Sprintf("%s.words[%d]", f, j), "%q has no letters or digits", w)
			}
		}
	}
	for name, d := range map[string]time.Duration{"context_lookback": c.ContextLookback, "ping_pong_window": c.PingPongWindow} {
		if d < 0 {
			bad(name, "%v: must not be negative", d)
		}
	}
	if (c.Survey.Template == "") != (c.Survey.Language == "") {
		bad("survey", "template and language go together")
	}
	ids := map[string]bool{}
	for i, q := range c.QuickReplies {
		f := fmt.Sprintf("quick_replies[%d]", i)
		if !validName(q.ID) || ids[q.ID] {
			bad(f+".id", "%q: want a unique name of letters, digits, '-', '_' or '.'", q.ID)
		}
		ids[q.ID] = true
		if strings.TrimSpace(q.Text) == "" {
			bad(f+".text", "required")
		} else if _, err := parseQuickReply(q); err != nil {
			bad(f+".text", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func checkPolicy(bad func(string, string, ...any), field string, p *PolicyConfig, top bool) {
	for name, d := range map[string]*time.Duration{"critical_after": p.CriticalAfter, "escalate_after": p.EscalateAfter,
		"claim_timeout": p.ClaimTimeout, "window_margin": p.WindowMargin, "lost_after": p.LostAfter, "offline_grace": p.OfflineGrace} {
		if d != nil && *d < 0 {
			bad(field+"."+name, "%v: must not be negative", *d)
		}
	}
	if d := p.WindowMargin; d != nil && *d >= ServiceWindow {
		bad(field+".window_margin", "%v: must be shorter than the 24 h window", *d)
	}
	if p.CriticalAfter != nil && p.EscalateAfter != nil && *p.EscalateAfter > 0 && *p.CriticalAfter > *p.EscalateAfter {
		bad(field, "critical_after %v is after escalate_after %v", *p.CriticalAfter, *p.EscalateAfter)
	}
	switch p.OnEscalate {
	case "", EscalateNotify, EscalateUnassign:
	default:
		bad(field+".on_escalate", "%q: want notify or unassign", p.OnEscalate)
	}
	for pr, sub := range p.Priorities {
		f := field + ".priorities." + string(pr)
		if !pr.valid() {
			bad(f, "want high, medium or low")
		}
		if sub == nil {
			continue
		}
		if !top || len(sub.Priorities) > 0 {
			bad(f+".priorities", "priorities do not nest")
		}
		checkPolicy(bad, f, sub, false)
	}
}

// CheckReferences checks what the config names elsewhere: business hours
// must be time intervals of the rules file, and the survey template must
// be in the catalog.
func (c *Config) CheckReferences(interval func(name string) bool, template func(name string) bool) error {
	var errs []error
	for i, t := range c.Teams {
		if t.BusinessHours != "" && !interval(t.BusinessHours) {
			errs = append(errs, fmt.Errorf("inbox.teams[%d].business_hours: %q is not a time interval of the rules file", i, t.BusinessHours))
		}
	}
	if c.Survey.Template != "" && !template(c.Survey.Template) {
		errs = append(errs, fmt.Errorf("inbox.survey.template: %q is not in the template catalog", c.Survey.Template))
	}
	return errors.Join(errs...)
}

// TeamNames returns the teams' names in config order.
func (c *Config) TeamNames() []string {
	out := make([]string, 0, len(c.Teams))
	for _, t := range c.Teams {
		out = append(out, t.Name)
	}
	return out
}

func (c *Config) team(name string) *TeamConfig {
	for i := range c.Teams {
		if c.Teams[i].Name == name {
			return &c.Teams[i]
		}
	}
	return nil
}

func (c *Config) defaultTeam() string {
	if c.DefaultTeam != "" {
		return c.DefaultTeam
	}
	if len(c.Teams) > 0 {
		return c.Teams[0].Name
	}
	return ""
}

// policy resolves the policy of a team and priority: the defaults, then the
// config's policy, its priority override, the team's policy and the team's
// priority override, each key by key.
func (c *Config) policy(team string, pr Priority, hours Hours) Policy {
	p := Policy{CriticalAfter: DefaultCriticalAfter, EscalateAfter: DefaultEscalateAfter, OnEscalate: EscalateNotify,
		ClaimTimeout: DefaultClaimTimeout, WindowMargin: DefaultWindowMargin, LostAfter: DefaultLostAfter,
		OfflineGrace: DefaultOfflineGrace, Hours: hours}
	layers := []*PolicyConfig{&c.Policy, c.Policy.Priorities[pr]}
	if t := c.team(team); t != nil {
		layers = append(layers, &t.Policy, t.Policy.Priorities[pr])
	}
	for _, l := range layers {
		if l == nil {
			continue
		}
		set := func(dst *time.Duration, src *time.Duration) {
			if src != nil {
				*dst = *src
			}
		}
		set(&p.CriticalAfter, l.CriticalAfter)
		set(&p.EscalateAfter, l.EscalateAfter)
		set(&p.ClaimTimeout, l.ClaimTimeout)
		set(&p.WindowMargin, l.WindowMargin)
		set(&p.LostAfter, l.LostAfter)
		set(&p.OfflineGrace, l.OfflineGrace)
		if l.OnEscalate != "" {
			p.OnEscalate = l.OnEscalate
		}
	}
	return p
}

func (c *Config) quickReplies() []QuickReplyConfig {
	if len(c.QuickReplies) == 0 {
		return DefaultQuickReplies()
	}
	return c.QuickReplies
}

func parseQuickReply(q QuickReplyConfig) (*template.Template, error) {
	t, err := template.New(q.ID).Option("missingkey=error").Parse(q.Text)
	if err != nil {
		return nil, err
	}
	// Execute once over zero data, so that a misspelt field is caught
	// when the config loads, not when an agent clicks.
	var b strings.Builder
	if err := t.Execute(&b, QuickReplyData{}); err != nil {
		return nil, err
	}
	return t, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Route picks a new chat's team: the first call route matching the call it
// came from, else the first keyword route whose word is in its first text,
// else the default team. rule says which ("call", "keyword", "default").
func (c *Config) Route(ctx *Context, text string) (team, rule string) {
	if ctx != nil {
		for _, r := range c.Routing.Calls {
			if (r.Queue == "" || r.Queue == ctx.Queue) && (r.Reason == "" || r.Reason == ctx.Reason) {
				return r.Team, "call"
			}
		}
	}
	if words := strings.Fields(fold(text)); len(words) > 0 {
		for _, r := range c.Routing.Keywords {
			for _, w := range r.Words {
				if containsWords(words, strings.Fields(fold(w))) {
					return r.Team, "keyword"
				}
			}
		}
	}
	return c.defaultTeam(), "default"
}

// containsWords reports whether the folded words of a message contain the
// phrase as consecutive whole words.
func containsWords(words, phrase []string) bool {
	if len(phrase) == 0 {
		return false
	}
	for i := 0; i+len(phrase) <= len(words); i++ {
		if slices.Equal(words[i:i+len(phrase)], phrase) {
			return true
		}
	}
	return false
}
