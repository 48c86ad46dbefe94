package configtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// root is the repository root: two levels above this package.
func root(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	dir := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", dir, err)
	}
	return dir
}

// repoPath joins rel (slash-separated, from the repository root) to the root.
func repoPath(t *testing.T, rel string) string {
	return filepath.Join(root(t), filepath.FromSlash(rel))
}

// tool returns the path of an external command, or skips the test when it
// is missing (fails with DEFLECTD_REQUIRE_DEPS=1).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found (Debian package %s: apt-get install -y %s)", name, pkg, pkg)
	if os.Getenv("DEFLECTD_REQUIRE_DEPS") == "1" {
		t.Fatal(msg + "; DEFLECTD_REQUIRE_DEPS=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// run runs a command in dir and fails the test with its output if it fails.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	// Also checks the rule files the config names.
	run(t, repoPath(t, "configs/prometheus"), promtool, "check", "config", "prometheus.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	run(t, repoPath(t, "configs/prometheus/rules"), promtool, "check", "rules", "deflectd.rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	run(t, repoPath(t, "configs/prometheus/rules"), promtool, "test", "rules", "deflectd.rules.test.yml")
}

// TestDashboardPromQL has promtool parse every dashboard query, written as
// recording rules with the dashboard variables replaced by sample values.
func TestDashboardPromQL(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t) {
		expr := expandVariables(q.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("panel %q: unknown variable left in %s", q.panel, expr)
			continue
		}
		quoted, err := json.Marshal(expr) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard_query_%d\n        expr: %s\n", i, quoted)
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Dir(file), promtool, "check", "rules", file)
}

func TestDockerComposeConfig(t *testing.T) {
	compose := tool(t, "docker-compose", "docker-compose")
	run(t, root(t), compose, "-f", "docker-compose.yml", "config", "-q")
}
