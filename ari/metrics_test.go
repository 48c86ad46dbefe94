package ari

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// Every op a request names is in restOps, so its series exist at zero.
func TestRESTOpsListed(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`op: "([a-z_]+)"|c\.subscription\(ctx, "([a-z]+)"`)
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			op := m[1] + m[2]
			if !slices.Contains(restOps[:], op) {
				t.Errorf("%s: op %q is not in restOps", f, op)
			}
		}
	}
}
