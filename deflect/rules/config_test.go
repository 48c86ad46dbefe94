package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// configErrors returns err's *ConfigErrors, failing on anything else.
func configErrors(t *testing.T, err error) []*ConfigError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*ConfigError
	for _, e := range errs {
		ce, ok := e.(*ConfigError)
		if !ok {
			t.Fatalf("error %v (%T) is not a *ConfigError", e, e)
		}
		out = append(out, ce)
	}
	return out
}

// want is an expected *ConfigError whose Reason contains reason.
type want struct {
	line         int
	route, field string
	reason       string
}

func TestLoadErrors(t *testing.T) {
	const ti = "time_intervals:\n  - name: hours\n    time_intervals:\n      - " // line 4 continues
	tests := []struct {
		name string
		yaml string
		want []want
	}{
		// Decoding.
		{"unknown top-level key", "rout:\n  action: none\n",
			[]want{{1, "", "", `unknown key "rout" at the top level`}, {1, "", "route", "required"}}},
		{"unknown route key", "route:\n  routes:\n    - name: a\n      templat: x_v1\n",
			[]want{{4, "", "", `unknown key "templat" in a route`}}},
		{"unknown time interval key", ti + "weekday: [monday]\nroute: {}\n",
			[]want{{4, "", "", `unknown key "weekday" in a time interval`}}},
		{"unknown times key", ti + "times: [{start: '09:00', end_time: '10:00'}]\nroute: {}\n",
			[]want{{4, "", "", `unknown key "start" in times`}, {4, "", "time_intervals[0].time_intervals[0].times[0].start_time", `"": want HH:MM`}}},
		{"not a number", "route:\n  max_offers: two\n", []want{{2, "root", "max_offers", `"two": want a whole number`}}},
		{"not a boolean", "route:\n  recover: maybe\n", []want{{2, "root", "recover", `"maybe": want true or false`}}},
		{"not a string", "route:\n  routes:\n    - action: [offer]\n", []want{{3, "root/0", "action", "want a string"}}},
		{"wrong type", "route:\n  routes: every\n", []want{{2, "", "", "cannot unmarshal !!str `every` into []*rules.routeConfig"}}},
		{"duplicate key", "route:\n  action: none\n  action: offer\n", []want{{3, "", "", `mapping key "action" already defined at line 2`}}},

		// Durations.
		{"bad duration", "route:\n  sla: 5x\n", []want{{2, "root", "sla", `"5x": want a duration with a unit`}}},
		{"duration without unit", "route:\n  reoffer_every: 60\n", []want{{2, "root", "reoffer_every", `"60": want a duration with a unit`}}},
		{"negative duration", "route:\n  routes:\n    - short_abandon: -5s\n", []want{{3, "root/0", "short_abandon", "-5s: must not be negative"}}},
		{"duration not a scalar", "route:\n  routes:\n    - min_wait: [1s]\n", []want{{3, "root/0", "min_wait", "want a duration such as 90s"}}},
		{"zero offer_timeout", "route:\n  offer_timeout: 0s\n", []want{{2, "root", "offer_timeout", "must be more than 0"}}},

		// Matchers.
		{"invalid regex", "route:\n  routes:\n    - matchers: ['queue=~\"(\"']\n",
			[]want{{3, "root/0", "matchers[0]", "invalid regular expression"}}},
		{"invalid label name", "route:\n  routes:\n    - matchers: ['que-ue=\"x\"']\n",
			[]want{{3, "root/0", "matchers[0]", `invalid label name "que-ue"`}}},
		{"unknown label", "route:\n  routes:\n    - matchers: ['caller=\"x\"']\n",
			[]want{{3, "root/0", "matchers[0]", `unknown label "caller": want queue, option, reason or language`}}},
		{"no operator", "route:\n  routes:\n    - matchers:\n        - queue\n",
			[]want{{4, "root/0", "matchers[0]", "want label, operator and value"}}},
		{"bad quoted value", "route:\n  routes:\n    - matchers: ['queue=\"sales']\n",
			[]want{{3, "root/0", "matchers[0]", "not a valid double-quoted string"}}},
		{"every bad matcher", "route:\n  routes:\n    - matchers:\n        - 'queue~\"x\"'\n        - 'reason=~\"[\"'\n",
			[]want{{4, "root/0", "matchers[0]", "want =, !=, =~ or !~"}, {5, "root/0", "matchers[1]", "invalid regular expression"}}},

		// Time intervals and references to them.
		{"unknown time interval", "route:\n  routes:\n    - active_time_intervals: [nope]\n      mute_time_intervals: [hours, nada]\n",
			[]want{{3, "root/0", "active_time_intervals[0]", `unknown time interval "nope"`},
				{4, "root/0", "mute_time_intervals[0]", `unknown time interval "hours"`},
				{4, "root/0", "mute_time_intervals[1]", `unknown time interval "nada"`}}},
		{"time interval without name", "time_intervals:\n  - time_intervals: []\nroute: {}\n",
			[]want{{2, "", "time_intervals[0].name", "required"}}},
		{"duplicate time interval", "time_intervals:\n  - name: a\n  - name: a\nroute: {}\n",
			[]want{{3, "", "time_intervals[1].name", `"a" already names time_intervals[0]`}}},
		{"bad weekday", ti + "weekdays: [mondey]\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].weekdays[0]", `"mondey": want a weekday name`}}},
		{"reversed weekdays", ti + "weekdays: ['saturday:sunday']\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].weekdays[0]", "the week starts on sunday"}}},
		{"bad time", ti + "times: [{start_time: '9:00', end_time: '25:00'}]\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].times[0].start_time", `"9:00": want HH:MM`},
				{4, "", "time_intervals[0].time_intervals[0].times[0].end_time", `"25:00": want HH:MM`}}},
		{"start after end", ti + "times:\n          - start_time: '22:00'\n            end_time: '06:00'\nroute: {}\n",
			[]want{{5, "", "time_intervals[0].time_intervals[0].times[0]", "start_time 22:00 is not before end_time 06:00"}}},
		{"bad days of month", ti + "days_of_month: ['0', '-1:1', '1:40']\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].days_of_month[0]", `"0": want a day`},
				{4, "", "time_intervals[0].time_intervals[0].days_of_month[1]", "ends before it begins"},
				{4, "", "time_intervals[0].time_intervals[0].days_of_month[2]", `"40": want a day`}}},
		{"bad months", ti + "months: ['13', 'march:january', 'jan']\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].months[0]", `"13": want a month`},
				{4, "", "time_intervals[0].time_intervals[0].months[1]", "ends before it begins"},
				{4, "", "time_intervals[0].time_intervals[0].months[2]", `"jan": want a month`}}},
		{"bad years", ti + "years: ['twenty', '2026:2025']\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].years[0]", `"twenty": want a year`},
				{4, "", "time_intervals[0].time_intervals[0].years[1]", "ends before it begins"}}},
		{"bad location", ti + "location: Mars/Olympus_Mons\nroute: {}\n",
			[]want{{4, "", "time_intervals[0].time_intervals[0].location", "unknown time zone Mars/Olympus_Mons"}}},

		// Routes.
		{"no route", "time_intervals: []\n", []want{{1, "", "route", "required"}}},
		{"empty route", "route:\n  routes:\n    - ~\n", []want{{3, "root", "routes[0]", "empty route"}}},
		{"duplicate route names", "route:\n  routes:\n    - name: a\n      routes:\n        - name: b\n    - name: b\n",
			[]want{{6, "root/b", "name", `"b" already names an earlier route (root/a/b)`}}},
		{"bad route names", "route:\n  routes:\n    - name: a/b\n    - name: '7'\n",
			[]want{{3, "root/a/b", "name", `"a/b": want letters`}, {4, "root/7", "name", `"7": want letters`}}},
		{"bad template name", "route:\n  routes:\n    - {action: perform, template: Order Status}\n",
			[]want{{3, "root/0", "template", `"Order Status": want a WhatsApp template name`}}},
		{"unknown action", "route:\n  action: deflect\n", []want{{2, "root", "action", `"deflect": want offer, perform or none`}}},
		{"recover is not an action", "route:\n  action: recover\n", []want{{2, "root", "action", "set recover: true"}}},
		{"max_offers 0", "route:\n  routes:\n    - {action: offer, template: t_v1, sla: 1m, max_offers: 0}\n",
			[]want{{3, "root/0", "max_offers", "0: want at least 1"}}},
		{"max_offers negative", "route:\n  max_offers: -1\n", []want{{2, "root", "max_offers", "-1: want at least 1"}}},
		{"min_position negative", "route:\n  routes:\n    - min_position: -2\n", []want{{3, "root/0", "min_position", "-2: must not be negative"}}},
		{"root conditions", "route:\n  matchers: ['queue=\"a\"']\n  continue: true\n  min_position: 1\n  min_ewt: 1s\n  min_wait: 1s\n" +
			"  active_time_intervals: []\n  mute_time_intervals: []\n",
			[]want{{2, "root", "matchers", "not allowed on the root route"}, {3, "root", "continue", "not allowed on the root route"},
				{4, "root", "min_position", "not allowed"}, {5, "root", "min_ewt", "not allowed"}, {6, "root", "min_wait", "not allowed"}}},

		// What an action needs, after inheritance.
		{"offer without template", "route:\n  routes:\n    - name: a\n      action: offer\n      sla: 1m\n",
			[]want{{4, "root/a", "template", "an offer route needs a template"}}},
		{"offer that never fires", "route:\n  routes:\n    - name: a\n      action: offer\n      template: t_v1\n",
			[]want{{4, "root/a", "sla", "never offers without sla or offer_at_entry_ewt_above"}}},
		{"offer with zero triggers", "route:\n  routes:\n    - {name: a, action: offer, template: t_v1, sla: 0s, offer_at_entry_ewt_above: 0s}\n",
			[]want{{3, "root/a", "sla", "never offers"}}},
		{"perform without template", "route:\n  routes:\n    - name: a\n      action: perform\n",
			[]want{{4, "root/a", "template", "a perform route needs a template"}}},
		{"recover without template", "route:\n  recover: true\n", []want{{2, "root", "recover_template", "recover: true needs a recover_template"}}},
		{"inherited problem reported once", "route:\n  routes:\n    - name: a\n      action: perform\n      routes:\n        - name: b\n          matchers: ['queue=\"x\"']\n",
			[]want{{4, "root/a", "template", "a perform route needs a template"}}},
		{"a child that sets a key involved is reported too", "route:\n  routes:\n    - name: a\n      action: perform\n      routes:\n        - name: b\n          action: offer\n          sla: 1m\n",
			[]want{{4, "root/a", "template", "perform route needs a template"}, {7, "root/a/b", "template", "offer route needs a template"}}},
		{"a child that inherits the fix is fine", "route:\n  routes:\n    - name: a\n      action: perform\n      template: t_v1\n      routes:\n        - name: b\n          action: offer\n",
			[]want{{8, "root/a/b", "sla", "never offers"}}},
		{"unknown key and what it leaves missing", "route:\n  routes:\n    - action: offer\n      templat: t_v1\n      sla: 1m\n",
			[]want{{3, "root/0", "template", "an offer route needs a template"}, {4, "", "", `unknown key "templat" in a route`}}},
		{"a bad value is not also missing", "route:\n  routes:\n    - action: offer\n      template: t_v1\n      sla: 90\n",
			[]want{{5, "root/0", "sla", `"90": want a duration with a unit`}}},
		{"a bad action is not also incomplete", "route:\n  routes:\n    - action: ofer\n",
			[]want{{3, "root/0", "action", `"ofer": want offer, perform or none`}}},
		{"in file order", "route:\n  routes:\n    - name: a\n      sla: x\n    - name: a\n      bad: 1\n",
			[]want{{4, "root/a", "sla", `"x"`}, {5, "root/a", "name", `"a" already names an earlier route (root/a)`}, {6, "", "", `unknown key "bad"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("Load(%q) = %v, nil, want errors", tt.yaml, r)
			}
			if r != nil {
				t.Errorf("Load(%q) returned rules and an error", tt.yaml)
			}
			var got []want
			for _, e := range configErrors(t, err) {
				got = append(got, want{e.Line, e.Route, e.Field, e.Reason})
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				g, w := got[i], tt.want[i]
				ok = g.line == w.line && g.route == w.route && g.field == w.field && strings.Contains(g.reason, w.reason)
			}
			if !ok {
				t.Errorf("Load(%q) = %v\nwant errors like %+v", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestLoadFailures(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty file", "", "rules: empty file"},
		{"comment only", "# nothing\n", "rules: empty file"},
		{"two documents", "route: {}\n---\nroute: {}\n", "rules: more than one YAML document"},
		{"not YAML", "route: [\n", "rules: yaml: line"},
		{"too large", "route: {}\n" + strings.Repeat("#", maxFileSize), "rules: larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.yaml))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Load(%.40q) = %v, want an error starting %q", tt.yaml, err, tt.want)
			}
		})
	}
	if _, err := LoadFile("testdata/no-such-file.yaml"); err == nil || !strings.HasPrefix(err.Error(), "rules: open ") {
		t.Errorf("LoadFile(missing) = %v, want rules: open ...", err)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"empty root", "route: {}\n"},
		{"null keys inherit", "route:\n  action: ~\n  sla: ~\n"},
		{"end of day", "time_intervals:\n  - name: late\n    time_intervals: [{times: [{start_time: '22:00', end_time: '24:00'}]}]\nroute: {}\n"},
		{"empty interval list", "time_intervals:\n  - name: never\n    time_intervals: []\nroute: {routes: [{mute_time_intervals: [never]}]}\n"},
		{"numbers and names", "time_intervals:\n  - name: q1\n    time_intervals:\n      - {months: ['1:3'], years: [2026], days_of_month: ['1:-1', -1], weekdays: [Sunday, 'MONDAY:friday']}\nroute: {}\n"},
		{"unquoted matcher value", "route:\n  routes:\n    - matchers: ['queue = sales', 'reason!=', 'language!~en.*']\n"},
		{"anchors and merge keys", "route:\n  routes:\n    - &offer {action: offer, template: t_v1, sla: 1m, matchers: ['queue=\"a\"']}\n" +
			"    - <<: *offer\n      matchers: ['queue=\"b\"']\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(strings.NewReader(tt.yaml)); err != nil {
				t.Errorf("Load(%q) = %v, want nil", tt.yaml, err)
			}
		})
	}
}

// Every problem is reported at once, so one round of edits fixes a file.
func TestLoadReportsEveryError(t *testing.T) {
	yaml := `time_intervals:
  - name: hours
    time_intervals: [{weekdays: [funday]}]
route:
  sla: 1x
  routes:
    - name: a
      action: offer
      matchers: ['queue=~"("']
      active_time_intervals: [nope]
    - name: a
      max_offers: 0
`
	_, err := Load(strings.NewReader(yaml))
	var got []string
	for _, e := range configErrors(t, err) {
		got = append(got, fmt.Sprintf("%d %s %s", e.Line, e.Route, e.Field))
	}
	want := []string{
		"3  time_intervals[0].time_intervals[0].weekdays[0]",
		"5 root sla",
		"8 root/a template",
		"8 root/a sla",
		"9 root/a matchers[0]",
		"10 root/a active_time_intervals[0]",
		"11 root/a name",
		"12 root/a max_offers",
	}
	if !cmp.Equal(got, want) {
		t.Errorf("Load(many problems) errors = %q, want %q\n%v", got, want, err)
	}
	if !errors.As(err, new(*ConfigError)) {
		t.Errorf("errors.As(Load(...), *ConfigError) = false, want true")
	}
}

func TestConfigErrorString(t *testing.T) {
	tests := []struct {
		err  *ConfigError
		want string
	}{
		{&ConfigError{Line: 12, Route: "root/sales", Field: "sla", Reason: "-5s: must not be negative"},
			"rules: line 12: route root/sales: sla: -5s: must not be negative"},
		{&ConfigError{Line: 3, Field: "time_intervals[0].name", Reason: "required"}, "rules: line 3: time_intervals[0].name: required"},
		{&ConfigError{Reason: "something"}, "rules: something"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error(%+v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// Loading validates, but the values it keeps are what the file says.
func TestLoadSettings(t *testing.T) {
	r := mustLoad(t, "route:\n  routes:\n    - name: a\n      action: offer\n      template: t_v1\n      sla: 1m30s\n      offer_timeout: 5s\n      max_offers: 4\n      reoffer_every: 45s\n      short_abandon: 3s\n")
	a := r.root.children[0]
	got := a.settings
	want := settings{action: ActionOffer, template: "t_v1", sla: 90 * time.Second, offerTimeout: 5 * time.Second,
		maxOffers: 4, reoffer: 45 * time.Second, shortAbandon: 3 * time.Second}
	if got != want {
		t.Errorf("Load(...) route a settings = %+v, want %+v", got, want)
	}
	if got, want := r.root.settings, defaultSettings; got != want {
		t.Errorf("Load(...) root settings = %+v, want the defaults %+v", got, want)
	}
}
