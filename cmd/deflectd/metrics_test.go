package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/metrics"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap/zaptest"
)

// TestMetricsMatchCatalog holds the whole app's /metrics to the catalog in
// metrics/: every deflectd_* family exported is catalogued with the same
// type, labels and help; every catalogued family is registered; names and
// labels follow the conventions; promtool accepts the scrape.
func TestMetricsMatchCatalog(t *testing.T) {
	base, dir := testApp(t)
	code, body := get(t, "GET", base+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics = %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	catalog := map[string]metrics.Metric{}
	for _, m := range metrics.Catalog() {
		catalog[m.Name] = m
	}

	t.Run("exported families are catalogued", func(t *testing.T) {
		n := 0
		for name, mf := range fams {
			if !strings.HasPrefix(name, "deflectd_") {
				continue
			}
			n++
			got := scraped(mf)
			if err := metrics.Validate(got); err != nil && !strings.Contains(err.Error(), "unknown group") {
				t.Errorf("exported: %v", err)
			}
			want, ok := catalog[name]
			if !ok {
				t.Errorf("%s (%s %v) is exported but not in metrics.Catalog()", name, got.Type, got.Labels)
				continue
			}
			want.Group, want.Labels = "", sorted(want.Labels)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s differs from the catalog (-catalog +exported):\n%s", name, diff)
			}
		}
		if n == 0 {
			t.Fatal("/metrics has no deflectd_ family")
		}
	})

	t.Run("catalogued families are registered", func(t *testing.T) {
		reg := idleAppRegistry(t, dir)
		var childless []string
		for _, m := range metrics.Catalog() {
			if err := registered(reg, m); err != nil {
				t.Error(err)
				continue
			}
			if _, ok := fams[m.Name]; !ok {
				childless = append(childless, m.Name)
			}
		}
		// Every series exists at zero before the first event: the
		// queues come from the configuration (calls.queues).
		if len(childless) > 0 {
			t.Errorf("registered but exported without series: %s", strings.Join(childless, ", "))
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		path, err := exec.LookPath("promtool")
		if err != nil {
			if os.Getenv("DEFLECTD_REQUIRE_DEPS") == "1" {
				t.Fatal("promtool not on PATH (Debian package prometheus) and DEFLECTD_REQUIRE_DEPS=1")
			}
			t.Skip("promtool not on PATH (Debian package prometheus)")
		}
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out.String())
		}
	})
}

// scraped describes an exported family the way the catalog does (no
// group; labels sorted, histograms' le left out by the parser).
func scraped(mf *dto.MetricFamily) metrics.Metric {
	m := metrics.Metric{Name: mf.GetName(), Help: mf.GetHelp(), Type: strings.ToLower(mf.GetType().String())}
	for _, s := range mf.GetMetric() {
		for _, l := range s.GetLabel() {
			if !slices.Contains(m.Labels, l.GetName()) {
				m.Labels = append(m.Labels, l.GetName())
			}
		}
	}
	m.Labels = sorted(m.Labels)
	return m
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s) == 0 {
		return nil
	}
	return s
}

// idleAppRegistry builds a second App from testApp's configuration without
// running it: its registry holds everything NewApp registers, and probing it
// disturbs no live scrape.
func idleAppRegistry(t *testing.T, dir string) *prometheus.Registry {
	t.Helper()
	env := map[string]string{"DEFLECTD_ARI_PASSWORD": "unused", "DEFLECTD_WA_TOKEN": "tok",
		"DEFLECTD_WA_APP_SECRET": "secret", "DEFLECTD_WA_VERIFY_TOKEN": "verify"}
	app, err := NewApp(AppOptions{ConfigFile: filepath.Join(dir, "deflectd.yaml"), Logger: zaptest.NewLogger(t),
		Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.rdb.Close() })
	return app.reg
}

// registered checks that reg holds a collector with m's name, label names
// and help, of m's type. The registry has no listing of its descriptors,
// so it is probed: registering a collector described like m fails with
// AlreadyRegisteredError exactly when such a collector is there.
func registered(reg *prometheus.Registry, m metrics.Metric) error {
	probe := newCollector(m)
	err := reg.Register(probe)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		reg.Unregister(probe)
		return errors.New(m.Name + " is in metrics.Catalog() but the app does not register it")
	case errors.As(err, &are):
		if got := collectorType(are.ExistingCollector); got != m.Type {
			return errors.New(m.Name + " is registered as a " + got + ", the catalog says " + m.Type)
		}
		return nil
	default:
		return errors.New(m.Name + ": registered with other label names or help than the catalog's " +
			strings.Join(m.Labels, ",") + " / " + m.Help + ": " + err.Error())
	}
}

func newCollector(m metrics.Metric) prometheus.Collector {
	switch {
	case m.Type == metrics.Counter && len(m.Labels) > 0:
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.Name, Help: m.Help}, m.Labels)
	case m.Type == metrics.Counter:
		return prometheus.NewCounter(prometheus.CounterOpts{Name: m.Name, Help: m.Help})
	case m.Type == metrics.Histogram && len(m.Labels) > 0:
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: m.Name, Help: m.Help}, m.Labels)
	case m.Type == metrics.Histogram:
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: m.Name, Help: m.Help})
	case len(m.Labels) > 0:
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: m.Name, Help: m.Help}, m.Labels)
	default:
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: m.Name, Help: m.Help})
	}
}

// collectorType is a registered collector's metric type: from the Vec's
// type, or from the one metric a plain collector writes.
func collectorType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return metrics.Counter
	case *prometheus.GaugeVec:
		return metrics.Gauge
	case *prometheus.HistogramVec:
		return metrics.Histogram
	case *prometheus.SummaryVec:
		return "summary"
	}
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	typ := "unknown"
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil {
			continue
		}
		switch {
		case d.Counter != nil:
			typ = metrics.Counter
		case d.Gauge != nil:
			typ = metrics.Gauge
		case d.Histogram != nil:
			typ = metrics.Histogram
		case d.Summary != nil:
			typ = "summary"
		}
	}
	return typ
}
