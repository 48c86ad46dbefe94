package queuelog

import (
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Files reads queue_log from several sources in turn, as one stream: the
// live file, its rotations (queue_log.1, queue_log.2.gz, ...), stdin.
type Files struct {
	stdin   io.Reader
	sources []string
	cur     *Reader
	closer  io.Closer
}

// Open expands patterns into the sources to read, in order: each pattern
// is a path, a glob, or "-" for stdin. The files a glob matches are read
// oldest first by modification time, which is the order rotation leaves
// them in (logrotate keeps a rotated file's time). A path ending in .gz is
// read through gzip. A pattern that matches nothing is an error, so a typo
// does not pass for an empty month.
func Open(stdin io.Reader, patterns ...string) (*Files, error) {
	if len(patterns) == 0 {
		return nil, errors.New("queuelog: no queue_log given")
	}
	f := &Files{stdin: stdin}
	for _, p := range patterns {
		if p == "-" {
			f.sources = append(f.sources, p)
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("queuelog: %q: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("queuelog: %s: no such file", p)
		}
		type file struct {
			path string
			mod  int64
		}
		var fs []file
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil {
				return nil, fmt.Errorf("queuelog: %w", err)
			}
			if st.IsDir() {
				return nil, fmt.Errorf("queuelog: %s is a directory", m)
			}
			fs = append(fs, file{m, st.ModTime().UnixNano()})
		}
		slices.SortFunc(fs, func(a, b file) int {
			return cmp.Or(cmp.Compare(a.mod, b.mod), strings.Compare(a.path, b.path))
		})
		for _, x := range fs {
			f.sources = append(f.sources, x.path)
		}
	}
	return f, nil
}

// Sources returns what Files reads, in order.
func (f *Files) Sources() []string { return slices.Clone(f.sources) }

// Next returns the next event of the sources, a *LineError for a bad line
// (call Next again), or io.EOF after the last source. A source that cannot
// be opened or read ends the stream with that error.
func (f *Files) Next() (Event, error) {
	for {
		if f.cur == nil {
			if len(f.sources) == 0 {
				return Event{}, io.EOF
			}
			if err := f.open(f.sources[0]); err != nil {
				return Event{}, err
			}
			f.sources = f.sources[1:]
		}
		e, err := f.cur.Next()
		if err != io.EOF {
			return e, err
		}
		f.Close()
	}
}

func (f *Files) open(src string) error {
	if src == "-" {
		f.cur = NewReader(f.stdin, "stdin")
		return nil
	}
	file, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("queuelog: %w", err)
	}
	var r io.Reader = file
	if strings.HasSuffix(src, ".gz") {
		zr, err := gzip.NewReader(file)
		if err != nil {
			file.Close()
			return fmt.Errorf("queuelog: %s: %w", src, err)
		}
		r = zr
	}
	f.cur, f.closer = NewReader(r, src), file
	return nil
}

// Close closes the source being read, if any.
func (f *Files) Close() error {
	f.cur = nil
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}
