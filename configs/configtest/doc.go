// Package configtest holds the tests of the operations configs under
// configs/: the Prometheus scrape config and rules (configs/prometheus),
// the Grafana dashboard and provisioning (configs/grafana) and
// docker-compose.yml with the Dockerfiles it builds (configs/docker).
//
// The tests run promtool (Debian package prometheus) and docker-compose
// (Debian package docker-compose) when they are installed and skip when
// not; with DEFLECTD_REQUIRE_DEPS=1 a missing tool is a failure instead.
//
// testdata/referenced-metrics.txt lists, sorted and one per line, every
// deflectd_* metric the dashboard and the rules use (histograms by their
// base name, without _bucket, _sum or _count), so the metrics catalog can
// be checked against it. A test fails when the list is stale;
// `go test ./configs/configtest -update` rewrites it. Another test fails
// when a referenced name is not a string literal of any non-test Go file
// of the repository, that is, when no code exports it.
//
// Its only code, dashboard.go, lists the dashboard's queries and expands
// Grafana's variables in them, for these tests and for the end-to-end test
// in cmd/deflectd that evaluates every query against a real Prometheus
// scraping `deflectd demo`.
package configtest
