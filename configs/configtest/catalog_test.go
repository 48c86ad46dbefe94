package configtest

import (
	"os"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/metrics"
)

// Every metric the dashboard and the alert rules use is in the catalog (and
// so, by the catalog's own tests, exported by the code and documented in
// docs/metrics.md).
func TestReferencedMetricsAreCatalogued(t *testing.T) {
	data, err := os.ReadFile("testdata/referenced-metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	known := metrics.Names()
	n := 0
	for _, name := range strings.Fields(string(data)) {
		n++
		if !known[name] {
			t.Errorf("%s is used by the dashboard or the rules but is not in the metrics catalog", name)
		}
	}
	if n == 0 {
		t.Fatal("no referenced metrics listed")
	}
}
