package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file holds time intervals in the shape of Alertmanager's
// time_intervals: named lists of (times, weekdays, days_of_month, months,
// years, location). Every field given must hold; within a field, any of its
// ranges. Membership depends only on the wall clock in the interval's
// location, so it is evaluated there and is DST-safe: 09:00 is 09:00 local
// on both sides of a clock change.

// timeInterval is one entry of a named interval's list.
type timeInterval struct {
	times       []intRange // minutes of the day, [begin, end)
	weekdays    []intRange // 0 = Sunday, inclusive
	daysOfMonth []intRange // 1..31 or -31..-1 from the end of the month, inclusive
	months      []intRange // 1..12, inclusive
	years       []intRange // inclusive
	loc         *time.Location
}

type intRange struct{ begin, end int }

// namedInterval is a time_intervals entry: active when any of its entries
// contains the time. An empty list is never active.
type namedInterval struct {
	name  string
	specs []timeInterval
}

func (n *namedInterval) contains(t time.Time) bool {
	for i := range n.specs {
		if n.specs[i].contains(t) {
			return true
		}
	}
	return false
}

// nextChange returns a moment after t no later than the first moment at
// which contains can change, or the zero time if it never can.
func (n *namedInterval) nextChange(t time.Time) time.Time {
	var next time.Time
	for i := range n.specs {
		next = earliest(next, n.specs[i].nextChange(t), t)
	}
	return next
}

func (ti *timeInterval) contains(t time.Time) bool {
	t = t.In(ti.loc)
	if ti.times != nil {
		m := t.Hour()*60 + t.Minute()
		if !anyRange(ti.times, func(r intRange) bool { return m >= r.begin && m < r.end }) {
			return false
		}
	}
	if ti.weekdays != nil {
		wd := int(t.Weekday())
		if !anyRange(ti.weekdays, func(r intRange) bool { return wd >= r.begin && wd <= r.end }) {
			return false
		}
	}
	if ti.daysOfMonth != nil {
		days := daysIn(t)
		day := t.Day()
		if !anyRange(ti.daysOfMonth, func(r intRange) bool {
			begin, end := r.begin, r.end
			if begin < 0 {
				begin += days + 1
			}
			if end < 0 {
				end += days + 1
			}
			// As in Alertmanager: a range that starts after the end of
			// this month (31 in April) does not apply to it, and one that
			// ends after it is clamped.
			if begin > days {
				return false
			}
			return day >= max(begin, 1) && day <= min(end, days)
		}) {
			return false
		}
	}
	if ti.months != nil {
		mo := int(t.Month())
		if !anyRange(ti.months, func(r intRange) bool { return mo >= r.begin && mo <= r.end }) {
			return false
		}
	}
	if ti.years != nil {
		y := t.Year()
		if !anyRange(ti.years, func(r intRange) bool { return y >= r.begin && y <= r.end }) {
			return false
		}
	}
	return true
}

// nextChange returns the first of: the next local midnight, the next local
// start_time or end_time of the day, and the next change of the location's
// UTC offset. Between now and then the wall clock runs without a jump and
// crosses no day or time-of-day boundary, so membership cannot change; the
// moment returned may come earlier than a real change (a midnight that
// changes nothing), never later.
func (ti *timeInterval) nextChange(t time.Time) time.Time {
	local := t.In(ti.loc)
	h, m, s := local.Clock()
	sinceMidnight := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(local.Nanosecond())
	// The offset is constant until the zone's end, so wall-clock
	// arithmetic is exact before it; the zone's end is itself a
	// candidate.
	next := t.Add(24*time.Hour - sinceMidnight)
	for _, r := range ti.times {
		for _, b := range []int{r.begin, r.end} {
			if d := time.Duration(b)*time.Minute - sinceMidnight; d > 0 {
				next = earliest(next, t.Add(d), t)
			}
		}
	}
	if _, end := local.ZoneBounds(); !end.IsZero() {
		next = earliest(next, end, t)
	}
	return next
}

