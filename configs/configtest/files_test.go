package configtest

import (
	"bufio"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/referenced-metrics.txt")

const (
	dashboardFile = "configs/grafana/dashboards/deflectd.json"
	rulesFile     = "configs/prometheus/rules/deflectd.rules.yml"
	rulesTestFile = "configs/prometheus/rules/deflectd.rules.test.yml"
	goldenFile    = "testdata/referenced-metrics.txt"
	datasourceUID = "prometheus"
)

// Dashboard types: only what the tests look at.
type (
	datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	target struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	}
	panel struct {
		ID          int         `json:"id"`
		Type        string      `json:"type"`
		Title       string      `json:"title"`
		Description string      `json:"description"`
		Datasource  *datasource `json:"datasource"`
		Targets     []target    `json:"targets"`
		Panels      []panel     `json:"panels"` // a collapsed row's
	}
	variable struct {
		Type       string      `json:"type"`
		Name       string      `json:"name"`
		Query      any         `json:"query"`
		Datasource *datasource `json:"datasource"`
	}
	dashboard struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []variable `json:"list"`
		} `json:"templating"`
	}
)

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panels returns every panel, the ones inside collapsed rows included.
func (d dashboard) panels() []panel {
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

type query struct{ panel, expr string }

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, p := range loadDashboard(t).panels() {
		for _, tg := range p.Targets {
			qs = append(qs, query{p.Title, tg.Expr})
		}
	}
	if len(qs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return qs
}

// variableValues are sample values of the dashboard's own variables and of
// the Grafana built-ins its queries use.
var variableValues = []string{
	"$__rate_interval", "1m",
	"$__interval", "1m",
	"$__range", "1h",
	"$window", "15m",
	"$baseline", "7d",
	"$queue", ".*",
}

func expandVariables(expr string) string {
	return strings.NewReplacer(variableValues...).Replace(expr)
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are required for provisioning", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a current one (39)", d.SchemaVersion)
	}
	ids := map[int]string{}
	for _, p := range d.panels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Description == "" {
			t.Errorf("panel %d (%s): a title and a description are required", p.ID, p.Type)
		}
		if p.Datasource == nil || p.Datasource.UID != datasourceUID {
			t.Errorf("panel %q: datasource %+v, want uid %q", p.Title, p.Datasource, datasourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q, target %q: no expr", p.Title, tg.RefID)
			}
			if tg.Datasource == nil || tg.Datasource.UID != datasourceUID || tg.Datasource.Type != "prometheus" {
				t.Errorf("panel %q, target %q: datasource %+v, want prometheus uid %q", p.Title, tg.RefID, tg.Datasource, datasourceUID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: missing or repeated refId %q", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["baseline"]; !ok || v.Type != "custom" {
		t.Errorf("want a custom variable baseline, got %+v", v)
	} else if q, _ := v.Query.(string); !strings.Contains(q, "7d") {
		t.Errorf("baseline variable options %q: want offsets such as 7d,14d,28d", q)
	}
	if v, ok := vars["queue"]; !ok || v.Datasource == nil || v.Datasource.UID != datasourceUID {
		t.Errorf("want a queue variable on datasource %q, got %+v", datasourceUID, v)
	}
	offset := false
	for _, q := range dashboardQueries(t) {
		offset = offset || strings.Contains(q.expr, "offset $baseline")
	}
	if !offset {
		t.Error("no query compares with the baseline (offset $baseline)")
	}
}

// TestProvisioning checks that the provisioning files agree with the
// dashboard and with docker-compose.yml's mounts.
func TestProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		}
	}
	if err := yaml.Unmarshal(readFile(t, "configs/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != datasourceUID || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "http://127.0.0.1:9090" {
		t.Errorf("datasources: %+v, want one prometheus, uid %q, at http://127.0.0.1:9090", ds.Datasources, datasourceUID)
	}
	var dp struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	if err := yaml.Unmarshal(readFile(t, "configs/grafana/provisioning/dashboards/deflectd.yml"), &dp); err != nil {
		t.Fatal(err)
	}
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers: %+v, want one of type file", dp.Providers)
	}
	mount := "./configs/grafana/dashboards:" + dp.Providers[0].Options.Path + ":ro"
	if !slices.Contains(composeFile(t).Services["grafana"].Volumes, mount) {
		t.Errorf("docker-compose.yml: grafana does not mount %s", mount)
	}
}

// compose is what the tests read of docker-compose.yml.
type compose struct {
	Services map[string]struct {
		Image string
		Build *struct {
			Context    string
			Dockerfile string
		}
		Volumes     []string
		NetworkMode string `yaml:"network_mode"`
	}
}

