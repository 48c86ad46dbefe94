// Package queuelog reads Asterisk's queue_log, the record every queue
// report is built from (Asterisk's own, QueueMetrics, a BI query), so that
// deflectd's reports answer from the PBX's numbers rather than its own.
//
// A queue_log line is
//
//	epoch|callid|queue|agent|event|data1|data2|...
//
// for example "1795234876|1795234870.2-q2|sales|Agent One|CONNECT|6|1795234870.5|6".
// Real files have bad lines: a line cut short by a crash or a rotation, an
// editor's stray line. A Reader reports each one as a *LineError naming the
// file and line, and goes on with the next, so that one bad line costs one
// line and not the report.
//
// It is written by hand: the format is a split on "|", and no maintained Go
// library reads it.
package queuelog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Event is one line of queue_log.
type Event struct {
	Time   time.Time // the epoch column (second precision, or finer when the file has it)
	CallID string    // uniqueid of the channel in Queue(), "NONE" for queue-wide events
	Queue  string    // queue name, "NONE" for events such as QUEUESTART
	Agent  string    // member name (log_membername_as_agent) or "NONE"
	Event  string    // ENTERQUEUE, CONNECT, ABANDON, EXITWITHKEY, RINGNOANSWER, ...
	Data   []string  // the remaining columns, event specific (may be empty)
}

// String renders the event back in queue_log format.
func (e Event) String() string {
	ts := strconv.FormatInt(e.Time.Unix(), 10)
	if ns := e.Time.Nanosecond(); ns != 0 {
		ts += strings.TrimRight(fmt.Sprintf(".%09d", ns), "0")
	}
	cols := append([]string{ts, e.CallID, e.Queue, e.Agent, e.Event}, e.Data...)
	return strings.Join(cols, "|")
}

// Parse reads one line (without its newline). A line with fewer than five
// columns, a time that is not epoch seconds, or no event is an error.
// Trailing empty data columns are kept (ENTERQUEUE's first data column, the
// URL, is usually empty).
func Parse(line string) (Event, error) {
	cols := strings.Split(line, "|")
	if len(cols) < 5 {
		return Event{}, fmt.Errorf("want at least 5 columns (time|callid|queue|agent|event), got %d", len(cols))
	}
	t, err := parseTime(cols[0])
	if err != nil {
		return Event{}, err
	}
	if cols[4] == "" {
		return Event{}, errors.New("no event in the fifth column")
	}
	e := Event{Time: t, CallID: cols[1], Queue: cols[2], Agent: cols[3], Event: cols[4]}
	if len(cols) > 5 {
		e.Data = cols[5:]
	}
	return e, nil
}

// parseTime reads epoch seconds, optionally with a fraction.
func parseTime(ts string) (time.Time, error) {
	sec, frac, hasFrac := strings.Cut(ts, ".")
	s, err := strconv.ParseUint(sec, 10, 63)
	if err != nil || sec == "" || (hasFrac && (frac == "" || len(frac) > 9)) {
		return time.Time{}, fmt.Errorf("bad time %q: want epoch seconds", ts)
	}
	var ns int64
	if hasFrac {
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad time %q: want epoch seconds", ts)
		}
		ns = int64(n)
		for range 9 - len(frac) {
			ns *= 10
		}
	}
	return time.Unix(int64(s), ns), nil
}

// LineError is a line that could not be read. The Reader that returned it
// goes on with the next line.
type LineError struct {
	Name string // the file, as given to NewReader
	Line int    // 1-based
	Text string // the line, cut to 200 bytes
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %v: %q", e.Name, e.Line, e.Err, e.Text)
}

func (e *LineError) Unwrap() error { return e.Err }

// Reader reads the events of one queue_log stream, line by line.
type Reader struct {
	name string
	sc   *bufio.Scanner
	line int
}

// maxLine bounds a line; queue_log lines are a few hundred bytes.
const maxLine = 64 << 10

// NewReader reads r; name labels its errors (a path, or "stdin").
func NewReader(r io.Reader, name string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	return &Reader{name: name, sc: sc}
}

// Next returns the next event, a *LineError for a bad line (call Next
// again for the one after it), or io.EOF at the end. Blank lines are
// skipped. A read error of r, or a line longer than 64 KiB, ends the
// stream with that error.
func (r *Reader) Next() (Event, error) {
	for r.sc.Scan() {
		r.line++
		text := strings.TrimRight(r.sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		e, err := Parse(text)
		if err != nil {
			if len(text) > 200 {
				text = text[:200]
			}
			return Event{}, &LineError{Name: r.name, Line: r.line, Text: text, Err: err}
		}
		return e, nil
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("%s: after line %d: %w", r.name, r.line, err)
	}
	return Event{}, io.EOF
}
