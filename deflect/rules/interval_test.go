package rules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/deflect/rules"
)

const officeHours = `
time_intervals:
  - name: office
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '18:00'}]
        location: America/Argentina/Buenos_Aires
  - name: never
    time_intervals: []
route:
  action: none
`

func office(t *testing.T) (rules.Interval, *time.Location) {
	t.Helper()
	rs, err := rules.Load(strings.NewReader(officeHours))
	if err != nil {
		t.Fatal(err)
	}
	iv, ok := rs.Interval("office")
	if !ok {
		t.Fatalf("Interval(office) not found; have %v", rs.Intervals())
	}
	loc, err := time.LoadLocation("America/Argentina/Buenos_Aires")
	if err != nil {
		t.Fatal(err)
	}
	return iv, loc
}

func TestIntervalActive(t *testing.T) {
	iv, loc := office(t)
	at := func(d, h, m int) time.Time { return time.Date(2026, 1, d, h, m, 0, 0, loc) } // 5 Jan 2026 is a Monday
	tests := []struct {
		name     string
		from, to time.Time
		want     time.Duration
	}{
		{"inside", at(5, 10, 0), at(5, 10, 5), 5 * time.Minute},
		{"across the close", at(5, 17, 55), at(6, 9, 5), 10 * time.Minute},
		{"over the weekend", at(9, 17, 50), at(12, 9, 10), 20 * time.Minute},
		{"all outside", at(5, 19, 0), at(6, 8, 0), 0},
		{"a whole week", at(5, 0, 0), at(12, 0, 0), 45 * time.Hour},
		{"empty range", at(5, 10, 0), at(5, 10, 0), 0},
		{"reversed", at(5, 11, 0), at(5, 10, 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := iv.Active(tt.from, tt.to); got != tt.want {
				t.Errorf("Active(%v, %v) = %v, want %v", tt.from, tt.to, got, tt.want)
			}
		})
	}
}

func TestIntervalAddActive(t *testing.T) {
	iv, loc := office(t)
	at := func(d, h, m int) time.Time { return time.Date(2026, 1, d, h, m, 0, 0, loc) }
	tests := []struct {
		name string
		from time.Time
		d    time.Duration
		want time.Time
	}{
		{"inside", at(5, 10, 0), 5 * time.Minute, at(5, 10, 5)},
		{"before opening", at(5, 7, 0), 5 * time.Minute, at(5, 9, 5)},
		{"across the close", at(5, 17, 58), 5 * time.Minute, at(6, 9, 3)},
		{"friday evening to monday", at(9, 17, 50), 15 * time.Minute, at(12, 9, 5)},
		{"zero is due at once", at(10, 3, 0), 0, at(10, 3, 0)},
		{"exactly at the close", at(5, 17, 55), 5 * time.Minute, at(5, 18, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := iv.AddActive(tt.from, tt.d)
			if !got.Equal(tt.want) {
				t.Errorf("AddActive(%v, %v) = %v, want %v", tt.from, tt.d, got, tt.want)
			}
			if tt.d > 0 {
				if back := iv.Active(tt.from, got); back != tt.d {
					t.Errorf("Active(from, AddActive(from, %v)) = %v, want %v", tt.d, back, tt.d)
				}
			}
		})
	}
}

func TestIntervalNever(t *testing.T) {
	rs, err := rules.Load(strings.NewReader(officeHours))
	if err != nil {
		t.Fatal(err)
	}
	never, ok := rs.Interval("never")
	if !ok {
		t.Fatal("Interval(never) not found")
	}
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	if got := never.AddActive(now, time.Minute); !got.IsZero() {
		t.Errorf("never.AddActive = %v, want the zero time", got)
	}
	if got := never.Active(now, now.Add(time.Hour)); got != 0 {
		t.Errorf("never.Active = %v, want 0", got)
	}
	var zero rules.Interval
	if zero.Contains(now) || !zero.AddActive(now, time.Minute).IsZero() {
		t.Error("the zero Interval is active")
	}
	if _, ok := rs.Interval("nope"); ok {
		t.Error("Interval(nope) found")
	}
}
