package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/deflectd/deflectd/ari/queuelog"
	"github.com/deflectd/deflectd/deflect/report"
)

// reportCmd computes contact-center KPIs from Asterisk's queue_log: the
// PBX's own record, so a manager sees what deflection changed in the
// numbers their queue reports already use. docs/report.md defines each KPI.
func reportCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: deflectd report [flags] queue_log... (paths, globs such as '/var/log/asterisk/queue_log*', .gz, or - for stdin)")
		fs.PrintDefaults()
	}
	short := fs.Duration("short-abandon", 10*time.Second, "abandons with a shorter wait are short abandons, left out of the abandonment rate")
	sl := fs.Duration("sl", 20*time.Second, "service level threshold T: answered within T")
	exitKey := fs.String("exit-key", "D", "the key deflected callers leave the queue with (deflectd.yaml calls.queue_exit_key)")
	from := fs.String("from", "", "only calls that entered the queue at or after this time (2006-01-02 or RFC 3339)")
	to := fs.String("to", "", "only calls that entered before this time (2006-01-02 or RFC 3339)")
	format := fs.String("format", "table", "table, csv or json")
	by := fs.String("by", "", "also split by period: hour, day or hour-of-week (in the local time zone, TZ)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		fmt.Fprintf(stderr, "deflectd report: -format %q: want table, csv or json\n", *format)
		return 2
	}
	buckets := map[string]func(report.Call) string{"": nil, "hour": report.Hour(time.Local), "day": report.Day(time.Local), "hour-of-week": report.HourOfWeek(time.Local)}
	bucket, ok := buckets[*by]
	if !ok {
		fmt.Fprintf(stderr, "deflectd report: -by %q: want hour, day or hour-of-week\n", *by)
		return 2
	}
	since, err := parseWhen(*from)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd report: -from:", err)
		return 2
	}
	until, err := parseWhen(*to)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd report: -to:", err)
		return 2
	}
	files, err := queuelog.Open(stdin, fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, "deflectd report:", err)
		return 2
	}
	defer files.Close()
	a := &report.Assembler{ExitKey: *exitKey}
	events, bad := 0, 0
	for {
		e, err := files.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *queuelog.LineError
		if errors.As(err, &le) {
			bad++
			fmt.Fprintln(stderr, "deflectd report: skipped", le)
			continue
		}
		if err != nil {
			fmt.Fprintln(stderr, "deflectd report:", err)
			return 1
		}
		events++
		a.Add(e)
	}
	var calls []report.Call
	for _, c := range a.Calls() {
		if (!since.IsZero() && c.Entered.Before(since)) || (!until.IsZero() && !c.Entered.Before(until)) {
			continue
		}
		calls = append(calls, c)
	}
	kpis := report.SummarizeBy(calls, report.Options{ShortAbandon: *short, ServiceLevel: *sl}, bucket)
	switch *format {
	case "csv":
		err = report.WriteCSV(stdout, kpis)
	case "json":
		err = report.WriteJSON(stdout, kpis)
	default:
		err = report.WriteTable(stdout, kpis)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deflectd report:", err)
		return 1
	}
	fmt.Fprintf(stderr, "deflectd report: %d events, %d queue visits, %d bad lines skipped, %d events that fit no visit\n",
		events, len(calls), bad, len(a.Problems))
	for i, p := range a.Problems {
		if i == 5 {
			fmt.Fprintf(stderr, "  ... and %d more\n", len(a.Problems)-5)
			break
		}
		fmt.Fprintln(stderr, "  "+p)
	}
	return 0
}

// parseWhen reads a date or an RFC 3339 time; "" is no bound.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want 2006-01-02 or RFC 3339", s)
	}
	return t, nil
}