func anyRange(rs []intRange, f func(intRange) bool) bool {
	for _, r := range rs {
		if f(r) {
			return true
		}
	}
	return false
}

func daysIn(t time.Time) int {
	return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// earliest returns the earlier of a and b among those after now, or the
// zero time if neither is.
func earliest(a, b, now time.Time) time.Time {
	aOK, bOK := a.After(now), b.After(now)
	switch {
	case aOK && bOK:
		if b.Before(a) {
			return b
		}
		return a
	case aOK:
		return a
	case bOK:
		return b
	}
	return time.Time{}
}

var (
	weekdayNames = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
	monthNames   = map[string]int{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6,
		"july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12}
	clockRE = regexp.MustCompile(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`)
)

// parseClock parses "HH:MM" (00:00 to 24:00) into minutes of the day.
func parseClock(s string) (int, error) {
	if !clockRE.MatchString(s) {
		return 0, fmt.Errorf("%q: want HH:MM from 00:00 to 24:00", s)
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	return h*60 + m, nil
}

// parseRange parses "a" or "a:b" with item parsing one bound.
func parseRange(s string, item func(string) (int, error)) (intRange, error) {
	s = strings.TrimSpace(s)
	a, b, isRange := strings.Cut(s, ":")
	begin, err := item(strings.TrimSpace(a))
	if err != nil {
		return intRange{}, err
	}
	end := begin
	if isRange {
		if end, err = item(strings.TrimSpace(b)); err != nil {
			return intRange{}, err
		}
	}
	return intRange{begin, end}, nil
}

func parseWeekdays(s string) (intRange, error) {
	r, err := parseRange(s, func(v string) (int, error) {
		d, ok := weekdayNames[strings.ToLower(v)]
		if !ok {
			return 0, fmt.Errorf("%q: want a weekday name such as monday", v)
		}
		return d, nil
	})
	if err == nil && r.begin > r.end {
		err = fmt.Errorf("%q: the week starts on sunday, so a range must not end before it begins (list both parts instead)", s)
	}
	return r, err
}

func parseDaysOfMonth(s string) (intRange, error) {
	r, err := parseRange(s, func(v string) (int, error) {
		d, err := strconv.Atoi(v)
		if err != nil || d == 0 || d < -31 || d > 31 {
			return 0, fmt.Errorf("%q: want a day from 1 to 31, or -1 to -31 counting from the end of the month", v)
		}
		return d, nil
	})
	if err != nil {
		return r, err
	}
	// Compared as in a 31-day month, as Alertmanager does: "1:-1" is the
	// whole month, "-1:1" is an error.
	b, e := r.begin, r.end
	if b < 0 {
		b += 32
	}
	if e < 0 {
		e += 32
	}
	if b > e {
		return r, fmt.Errorf("%q: the range ends before it begins", s)
	}
	return r, nil
}

func parseMonths(s string) (intRange, error) {
	r, err := parseRange(s, func(v string) (int, error) {
		if m, ok := monthNames[strings.ToLower(v)]; ok {
			return m, nil
		}
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > 12 {
			return 0, fmt.Errorf("%q: want a month name such as january, or 1 to 12", v)
		}
		return m, nil
	})
	if err == nil && r.begin > r.end {
		err = fmt.Errorf("%q: the range ends before it begins", s)
	}
	return r, err
}

func parseYears(s string) (intRange, error) {
	r, err := parseRange(s, func(v string) (int, error) {
		y, err := strconv.Atoi(v)
		if err != nil || y < 1 || y > 9999 {
			return 0, fmt.Errorf("%q: want a year such as 2026", v)
		}
		return y, nil
	})
	if err == nil && r.begin > r.end {
		err = fmt.Errorf("%q: the range ends before it begins", s)
	}
	return r, err
}

func parseLocation(s string) (*time.Location, error) {
	if s == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "time: "))
	}
	return loc, nil
}
