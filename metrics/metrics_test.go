package metrics_test

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/metrics"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/metrics.md")

const docPath = "../docs/metrics.md"

// TestDocUpToDate: docs/metrics.md below the marker is Render's output.
func TestDocUpToDate(t *testing.T) {
	var gen bytes.Buffer
	if err := metrics.Render(&gen); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(docPath)
	if err != nil && !(*update && os.IsNotExist(err)) {
		t.Fatal(err)
	}
	intro, _, found := strings.Cut(string(old), metrics.Marker)
	if *update {
		if !found && intro != "" && !strings.HasSuffix(intro, "\n\n") {
			intro = strings.TrimRight(intro, "\n") + "\n\n"
		}
		if err := os.WriteFile(docPath, append([]byte(intro), gen.Bytes()...), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !found {
		t.Fatalf("%s has no marker line %q; run go test ./metrics -update", docPath, metrics.Marker)
	}
	if diff := cmp.Diff(gen.String(), string(old[len(intro):])); diff != "" {
		t.Errorf("%s is stale; run go test ./metrics -update (-want +got):\n%s", docPath, diff)
	}
}

// TestDocQueries: every PromQL example of the hand-written intro uses
// catalogued metrics only.
func TestDocQueries(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 5 {
		t.Fatalf("%s has %d promql examples, want the funnel's (at least 5)", docPath, len(blocks))
	}
	names := metrics.Names()
	for _, q := range blocks {
		refs := metrics.Referenced(q[1])
		if len(refs) == 0 {
			t.Errorf("example uses no deflectd metric:\n%s", q[1])
		}
		for _, n := range refs {
			if !names[n] {
				t.Errorf("example uses %s, which is not in the catalog:\n%s", n, q[1])
			}
		}
	}
}

func TestCatalogConventions(t *testing.T) {
	seen := map[string]bool{}
	groups := map[string]int{}
	for _, m := range metrics.Catalog() {
		if err := metrics.Validate(m); err != nil {
			t.Error(err)
		}
		if seen[m.Name] {
			t.Errorf("%s is listed twice", m.Name)
		}
		seen[m.Name] = true
		groups[m.Group]++
	}
	for _, g := range metrics.Groups() {
		if groups[g] == 0 {
			t.Errorf("group %q has no metric", g)
		}
	}
	if diff := cmp.Diff(seen, metrics.Names()); diff != "" {
		t.Errorf("Names() differs from Catalog() (-want +got):\n%s", diff)
	}
}

// TestFunnel: the funnel's stages exist, with the labels their selectors
// use.
func TestFunnel(t *testing.T) {
	stages := []struct {
		name   string
		labels []string
	}{
		{"deflectd_calls_entered_total", []string{"queue"}},
		{"deflectd_calls_answered_total", []string{"queue"}},
		{"deflectd_calls_abandoned_total", []string{"queue"}},
		{"deflectd_calls_short_abandoned_total", []string{"queue"}},
		{"deflectd_calls_waiting", []string{"queue"}},
		{"deflectd_wait_seconds", []string{"queue", "outcome"}},
		{"deflectd_ewt_seconds", []string{"queue"}},
		{"deflectd_calls_eligible_total", []string{"queue"}},
		{"deflectd_offers_total", []string{"queue"}},
		{"deflectd_offer_responses_total", []string{"queue", "response"}},
		{"deflectd_deflections_total", []string{"queue", "mode"}},
		{"deflectd_whatsapp_sends_total", []string{"kind", "result"}},
		{"deflectd_whatsapp_outbox_statuses_total", []string{"status", "result"}},
		{"deflectd_whatsapp_conversions_total", []string{"kind"}},
	}
	for _, s := range stages {
		m, ok := metrics.Lookup(s.name)
		if !ok {
			t.Errorf("funnel stage %s is not in the catalog", s.name)
			continue
		}
		for _, l := range s.labels {
			if !contains(m.Labels, l) {
				t.Errorf("funnel stage %s lacks label %q (has %v)", s.name, l, m.Labels)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestCatalogIsACopy(t *testing.T) {
	c := metrics.Catalog()
	c[0].Name = "changed"
	c[0].Labels[0] = "changed"
	if got := metrics.Catalog()[0]; got.Name == "changed" || got.Labels[0] == "changed" {
		t.Errorf("Catalog() shares its backing data: %+v", got)
	}
}

func TestReferenced(t *testing.T) {
	tests := []struct {
		promql string
		want   []string
	}{
		{`sum(rate(deflectd_calls_entered_total{queue="sales"}[5m]))`, []string{"deflectd_calls_entered_total"}},
		{`histogram_quantile(0.9, sum by (le) (rate(deflectd_wait_seconds_bucket[5m])))
		  / deflectd_wait_seconds_sum / deflectd_wait_seconds_count`, []string{"deflectd_wait_seconds"}},
		{`deflectd_ari_request_duration_seconds_count + deflectd_whatsapp_send_duration_seconds_bucket`,
			[]string{"deflectd_ari_request_duration_seconds", "deflectd_whatsapp_send_duration_seconds"}},
		// _count of a counter is not a histogram series: reported as is.
		{`deflectd_calls_entered_total_count`, []string{"deflectd_calls_entered_total_count"}},
		// Unknown names come back as written, to be flagged.
		{`rate(deflectd_no_such_total[1m]) or deflectd_nope_bucket`, []string{"deflectd_no_such_total", "deflectd_nope_bucket"}},
		{`{__name__="deflectd_ari_connected"} == 0`, []string{"deflectd_ari_connected"}},
		{"deflectd_ari_connected # deflectd_in_a_comment\n+ deflectd_whatsapp_breaker_open", []string{"deflectd_ari_connected", "deflectd_whatsapp_breaker_open"}},
		{`label_replace(up, "x", "#", "", "") + mydeflectd_x + my_deflectd_y + deflectd_ewt_seconds`, []string{"deflectd_ewt_seconds"}},
		{`up{job="deflectd"} + process_cpu_seconds_total`, nil},
		{`deflectd_offers_total + deflectd_offers_total offset 1d`, []string{"deflectd_offers_total"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, metrics.Referenced(tt.promql)); diff != "" {
			t.Errorf("Referenced(%q) (-want +got):\n%s", tt.promql, diff)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []metrics.Metric{
		{Name: "deflectd_calls", Type: metrics.Counter, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_depth_total", Type: metrics.Gauge, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_wait", Type: metrics.Histogram, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_send_duration_ms", Type: metrics.Gauge, Help: "x", Group: metrics.GroupOps},
		{Name: "calls_total", Type: metrics.Counter, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"caller_number"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"call_id"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"phone"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"id"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"queue", "queue"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"le"}, Help: "x", Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Group: metrics.GroupOps},
		{Name: "deflectd_x_total", Type: metrics.Counter, Help: "x", Group: "misc"},
		{Name: "deflectd_x_total", Type: "summary", Help: "x", Group: metrics.GroupOps},
	}
	for _, m := range tests {
		if metrics.Validate(m) == nil {
			t.Errorf("Validate(%+v) = nil, want an error", m)
		}
	}
	ok := metrics.Metric{Name: "deflectd_x_total", Type: metrics.Counter, Labels: []string{"queue", "reason"}, Help: "x", Group: metrics.GroupOps}
	if err := metrics.Validate(ok); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
}
