package queuelog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Rotated files are read oldest first, the gzipped ones through gzip,
// then stdin; a pattern that matches nothing is an error.
func TestOpenRotations(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		data := []byte(text)
		if strings.HasSuffix(name, ".gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	write("queue_log.2.gz", "1795230000|a|sales|NONE|ENTERQUEUE||+1|1\n", 48*time.Hour)
	write("queue_log.1", "1795240000|a|sales|NONE|ABANDON|1|1|9\n", 24*time.Hour)
	write("queue_log", "1795250000|b|sales|NONE|ENTERQUEUE||+2|1\n", 0)

	f, err := Open(strings.NewReader("1795260000|b|sales|NONE|EXITWITHKEY|D|1|1|4\n"), filepath.Join(dir, "queue_log*"), "-")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.CallID+" "+e.Event)
	}
	if want := []string{"a ENTERQUEUE", "a ABANDON", "b ENTERQUEUE", "b EXITWITHKEY"}; !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}

	if _, err := Open(nil, filepath.Join(dir, "nope*")); err == nil {
		t.Error("Open of a pattern matching nothing = nil error")
	}
	if _, err := Open(nil); err == nil {
		t.Error("Open of nothing = nil error")
	}
	os.WriteFile(filepath.Join(dir, "broken.gz"), []byte("not gzip"), 0o644)
	f, _ = Open(nil, filepath.Join(dir, "broken.gz"))
	if _, err := f.Next(); err == nil || err == io.EOF || errors.As(err, new(*LineError)) {
		t.Errorf("Next of a file that is not gzip = %v, want an error naming it", err)
	}
}
