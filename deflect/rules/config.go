package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ConfigError is one problem in a rules file. Load reports every problem
// it finds, each a *ConfigError, joined with errors.Join.
type ConfigError struct {
	// Line is the 1-based line of the problem in the file; 0 if unknown.
	Line int
	// Route is the path of the route concerned, empty if none.
	Route string
	// Field is the key concerned, such as "sla", "matchers[1]" or
	// "time_intervals[0].time_intervals[1].weekdays[0]"; empty if none.
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns, e.g., "rules: line 12: route root/sales: sla: -5s: must not be negative".
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("rules: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Route != "" {
		b.WriteString("route " + e.Route + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// file is the YAML file's shape.
type file struct {
	TimeIntervals []timeIntervalConfig `yaml:"time_intervals"`
	Route         *routeConfig         `yaml:"route"`
}

type timeIntervalConfig struct {
	Name          string             `yaml:"name"`
	TimeIntervals []timeIntervalSpec `yaml:"time_intervals"`
}

type timeIntervalSpec struct {
	Times       []timeRangeConfig `yaml:"times"`
	Weekdays    []string          `yaml:"weekdays"`
	DaysOfMonth []string          `yaml:"days_of_month"`
	Months      []string          `yaml:"months"`
	Years       []string          `yaml:"years"`
	Location    string            `yaml:"location"`
}

type timeRangeConfig struct {
	StartTime string `yaml:"start_time"`
	EndTime   string `yaml:"end_time"`
}

// routeConfig is one route as written. Pointer fields are the inherited
// ones: nil means "as the parent".
type routeConfig struct {
	Name     string   `yaml:"name"`
	Matchers []string `yaml:"matchers"`
	Continue bool     `yaml:"continue"`

	Action               *scalar[string] `yaml:"action"`
	Template             *scalar[string] `yaml:"template"`
	SLA                  *duration       `yaml:"sla"`
	OfferAtEntryEWTAbove *duration       `yaml:"offer_at_entry_ewt_above"`
	ReofferEvery         *duration       `yaml:"reoffer_every"`
	MaxOffers            *scalar[int]    `yaml:"max_offers"`
	OfferTimeout         *duration       `yaml:"offer_timeout"`
	ShortAbandon         *duration       `yaml:"short_abandon"`
	Recover              *scalar[bool]   `yaml:"recover"`
	RecoverTemplate      *scalar[string] `yaml:"recover_template"`

	MinPosition         *scalar[int] `yaml:"min_position"`
	MinEWT              *duration    `yaml:"min_ewt"`
	MinWait             *duration    `yaml:"min_wait"`
	ActiveTimeIntervals []string     `yaml:"active_time_intervals"`
	MuteTimeIntervals   []string     `yaml:"mute_time_intervals"`

	Routes []*routeConfig `yaml:"routes"`
}

// duration is a Go duration ("90s", "1m30s") in YAML. A bad value is kept
// as an error for validation to report with its route and key, so that it
// does not also leave the field unset and cause a second, misleading
// error.
type duration struct {
	d   time.Duration
	err error
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		d.err = errors.New("want a duration such as 90s or 2m")
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		d.err = fmt.Errorf("%q: want a duration with a unit, such as 90s or 2m", n.Value)
	case v < 0:
		d.err = fmt.Errorf("%s: must not be negative", n.Value)
	}
	d.d = v
	return nil
}

// scalar is a string, number or boolean in YAML. As with duration, a
// value of the wrong type is kept as an error for validation, so that it
// does not leave a zero value behind to cause a second error.
type scalar[T string | int | bool] struct {
	v   T
	err error
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *scalar[T]) UnmarshalYAML(n *yaml.Node) error {
	var want string
	switch any(s.v).(type) {
	case int:
		want = "want a whole number"
	case bool:
		want = "want true or false"
	default:
		want = "want a string"
	}
	if n.Kind != yaml.ScalarNode || n.Decode(&s.v) != nil {
		if n.Kind == yaml.ScalarNode {
			want = fmt.Sprintf("%q: %s", n.Value, want)
		}
		s.err = errors.New(want)
	}
	return nil
}

// maxFileSize bounds what Load reads; a real rules file is a few KiB.
const maxFileSize = 1 << 20

// LoadFile reads rules from a YAML file; see Load.
func LoadFile(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	defer f.Close()
	return Load(f)
}

// Load reads rules from YAML (docs/rules.md describes the file). Decoding
// is strict: unknown keys, duplicate keys and wrong types are errors. The
// rules are then validated: durations, matchers, time intervals and the
// names they refer to, route names, and what each route needs for its
// action once inherited settings are applied. Every problem is reported, a
// *ConfigError with its line, joined with errors.Join; a file with any
// problem gives no Rules.
func Load(r io.Reader) (*Rules, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("rules: larger than %d bytes", maxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f file
	var errs []error // all *ConfigError
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("rules: empty file")
		case errors.As(err, &te):
			for _, msg := range te.Errors {
				errs = append(errs, decodeError(msg))
			}
		default:
			return nil, fmt.Errorf("rules: %w", err)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("rules: more than one YAML document")
	}
	v := &validator{}
	rules := v.compile(&f)
	if len(v.errs) > 0 {
		// Parsed a second time, only now, for the lines of the errors:
		// decoding from a yaml.Node would lose KnownFields.
		var root yaml.Node
		_ = yaml.Unmarshal(data, &root)
		for _, e := range v.errs {
			e.Line = lineOf(&root, e.path)
			errs = append(errs, e.ConfigError)
		}
	}
	if len(errs) > 0 {
		// In file order, those without a line last.
		slices.SortStableFunc(errs, func(a, b error) int {
			la, lb := a.(*ConfigError).Line, b.(*ConfigError).Line
			if la == 0 || lb == 0 {
				return lb - la // 0 sorts after any line
			}
			return la - lb
		})
		return nil, errors.Join(errs...)
	}
	return rules, nil
}

var (
	decodeLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownKeyRE = regexp.MustCompile(`^field (.*) not found in type rules\.(\w+)$`)
	typeNames    = map[string]string{
		"file":               "at the top level",
		"routeConfig":        "in a route",
		"timeIntervalConfig": "in a time_intervals entry",
		"timeIntervalSpec":   "in a time interval",
		"timeRangeConfig":    "in times",
	}
)

// decodeError turns one of yaml's "line N: ..." messages into a
// *ConfigError, naming an unknown key in the file's terms rather than Go's.
func decodeError(msg string) *ConfigError {
	e := &ConfigError{Reason: msg}
	if m := decodeLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Reason = m[2]
	}
	if m := unknownKeyRE.FindStringSubmatch(e.Reason); m != nil {
		e.Reason = fmt.Sprintf("unknown key %q", m[1])
		if where, ok := typeNames[m[2]]; ok {
			e.Reason += " " + where
		}
	}
	return e
}

// validator compiles a decoded file and collects its problems.
type validator struct {
	errs      []locatedError
	intervals map[string]*namedInterval
	names     map[string]string // route name → path of the route that has it
	rules     *Rules
	templates map[string]bool
	locations map[string]*time.Location // loaded once per file
}

// path locates a node: keys and sequence indexes from the document root.
type path []any

func (p path) with(elems ...any) path {
	return append(slices.Clone(p), elems...)
}

// locatedError is a validation error and where in the file it is.
type locatedError struct {
	*ConfigError
	path path
}

func (v *validator) fail(p path, route, field, reason string) {
	v.errs = append(v.errs, locatedError{&ConfigError{Route: route, Field: field, Reason: reason}, p})
}

// lineOf returns the line of the node at p, or of its deepest ancestor
// that exists.
func lineOf(root *yaml.Node, p path) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, elem := range p {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch elem := elem.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == elem {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && elem < len(n.Content) {
				next = n.Content[elem]
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

var (
	routeNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	templateNameRE = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
)

func (v *validator) compile(f *file) *Rules {
	v.intervals = make(map[string]*namedInterval)
	v.names = make(map[string]string)
	v.templates = make(map[string]bool)
	v.locations = make(map[string]*time.Location)
	v.rules = &Rules{}
	v.timeIntervals(f.TimeIntervals)
	if f.Route == nil {
		v.fail(path{}, "", "route", "required: the root of the route tree")
		return nil
	}
	v.rules.root = v.route(f.Route, path{"route"}, nil, 0)
	for t := range v.templates {
		v.rules.templates = append(v.rules.templates, t)
	}
	slices.Sort(v.rules.templates)
	v.rules.intervals = v.intervals
	if len(v.errs) > 0 {
		return nil
	}
	return v.rules
}

func (v *validator) timeIntervals(tis []timeIntervalConfig) {
	first := make(map[string]int)
	for i, ti := range tis {
		p := path{"time_intervals", i}
		field := fmt.Sprintf("time_intervals[%d]", i)
		switch j, dup := first[ti.Name]; {
		case ti.Name == "":
			v.fail(p, "", field+".name", "required")
		case dup:
			v.fail(p.with("name"), "", field+".name", fmt.Sprintf("%q already names time_intervals[%d]", ti.Name, j))
		default:
			first[ti.Name] = i
		}
		ni := &namedInterval{name: ti.Name}
		for j, spec := range ti.TimeIntervals {
			sp := p.with("time_intervals", j)
			sf := fmt.Sprintf("%s.time_intervals[%d]", field, j)
			ni.specs = append(ni.specs, v.timeInterval(spec, sp, sf))
		}
		if _, ok := v.intervals[ti.Name]; !ok && ti.Name != "" {
			v.intervals[ti.Name] = ni
		}
	}
}

func (v *validator) timeInterval(spec timeIntervalSpec, p path, field string) timeInterval {
	var ti timeInterval
	for k, tr := range spec.Times {
		kp, kf := p.with("times", k), fmt.Sprintf("%s.times[%d]", field, k)
		begin, err := parseClock(tr.StartTime)
		if err != nil {
			v.fail(kp.with("start_time"), "", kf+".start_time", err.Error())
		}
		end, err2 := parseClock(tr.EndTime)
		if err2 != nil {
			v.fail(kp.with("end_time"), "", kf+".end_time", err2.Error())
		}
		if err == nil && err2 == nil && begin >= end {
			v.fail(kp, "", kf, fmt.Sprintf("start_time %s is not before end_time %s (a range across midnight is two ranges)", tr.StartTime, tr.EndTime))
		}
		ti.times = append(ti.times, intRange{begin, end})
	}
	for _, part := range []struct {
		key    string
		values []string
		parse  func(string) (intRange, error)
		out    *[]intRange
	}{
		{"weekdays", spec.Weekdays, parseWeekdays, &ti.weekdays},
		{"days_of_month", spec.DaysOfMonth, parseDaysOfMonth, &ti.daysOfMonth},
		{"months", spec.Months, parseMonths, &ti.months},
		{"years", spec.Years, parseYears, &ti.years},
	} {
		for k, s := range part.values {
			r, err := part.parse(s)
			if err != nil {
				v.fail(p.with(part.key, k), "", fmt.Sprintf("%s.%s[%d]", field, part.key, k), err.Error())
			}
			*part.out = append(*part.out, r)
		}
	}
	loc, ok := v.locations[spec.Location]
	if !ok {
		var err error
		if loc, err = parseLocation(spec.Location); err != nil {
			v.fail(p.with("location"), "", field+".location", err.Error())
			loc = time.UTC
		} else {
			v.locations[spec.Location] = loc
		}
	}
	ti.loc = loc
	return ti
}

// problem is something a route lacks for its action once settings are
// inherited. A route that inherits it unchanged from its parent is not
// reported again.
type problem uint8

const (
	offerWithoutTemplate problem = 1 << iota
	offerWithoutTrigger
	performWithoutTemplate
	recoverWithoutTemplate
)

func (v *validator) route(rc *routeConfig, p path, parent *route, index int) *route {
	rt := &route{cont: rc.Continue}
	switch {
	case rc.Name != "":
		rt.path = rc.Name
	case parent == nil:
		rt.path = "root"
	default:
		rt.path = strconv.Itoa(index)
	}
	if parent != nil {
		rt.path = parent.path + "/" + rt.path
		rt.settings = parent.settings
	} else {
		rt.settings = defaultSettings
	}
	// badKeys are the keys with a reported problem: checkSettings says
	// nothing more about them.
	badKeys := make(map[string]bool)
	bad := func(key any, field, reason string) {
		q := p
		if key != nil {
			q = p.with(key)
		}
		if k, ok := key.(string); ok {
			badKeys[k] = true
		}
		v.fail(q, rt.path, field, reason)
	}

	if rc.Name != "" {
		if !routeNameRE.MatchString(rc.Name) {
			bad("name", "name", fmt.Sprintf("%q: want letters, digits, _, . and -, starting with a letter or _", rc.Name))
		} else if other, dup := v.names[rc.Name]; dup {
			bad("name", "name", fmt.Sprintf("%q already names an earlier route (%s)", rc.Name, other))
		} else {
			v.names[rc.Name] = rt.path
		}
	}

	for i, s := range rc.Matchers {
		m, err := parseMatcher(s)
		if err != nil {
			v.fail(p.with("matchers", i), rt.path, fmt.Sprintf("matchers[%d]", i), fmt.Sprintf("%q: %v", s, err))
			continue
		}
		rt.matchers = append(rt.matchers, &m)
	}

	dur := func(d *duration, key string, out *time.Duration) bool {
		if d == nil {
			return false
		}
		if d.err != nil {
			bad(key, key, d.err.Error())
			return true
		}
		*out = d.d
		return true
	}
	dur(rc.SLA, "sla", &rt.sla)
	dur(rc.OfferAtEntryEWTAbove, "offer_at_entry_ewt_above", &rt.entryEWT)
	dur(rc.ReofferEvery, "reoffer_every", &rt.reoffer)
	dur(rc.ShortAbandon, "short_abandon", &rt.shortAbandon)
	dur(rc.MinEWT, "min_ewt", &rt.minEWT)
	dur(rc.MinWait, "min_wait", &rt.minWait)
	if dur(rc.OfferTimeout, "offer_timeout", &rt.offerTimeout) && rc.OfferTimeout.err == nil && rt.offerTimeout == 0 {
		bad("offer_timeout", "offer_timeout", "must be more than 0")
		rt.offerTimeout = parentOr(parent).offerTimeout
	}
	if action, ok := scalarValue(rc.Action, "action", bad); ok {
		switch a := Action(action); a {
		case ActionOffer, ActionPerform, ActionNone:
			rt.action = a
		case ActionRecover:
			bad("action", "action", "recover is not an action for a waiting call: set recover: true to recover abandoned calls")
		default:
			bad("action", "action", fmt.Sprintf("%q: want offer, perform or none", action))
		}
	}
	if n, ok := scalarValue(rc.MaxOffers, "max_offers", bad); ok {
		if n < 1 {
			bad("max_offers", "max_offers", fmt.Sprintf("%d: want at least 1", n))
		} else {
			rt.maxOffers = n
		}
	}
	if n, ok := scalarValue(rc.MinPosition, "min_position", bad); ok {
		if n < 0 {
			bad("min_position", "min_position", fmt.Sprintf("%d: must not be negative", n))
		} else {
			rt.minPosition = n
		}
	}
	if b, ok := scalarValue(rc.Recover, "recover", bad); ok {
		rt.recover = b
	}
	for _, t := range []struct {
		key string
		val *scalar[string]
		out *string
	}{{"template", rc.Template, &rt.template}, {"recover_template", rc.RecoverTemplate, &rt.recoverTemplate}} {
		name, ok := scalarValue(t.val, t.key, bad)
		if !ok {
			continue
		}
		*t.out = name
		switch {
		case name == "":
		case !templateNameRE.MatchString(name):
			bad(t.key, t.key, fmt.Sprintf("%q: want a WhatsApp template name (lowercase letters, digits and _)", name))
		default:
			v.templates[name] = true
		}
	}
	for _, ivs := range []struct {
		key   string
		names []string
		out   *[]*namedInterval
	}{{"active_time_intervals", rc.ActiveTimeIntervals, &rt.active}, {"mute_time_intervals", rc.MuteTimeIntervals, &rt.mute}} {
		for i, name := range ivs.names {
			iv, ok := v.intervals[name]
			if !ok {
				v.fail(p.with(ivs.key, i), rt.path, fmt.Sprintf("%s[%d]", ivs.key, i), fmt.Sprintf("unknown time interval %q", name))
				continue
			}
			*ivs.out = append(*ivs.out, iv)
		}
	}

	if parent == nil {
		// The root matches every call, so that every call gets a
		// decision and a route to count it under.
		for _, k := range []struct {
			key string
			set bool
		}{
			{"matchers", len(rc.Matchers) > 0},
			{"continue", rc.Continue},
			{"min_position", rc.MinPosition != nil},
			{"min_ewt", rc.MinEWT != nil},
			{"min_wait", rc.MinWait != nil},
			{"active_time_intervals", len(rc.ActiveTimeIntervals) > 0},
			{"mute_time_intervals", len(rc.MuteTimeIntervals) > 0},
		} {
			if k.set {
				bad(k.key, k.key, "not allowed on the root route, which matches every call")
			}
		}
	}

	if len(rc.Matchers) > 0 {
		rt.queueScope = len(rt.matchers) == len(rc.Matchers)
		for _, m := range rt.matchers {
			rt.queueScope = rt.queueScope && m.label == LabelQueue
		}
	} else {
		rt.queueScope = rc.MinPosition == nil && rc.MinEWT == nil && rc.MinWait == nil &&
			len(rc.ActiveTimeIntervals)+len(rc.MuteTimeIntervals) == 0
	}
	v.checkSettings(rt, rc, p, parent, badKeys)
	v.rules.routes = append(v.rules.routes, rt.path)
	for i, child := range rc.Routes {
		if child == nil {
			v.fail(p.with("routes", i), rt.path, fmt.Sprintf("routes[%d]", i), "empty route")
			continue
		}
		rt.children = append(rt.children, v.route(child, p.with("routes", i), rt, i))
	}
	return rt
}

// scalarValue returns a scalar's value and true, or reports its error; it
// returns false for an unset or bad value, which then leaves the inherited
// setting in place.
func scalarValue[T string | int | bool](s *scalar[T], key string, bad func(key any, field, reason string)) (T, bool) {
	var zero T
	switch {
	case s == nil:
		return zero, false
	case s.err != nil:
		bad(key, key, s.err.Error())
		return zero, false
	}
	return s.v, true
}

func parentOr(parent *route) *settings {
	if parent == nil {
		return &defaultSettings
	}
	return &parent.settings
}

// checkSettings reports what rt lacks for its action, unless rt inherits
// the same lack from its parent without setting any of the keys involved:
// one mistake, one error.
func (v *validator) checkSettings(rt *route, rc *routeConfig, p path, parent *route, badKeys map[string]bool) {
	type check struct {
		p      problem
		has    bool
		keys   []string
		set    []bool
		reason string
	}
	s := &rt.settings
	checks := []check{
		{offerWithoutTemplate, s.action == ActionOffer && s.template == "",
			[]string{"template", "action"}, []bool{rc.Template != nil, rc.Action != nil},
			"an offer route needs a template"},
		{offerWithoutTrigger, s.action == ActionOffer && s.sla == 0 && s.entryEWT == 0,
			[]string{"sla", "offer_at_entry_ewt_above", "action"}, []bool{rc.SLA != nil, rc.OfferAtEntryEWTAbove != nil, rc.Action != nil},
			"an offer route never offers without sla or offer_at_entry_ewt_above"},
		{performWithoutTemplate, s.action == ActionPerform && s.template == "",
			[]string{"template", "action"}, []bool{rc.Template != nil, rc.Action != nil},
			"a perform route needs a template"},
		{recoverWithoutTemplate, s.recover && s.recoverTemplate == "",
			[]string{"recover_template", "recover"}, []bool{rc.RecoverTemplate != nil, rc.Recover != nil},
			"recover: true needs a recover_template"},
	}
	var parentProblems problem
	if parent != nil {
		parentProblems = parent.problems
	}
	for _, c := range checks {
		if !c.has {
			continue
		}
		rt.problems |= c.p
		if slices.ContainsFunc(c.keys, func(k string) bool { return badKeys[k] }) {
			continue // a consequence of an error already reported
		}
		key := ""
		for i, set := range c.set {
			if set {
				key = c.keys[i]
				break
			}
		}
		if key == "" && parentProblems&c.p != 0 {
			continue
		}
		q := p
		if key != "" {
			q = p.with(key)
		}
		v.fail(q, rt.path, c.keys[0], c.reason)
	}
}
