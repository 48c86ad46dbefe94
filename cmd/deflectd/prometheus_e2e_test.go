//go:build e2e

package main

// Acceptance 2 of the ops surface: a real Prometheus (Debian package
// prometheus) scrapes `deflectd demo` for at least 60 s; then the alert and
// recording rules of configs/prometheus are loaded and healthy, every query
// of the Grafana dashboard evaluates and returns data, and promtool check
// metrics finds nothing to say about a scrape.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deflectd/deflectd/configs/configtest"
	"go.yaml.in/yaml/v3"
)

// promScrapePeriod is how long Prometheus scrapes the demo before the
// checks: the acceptance criterion's 60 s.
const promScrapePeriod = 60 * time.Second

// promDashboardValues are the values of the dashboard's variables for a
// Prometheus that has scraped for a minute, every second.
var promDashboardValues = map[string]string{
	"queue": ".*", // "All"
	// The KPI windows and $__range: what the run covers.
	"window":  "1m",
	"__range": "1m",
	// Grafana makes it at least four scrape intervals (4 s here).
	"__rate_interval": "10s",
	"__interval":      "1s",
	// The before vs after panels compare with the same window $baseline
	// earlier: 7d and up in production, where a week of history exists.
	// Here the history is 60 s long, so 30 s back puts the baseline window
	// [now-90s, now-30s] over the first half of the run, where it has
	// samples, instead of before Prometheus started.
	"baseline": "30s",
}

func TestPrometheusScrapesDemo(t *testing.T) {
	prometheusBin := promTool(t, "prometheus")
	promtool := promTool(t, "promtool")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	queries, err := configtest.DashboardQueries(filepath.Join(repo, configtest.DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// The demo, in-process as TestDemo runs it, at 10x: 15 simulated
	// minutes of arrivals are 90 s of real time, longer than the test, so
	// callers keep coming until it stops the demo. 3 agents per queue with
	// 4-minute calls serve fewer than the 6 callers a minute that arrive:
	// the queues grow, callers are offered WhatsApp and some abandon
	// (patience 3 simulated minutes: 18 s), so every funnel stage moves.
	var out syncBuffer
	o := demoOptions{
		duration: 15 * time.Minute, speed: 10, rate: 6, agents: 3, seed: 1,
		listen: "127.0.0.1:0", statusAddr: "127.0.0.1:0", accept: 0.4, decline: 0.3, replyRate: 0.6,
		progress: 10 * time.Second, configDir: filepath.Join(repo, "configs", "deflectd"),
		logFile: filepath.Join(t.TempDir(), "demo.log"), stdout: &out,
	}
	ready := make(chan string, 1)
	o.onReady = func(app, _ string) { ready <- app }
	demoCtx, stopDemo := context.WithCancel(ctx)
	demoDone := make(chan error, 1)
	go func() { demoDone <- runDemo(demoCtx, o) }()
	defer func() {
		stopDemo()
		if err := <-demoDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("runDemo() = %v", err)
		}
		t.Logf("demo output:\n%s", out.String())
	}()
	var appURL string
	select {
	case appURL = <-ready:
	case err := <-demoDone:
		demoDone <- err
		t.Fatalf("runDemo() = %v before it was ready", err)
	}
	target := strings.TrimPrefix(appURL, "http://")

	prom := startPrometheus(ctx, t, prometheusBin, repo, target)
	start := time.Now()

	// The scrape period: wait until Prometheus holds 60 s of scrapes of
	// the demo (61 samples of up at 1 s), asking it once a second. It
	// should take 60 s and a little; 30 s more is the bound.
	want := int(promScrapePeriod/time.Second) + 1
	scraped := 0
	err = promPoll(ctx, promScrapePeriod+30*time.Second, time.Second, func() (bool, error) {
		res, err := prom.query(ctx, `count_over_time(up{job="deflectd"}[5m])`)
		if err != nil || len(res) == 0 {
			return false, err
		}
		scraped = int(res[0].value())
		return scraped >= want, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d scrapes of the demo (have %d): %v\n%s", want, scraped, err, prom.logTail())
	}
	t.Logf("Prometheus has %d scrapes of the demo after %v", scraped, time.Since(start).Round(time.Second))
	if res, err := prom.query(ctx, `min_over_time(up{job="deflectd"}[5m])`); err != nil || len(res) != 1 || res[0].value() != 1 {
		t.Errorf("min_over_time(up[5m]) = %v, %v: want 1, every scrape of the demo succeeded", res, err)
	}

	t.Run("rules load", func(t *testing.T) { prom.checkRules(ctx, t) })

	t.Run("dashboard queries return data", func(t *testing.T) {
		var failures []string
		for _, q := range queries {
			expr, err := configtest.ExpandVariables(q.Expr, promDashboardValues)
			if err != nil {
				failures = append(failures, fmt.Sprintf("panel %q %s: %v", q.Panel, q.RefID, err))
				continue
			}
			res, err := prom.query(ctx, expr)
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("panel %q %s: %v\n    %s", q.Panel, q.RefID, err, expr))
			case !slices.ContainsFunc(res, func(s promSample) bool { return !math.IsNaN(s.value()) }):
				failures = append(failures, fmt.Sprintf("panel %q %s: no data (%v)\n    %s", q.Panel, q.RefID, res, expr))
			default:
				t.Logf("panel %q %s: %v", q.Panel, q.RefID, res)
			}
		}
		if len(failures) > 0 {
			t.Errorf("%d of %d dashboard queries fail:\n%s", len(failures), len(queries), strings.Join(failures, "\n"))
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		body := promGet(ctx, t, appURL+"/metrics")
		if !strings.Contains(body, "deflectd_calls_entered_total{") {
			t.Fatalf("/metrics has no deflectd_calls_entered_total series:\n%s", body)
		}
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		var msg bytes.Buffer
		cmd.Stdout, cmd.Stderr = &msg, &msg
		if err := cmd.Run(); err != nil || msg.Len() > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, msg.String())
		}
	})
}

