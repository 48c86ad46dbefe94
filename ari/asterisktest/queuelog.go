package asterisktest

import (
	"io"

	"github.com/deflectd/deflectd/ari/queuelog"
)

// QueueLogEntry is one line of Asterisk's queue_log (ari/queuelog, which
// deflectd's reports read it with).
type QueueLogEntry = queuelog.Event

// ParseQueueLog parses queue_log lines, stopping at the first bad one.
// Blank lines are skipped.
func ParseQueueLog(r io.Reader) ([]QueueLogEntry, error) {
	var out []QueueLogEntry
	lr := queuelog.NewReader(r, "queue_log")
	for {
		e, err := lr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

// ParseQueueLogLine parses a single queue_log line.
func ParseQueueLogLine(line string) (QueueLogEntry, error) { return queuelog.Parse(line) }

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
