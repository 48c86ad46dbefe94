package asterisktest

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// QueueLogEntry is one line of Asterisk's queue_log:
//
//	epoch|callid|queue|agent|event|data1|data2|...
//
// for example "1795234876|1795234870.2-q2|sales|Agent One|CONNECT|6|1795234870.5|6".
type QueueLogEntry struct {
	Time   time.Time // the epoch column (second precision)
	CallID string    // uniqueid of the channel in Queue(), "NONE" for queue-wide events
	Queue  string    // queue name, "NONE" for events such as QUEUESTART
	Agent  string    // member name (log_membername_as_agent) or "NONE"
	Event  string    // ENTERQUEUE, CONNECT, ABANDON, RINGNOANSWER, ...
	Data   []string  // the remaining columns, event specific (may be empty)
}

// String renders the entry back in queue_log format.
func (e QueueLogEntry) String() string {
	cols := append([]string{strconv.FormatInt(e.Time.Unix(), 10), e.CallID, e.Queue, e.Agent, e.Event}, e.Data...)
	return strings.Join(cols, "|")
}

// ParseQueueLog parses queue_log lines. Blank lines are skipped; a line with
// fewer than five columns or a non-numeric time is an error. Trailing empty
// data columns are kept (ENTERQUEUE's first data column, the URL, is
// usually empty).
func ParseQueueLog(r io.Reader) ([]QueueLogEntry, error) {
	var out []QueueLogEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := ParseQueueLogLine(line)
		if err != nil {
			return out, fmt.Errorf("queue_log line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ParseQueueLogLine parses a single queue_log line.
func ParseQueueLogLine(line string) (QueueLogEntry, error) {
	cols := strings.Split(line, "|")
	if len(cols) < 5 {
		return QueueLogEntry{}, fmt.Errorf("want at least 5 columns, got %d: %q", len(cols), line)
	}
	ts := cols[0]
	var t time.Time
	// Epoch seconds, optionally with a fraction (queue_log_realtime_use_gmt
	// and similar options do not change the file format).
	if sec, frac, ok := strings.Cut(ts, "."); ok {
		s, err1 := strconv.ParseInt(sec, 10, 64)
		f, err2 := strconv.ParseFloat("0."+frac, 64)
		if err1 != nil || err2 != nil {
			return QueueLogEntry{}, fmt.Errorf("bad time %q", ts)
		}
		t = time.Unix(s, int64(f*1e9))
	} else {
		s, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return QueueLogEntry{}, fmt.Errorf("bad time %q", ts)
		}
		t = time.Unix(s, 0)
	}
	e := QueueLogEntry{Time: t, CallID: cols[1], Queue: cols[2], Agent: cols[3], Event: cols[4]}
	if len(cols) > 5 {
		e.Data = cols[5:]
	}
	return e, nil
}

// FilterQueueLog returns the entries for which keep returns true.
func FilterQueueLog(entries []QueueLogEntry, keep func(QueueLogEntry) bool) []QueueLogEntry {
	var out []QueueLogEntry
	for _, e := range entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
