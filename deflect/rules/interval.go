package rules

import (
	"slices"
	"time"
)

// Interval is one named entry of a rules file's time_intervals. It is
// exported so that the rest of deflectd keeps one calendar: the inbox's
// business hours name an interval of the rules file instead of defining
// office hours a second time. The zero Interval is never active.
type Interval struct{ n *namedInterval }

// Interval returns the time interval of that name, and false when the file
// defines none.
func (r *Rules) Interval(name string) (Interval, bool) {
	n, ok := r.intervals[name]
	return Interval{n}, ok
}

// Intervals returns the names of the file's time intervals, sorted.
func (r *Rules) Intervals() []string {
	names := make([]string, 0, len(r.intervals))
	for name := range r.intervals {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Name returns the interval's name.
func (iv Interval) Name() string {
	if iv.n == nil {
		return ""
	}
	return iv.n.name
}

// Contains reports whether t lies inside the interval.
func (iv Interval) Contains(t time.Time) bool {
	return iv.n != nil && iv.n.contains(t)
}

// maxSteps bounds the walks of Active and AddActive. nextChange advances at
// least to the next local midnight, so this is over two years of days with
// several boundaries each: an interval active less often than that is as
// good as never.
const maxSteps = 8 * 800

// Active returns how much of [from, to) lies inside the interval: the
// business time between two moments. Membership can only change at the
// moments nextChange names, so the walk is exact.
func (iv Interval) Active(from, to time.Time) time.Duration {
	if iv.n == nil || !to.After(from) {
		return 0
	}
	var total time.Duration
	t := from
	for range maxSteps {
		if !t.Before(to) {
			break
		}
		end := iv.n.nextChange(t)
		if end.IsZero() || end.After(to) {
			end = to
		}
		if iv.n.contains(t) {
			total += end.Sub(t)
		}
		t = end
	}
	return total
}

// AddActive returns the moment at which d of time inside the interval has
// passed since from: the due time of a business-hours deadline. It returns
// the zero time when the interval never accumulates d (an interval with no
// entries, or one that ends for good).
func (iv Interval) AddActive(from time.Time, d time.Duration) time.Time {
	if iv.n == nil {
		return time.Time{}
	}
	if d <= 0 {
		// A deadline already reached is due at once; waiting for the
		// next opening would hide it.
		return from
	}
	t, left := from, d
	for range maxSteps {
		end := iv.n.nextChange(t)
		if iv.n.contains(t) {
			if end.IsZero() || end.Sub(t) >= left {
				return t.Add(left)
			}
			left -= end.Sub(t)
		}
		if end.IsZero() {
			return time.Time{}
		}
		t = end
	}
	return time.Time{}
}
