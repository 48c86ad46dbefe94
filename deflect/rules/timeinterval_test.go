package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// loadInterval builds the time interval "x" from the YAML of its
// time_intervals list.
func loadInterval(t testing.TB, list string) *namedInterval {
	t.Helper()
	r := mustLoad(t, "time_intervals:\n  - name: x\n    time_intervals:\n"+list+"route:\n  routes: [{active_time_intervals: [x]}]\n")
	return r.root.children[0].active[0]
}

func TestTimeIntervalContains(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		name string
		list string
		in   []time.Time
		out  []time.Time
	}{
		{"times: start included, end excluded",
			"      - times: [{start_time: '09:00', end_time: '18:00'}]\n",
			[]time.Time{utc(2026, 1, 5, 9, 0), utc(2026, 1, 5, 17, 59)},
			[]time.Time{utc(2026, 1, 5, 8, 59), utc(2026, 1, 5, 18, 0)}},
		{"times: until midnight",
			"      - times: [{start_time: '22:00', end_time: '24:00'}]\n",
			[]time.Time{utc(2026, 1, 5, 23, 59)},
			[]time.Time{utc(2026, 1, 6, 0, 0)}},
		{"times: two ranges across midnight",
			"      - times: [{start_time: '22:00', end_time: '24:00'}, {start_time: '00:00', end_time: '06:00'}]\n",
			[]time.Time{utc(2026, 1, 5, 23, 0), utc(2026, 1, 6, 5, 59)},
			[]time.Time{utc(2026, 1, 6, 6, 0), utc(2026, 1, 5, 21, 59)}},
		{"weekdays: a range and a single day", // 5 January 2026 is a Monday
			"      - weekdays: ['monday:wednesday', saturday]\n",
			[]time.Time{utc(2026, 1, 5, 0, 0), utc(2026, 1, 7, 23, 59), utc(2026, 1, 10, 12, 0)},
			[]time.Time{utc(2026, 1, 8, 0, 0), utc(2026, 1, 11, 12, 0)}},
		{"days of month: from the end",
			"      - days_of_month: ['-1']\n",
			[]time.Time{utc(2026, 2, 28, 12, 0), utc(2028, 2, 29, 12, 0), utc(2026, 4, 30, 0, 0)},
			[]time.Time{utc(2028, 2, 28, 12, 0), utc(2026, 4, 29, 0, 0)}},
		{"days of month: 31 does not apply to April",
			"      - days_of_month: ['31']\n",
			[]time.Time{utc(2026, 1, 31, 0, 0)},
			[]time.Time{utc(2026, 4, 30, 0, 0), utc(2026, 5, 1, 0, 0)}},
		{"days of month: a range clamped to the month",
			"      - days_of_month: ['29:31']\n",
			[]time.Time{utc(2026, 4, 29, 0, 0), utc(2026, 4, 30, 0, 0)},
			[]time.Time{utc(2026, 5, 1, 0, 0), utc(2026, 2, 28, 0, 0)}},
		{"days of month: first to last",
			"      - days_of_month: ['1:-1']\n",
			[]time.Time{utc(2026, 2, 1, 0, 0), utc(2026, 2, 28, 0, 0)},
			nil},
		{"months and years",
			"      - {months: ['march:may'], years: ['2026']}\n",
			[]time.Time{utc(2026, 3, 1, 0, 0), utc(2026, 5, 31, 23, 59)},
			[]time.Time{utc(2026, 6, 1, 0, 0), utc(2027, 4, 1, 0, 0)}},
		{"every field must hold; any entry may",
			"      - {weekdays: [monday], times: [{start_time: '09:00', end_time: '10:00'}]}\n      - {days_of_month: ['25'], months: [december]}\n",
			[]time.Time{utc(2026, 1, 5, 9, 30), utc(2026, 12, 25, 20, 0)},
			[]time.Time{utc(2026, 1, 5, 10, 30), utc(2026, 1, 6, 9, 30), utc(2026, 11, 25, 20, 0)}},
		{"location: local wall clock, across DST",
			"      - {times: [{start_time: '09:00', end_time: '10:00'}], location: America/New_York}\n",
			// 13:30 UTC is 09:30 EDT (summer) but 08:30 EST (winter).
			[]time.Time{utc(2026, 7, 1, 13, 30), utc(2026, 1, 5, 14, 30)},
			[]time.Time{utc(2026, 1, 5, 13, 30), utc(2026, 7, 1, 14, 30)}},
		{"location: the day is the local day",
			"      - {weekdays: [monday], location: Asia/Tokyo}\n",
			// Sunday 4 January 2026 20:00 UTC is Monday 05:00 in Tokyo.
			[]time.Time{utc(2026, 1, 4, 20, 0)},
			[]time.Time{utc(2026, 1, 5, 16, 0)}},
		{"an empty entry matches everything",
			"      - {}\n",
			[]time.Time{utc(2026, 1, 4, 20, 0), {}},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv := loadInterval(t, tt.list)
			for _, at := range tt.in {
				if !iv.contains(at) {
					t.Errorf("contains(%s) = false, want true", at)
				}
			}
			for _, at := range tt.out {
				if iv.contains(at) {
					t.Errorf("contains(%s) = true, want false", at)
				}
			}
		})
	}
	empty := loadInterval(t, "      []\n")
	if empty.contains(utc(2026, 1, 1, 0, 0)) {
		t.Errorf("an empty time_intervals list contains(...) = true, want false")
	}
}