// promTool returns the path of a command of the Debian package prometheus,
// or skips the test when it is missing (fails with DEFLECTD_REQUIRE_DEPS=1).
func promTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not on PATH (Debian package prometheus: apt-get install -y prometheus)"
	if os.Getenv("DEFLECTD_REQUIRE_DEPS") == "1" {
		t.Fatal(msg + "; DEFLECTD_REQUIRE_DEPS=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// promServer is a Prometheus process of the test's own.
type promServer struct {
	url       string
	log       string // its log file
	ruleFiles []string
}

// startPrometheus runs prometheus on a free loopback port with a storage
// directory of its own, scraping target every second with the rule files
// configs/prometheus/prometheus.yml names, evaluated every second. It is
// stopped, by its PID, when the test ends.
func startPrometheus(ctx context.Context, t *testing.T, bin, repo, target string) *promServer {
	t.Helper()
	promDir := filepath.Join(repo, "configs", "prometheus")
	var project struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	b, err := os.ReadFile(filepath.Join(promDir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &project); err != nil || len(project.RuleFiles) == 0 {
		t.Fatalf("configs/prometheus/prometheus.yml: rule_files %v, %v", project.RuleFiles, err)
	}
	dir := t.TempDir()
	p := &promServer{log: filepath.Join(dir, "prometheus.log")}
	for _, f := range project.RuleFiles {
		p.ruleFiles = append(p.ruleFiles, filepath.Join(promDir, f))
	}
	rules, _ := json.Marshal(p.ruleFiles) // a JSON list is a YAML list
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: %s
scrape_configs:
  - job_name: deflectd
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p.url = "http://" + addr
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=info")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		// SIGTERM to our own prometheus, by its PID; SIGKILL if it has not
		// shut down in 10 s.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	// Ready: /-/ready answers 200 once the TSDB is open and the rules and
	// scrape targets are loaded. It takes a second or two; 30 s is the bound.
	err = promPoll(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("prometheus at %s: %v\n%s", addr, err, p.logTail())
	}
	return p
}

// promPoll calls cond every interval until it returns true or an error, or
// limit has passed.
func promPoll(ctx context.Context, limit, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done after %v", limit)
		case <-tick.C:
		}
	}
}

func (p *promServer) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "prometheus log (end):\n" + string(b)
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func (s promSample) String() string {
	return fmt.Sprintf("%v=%v", s.Metric, s.Value[1])
}

// query evaluates expr at now through /api/v1/query.
func (p *promServer) query(ctx context.Context, expr string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v []promSample
		err := json.Unmarshal(data.Result, &v)
		return v, err
	case "scalar":
		var s promSample
		err := json.Unmarshal(data.Result, &s.Value)
		return []promSample{s}, err
	}
	return nil, fmt.Errorf("result type %q, want an instant vector or a scalar", data.ResultType)
}

// api GETs a Prometheus HTTP API path and decodes its data.
func (p *promServer) api(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("HTTP %d: %v: %s", resp.StatusCode, err, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("status %q: %s: %s", r.Status, r.ErrorType, r.Error)
	}
	if len(r.Warnings) > 0 {
		return fmt.Errorf("warnings: %s", strings.Join(r.Warnings, "; "))
	}
	return json.Unmarshal(r.Data, data)
}

// checkRules compares /api/v1/rules with the rule files: every group of
// every file is loaded with all its rules, and every rule has been
// evaluated without error.
func (p *promServer) checkRules(ctx context.Context, t *testing.T) {
	want := map[string]int{} // group: rules
	for _, f := range p.ruleFiles {
		var rf struct {
			Groups []struct {
				Name  string
				Rules []yaml.Node
			}
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			want[g.Name] = len(g.Rules)
		}
	}
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []struct {
				Name      string `json:"name"`
				Type      string `json:"type"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api(ctx, "/api/v1/rules", &data); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range data.Groups {
		got[g.Name] = len(g.Rules)
		for _, r := range g.Rules {
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("group %s, %s rule %s: health %q, last error %q", g.Name, r.Type, r.Name, r.Health, r.LastError)
			}
		}
	}
	for g, n := range want {
		if got[g] != n {
			t.Errorf("rule group %s: Prometheus has %d rules, the files %d", g, got[g], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Prometheus has rule groups %v, the files %v", got, want)
	}
	t.Logf("rule groups loaded and healthy: %v", got)
}

func promGet(ctx context.Context, t *testing.T, u string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
	return string(b)
}