func composeFile(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// TestComposeFiles checks that every file docker-compose.yml references
// exists: build contexts, Dockerfiles and what they COPY from the context,
// and the sources of bind mounts.
func TestComposeFiles(t *testing.T) {
	c := composeFile(t)
	for _, want := range []string{"asterisk", "redis", "deflectd", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("docker-compose.yml: no %s service", want)
		}
	}
	exists := func(svc, p string) bool {
		if _, err := os.Stat(repoPath(t, p)); err != nil {
			t.Errorf("service %s: %v", svc, err)
			return false
		}
		return true
	}
	for name, s := range c.Services {
		if s.NetworkMode != "host" {
			t.Errorf("service %s: network_mode %q, want host (the configs bind to 127.0.0.1)", name, s.NetworkMode)
		}
		if s.Build != nil {
			ctx := s.Build.Context
			if exists(name, ctx) {
				df := filepath.Join(ctx, s.Build.Dockerfile)
				if exists(name, df) {
					checkDockerfile(t, name, ctx, df)
				}
			}
		} else if s.Image == "" {
			t.Errorf("service %s: neither image nor build", name)
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, ".") {
				exists(name, src)
			}
		}
	}
}

// checkDockerfile checks that the files a Dockerfile copies from the build
// context exist.
func checkDockerfile(t *testing.T, svc, ctx, df string) {
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, df))))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.EqualFold(f[0], "COPY") || strings.HasPrefix(f[1], "--from") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			m, err := filepath.Glob(repoPath(t, filepath.Join(ctx, src)))
			if err != nil || len(m) == 0 {
				t.Errorf("service %s: %s copies %s, which does not exist", svc, df, src)
			}
		}
	}
}

// TestRulesTestsCoverEveryRule checks that the promtool tests cover every
// recording rule and every alert, the latter both firing and not.
func TestRulesTestsCoverEveryRule(t *testing.T) {
	rules := loadRules(t)
	var tests struct {
		Tests []struct {
			PromQLExprTest []struct {
				Expr string
			} `yaml:"promql_expr_test"`
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	if err := yaml.Unmarshal(readFile(t, rulesTestFile), &tests); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]bool{}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, e := range tc.PromQLExprTest {
			exprs[strings.TrimSpace(e.Expr)] = true
		}
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Record != "" && !exprs[r.Record]:
				t.Errorf("recording rule %s: no promql_expr_test evaluates it", r.Record)
			case r.Alert != "" && !fires[r.Alert]:
				t.Errorf("alert %s: no test where it fires", r.Alert)
			case r.Alert != "" && !quiet[r.Alert]:
				t.Errorf("alert %s: no test where it stays quiet", r.Alert)
			}
			if r.Alert != "" {
				for _, k := range []string{"severity"} {
					if r.Labels[k] == "" {
						t.Errorf("alert %s: no %s label", r.Alert, k)
					}
				}
				for _, k := range []string{"summary", "description", "runbook"} {
					if r.Annotations[k] == "" {
						t.Errorf("alert %s: no %s annotation", r.Alert, k)
					}
				}
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr string
			Labels              map[string]string
			Annotations         map[string]string
		}
	}
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, rulesFile), &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no rule groups", rulesFile)
	}
	return rf
}

// token matches PromQL identifiers, recording-rule names (with colons)
// included, so that a rule name's deflectd_ part is not taken for a metric.
var token = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// metricNames adds to set the deflectd_* metric names in s, histogram
// series by their base name.
func metricNames(set map[string]bool, s string) {
	for _, tok := range token.FindAllString(s, -1) {
		if !strings.HasPrefix(tok, "deflectd_") || strings.Contains(tok, ":") {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			tok = strings.TrimSuffix(tok, suffix)
		}
		set[tok] = true
	}
}

// referencedMetrics returns the sorted deflectd_* metric names of the
// dashboard (queries, titles, descriptions: every string) and of the rules
// (expressions and annotations).
func referencedMetrics(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	var dash any
	if err := json.Unmarshal(readFile(t, dashboardFile), &dash); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			metricNames(set, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(dash)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			metricNames(set, r.Expr)
			for _, a := range r.Annotations {
				metricNames(set, a)
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestReferencedMetricsGolden(t *testing.T) {
	got := strings.Join(referencedMetrics(t), "\n") + "\n"
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (go test ./configs/configtest -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale; rerun with -update. Now:\n%s", goldenFile, got)
	}
}

// TestReferencedMetricsExist fails for a metric the dashboard, the rules or
// the rules' tests use that no non-test Go file of the repository names as
// a string literal: one the code does not export.
func TestReferencedMetricsExist(t *testing.T) {
	set := map[string]bool{}
	for _, n := range referencedMetrics(t) {
		set[n] = true
	}
	var tests struct {
		Tests []struct {
			InputSeries []struct {
				Series string
			} `yaml:"input_series"`
		}
	}
	if err := yaml.Unmarshal(readFile(t, rulesTestFile), &tests); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			metricNames(set, s.Series)
		}
	}

	var code strings.Builder
	top := root(t)
	self := repoPath(t, "configs/configtest")
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == self || p != top && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		code.Write(b)
		code.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	src := code.String()
	var unknown []string
	for n := range set {
		if !strings.Contains(src, `"`+n+`"`) {
			unknown = append(unknown, n)
		}
	}
	slices.Sort(unknown)
	if len(unknown) > 0 {
		t.Errorf("metrics used by the dashboard or the rules that no Go code exports:\n%s", strings.Join(unknown, "\n"))
	}
}