// nextChange must never be late: membership is the same at every moment
// from t up to (not including) nextChange(t). Checked minute by minute
// (and just before the change) around DST changes, including Lord Howe
// Island's half-hour one.
func TestTimeIntervalNextChangeNeverLate(t *testing.T) {
	lists := map[string]string{
		"madrid hours":    "      - {weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '14:00'}], location: Europe/Madrid}\n",
		"madrid gap":      "      - {times: [{start_time: '02:30', end_time: '03:30'}], location: Europe/Madrid}\n",
		"new york repeat": "      - {times: [{start_time: '01:15', end_time: '01:45'}], location: America/New_York}\n",
		"lord howe":       "      - {times: [{start_time: '01:50', end_time: '02:10'}, {start_time: '02:20', end_time: '02:40'}], location: Australia/Lord_Howe}\n",
		"month end":       "      - {days_of_month: ['-1'], times: [{start_time: '23:00', end_time: '24:00'}], location: America/Argentina/Buenos_Aires}\n",
	}
	starts := []time.Time{
		time.Date(2025, 3, 29, 20, 0, 0, 0, time.UTC),  // Europe: forward on 30 March
		time.Date(2025, 10, 25, 20, 0, 0, 0, time.UTC), // Europe: back on 26 October
		time.Date(2025, 3, 8, 20, 0, 0, 0, time.UTC),   // US: forward on 9 March
		time.Date(2025, 11, 1, 20, 0, 0, 0, time.UTC),  // US: back on 2 November
		time.Date(2025, 4, 5, 0, 0, 0, 0, time.UTC),    // Lord Howe: back 30 min on 6 April
		time.Date(2025, 10, 4, 0, 0, 0, 0, time.UTC),   // Lord Howe: forward 30 min on 5 October
		time.Date(2025, 1, 30, 20, 0, 0, 0, time.UTC),  // a month end
	}
	for name, list := range lists {
		iv := loadInterval(t, list)
		for _, start := range starts {
			t.Run(fmt.Sprintf("%s from %s", name, start.Format(time.DateTime)), func(t *testing.T) {
				for at := start; at.Before(start.Add(48 * time.Hour)); at = at.Add(7*time.Minute + 13*time.Second) {
					next := iv.nextChange(at)
					if !next.After(at) {
						t.Fatalf("nextChange(%s) = %s, want a time after it", at, next)
					}
					if next.Sub(at) > 25*time.Hour {
						t.Fatalf("nextChange(%s) = %s, want at most a day later", at, next)
					}
					in := iv.contains(at)
					for m := at; m.Before(next); m = m.Add(time.Minute) {
						if iv.contains(m) != in {
							t.Fatalf("nextChange(%s) = %s, but contains changes by %s", at, next, m)
						}
					}
					if before := next.Add(-time.Nanosecond); iv.contains(before) != in {
						t.Fatalf("nextChange(%s) = %s, but contains changes by %s", at, next, before)
					}
				}
			})
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{
		{"00:00", 0, false}, {"09:30", 570, false}, {"23:59", 1439, false}, {"24:00", 1440, false},
		{"24:01", 0, true}, {"9:30", 0, true}, {"09:60", 0, true}, {"", 0, true}, {"09:30:00", 0, true},
	}
	for _, tt := range tests {
		got, err := parseClock(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("parseClock(%q) = %d, %v, want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseRanges(t *testing.T) {
	tests := []struct {
		parse func(string) (intRange, error)
		in    string
		want  intRange
		err   string
	}{
		{parseWeekdays, "Monday", intRange{1, 1}, ""},
		{parseWeekdays, "sunday:saturday", intRange{0, 6}, ""},
		{parseWeekdays, " monday : friday ", intRange{1, 5}, ""},
		{parseWeekdays, "friday:monday", intRange{5, 1}, "must not end before"},
		{parseDaysOfMonth, "-7:-1", intRange{-7, -1}, ""},
		{parseDaysOfMonth, "1:-1", intRange{1, -1}, ""},
		{parseDaysOfMonth, "-32", intRange{}, "want a day"},
		{parseMonths, "february:4", intRange{2, 4}, ""},
		{parseMonths, "0", intRange{}, "want a month"},
		{parseYears, "2025:2027", intRange{2025, 2027}, ""},
		{parseYears, "0", intRange{}, "want a year"},
		{parseYears, "2025:", intRange{}, "want a year"},
	}
	for _, tt := range tests {
		got, err := tt.parse(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parse(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parse(%q) = %v, %v, want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}
