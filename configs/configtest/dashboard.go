package configtest

// This file is the package's only non-test code: what other packages'
// tests need to read the Grafana dashboard's queries (the end-to-end test
// in cmd/deflectd, prometheus_e2e_test.go, runs every one against a real
// Prometheus scraping `deflectd demo`).

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// DashboardFile is the dashboard, relative to the repository root.
const DashboardFile = "configs/grafana/dashboards/deflectd.json"

// Query is one target of a dashboard panel.
type Query struct {
	Panel string // the panel's title
	RefID string // the target's refId
	Expr  string // the PromQL, variables unexpanded
}

// dashboardPanel is what DashboardQueries reads of a panel.
type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

// DashboardQueries reads a Grafana dashboard JSON file and returns the
// targets of every panel, the ones inside collapsed rows included, in the
// file's order.
func DashboardQueries(file string) ([]Query, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var qs []Query
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				qs = append(qs, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no panel has a query", file)
	}
	return qs, nil
}

// dashboardVariable matches Grafana's $name and ${name} forms; \w takes in
// the built-ins' underscores ($__rate_interval), so the longest name wins.
var dashboardVariable = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// ExpandVariables replaces the dashboard variables in expr by values,
// keyed by name without the $ ("queue", "__rate_interval"). A variable
// without a value is an error naming it.
func ExpandVariables(expr string, values map[string]string) (string, error) {
	var missing []string
	out := dashboardVariable.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		v, ok := values[name]
		if !ok {
			if !slices.Contains(missing, m) {
				missing = append(missing, m)
			}
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("no value for %s in %s", strings.Join(missing, ", "), expr)
	}
	return out, nil
}
