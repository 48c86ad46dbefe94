package retry

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const (
		ms = time.Millisecond
		s  = time.Second
	)
	tests := []struct {
		n        int
		min, max time.Duration
		r        float64
		want     time.Duration
	}{
		{0, 250 * ms, 30 * s, 0, 125 * ms},
		{0, 250 * ms, 30 * s, 0.5, 187500 * time.Microsecond},
		{1, 250 * ms, 30 * s, 0, 250 * ms},
		{2, 250 * ms, 30 * s, 0, 500 * ms},
		{6, 250 * ms, 30 * s, 0, 8 * s},
		{7, 250 * ms, 30 * s, 0, 15 * s},  // 32 s capped at 30 s
		{31, 250 * ms, 30 * s, 0, 15 * s}, // 250ms<<31 does not overflow
		{32, 250 * ms, 30 * s, 0, 15 * s},
		{63, 250 * ms, 30 * s, 0, 15 * s},
		{1000, 250 * ms, 30 * s, 0.5, 22500 * ms},
		{math.MaxInt, 250 * ms, 30 * s, 0, 15 * s},
		{3, s, s, 0, 500 * ms}, // min == max
		{30, 10 * s, 5 * time.Minute, 0, 150 * s},
		// min<<31 wraps around to a small positive number: it must not
		// pass for a delay.
		{31, 1<<33 + 1, time.Minute, 0, 30 * s},
		{30, 1<<34 + 1, time.Minute, 0, 30 * s},
	}
	for _, tt := range tests {
		if got := Delay(tt.n, tt.min, tt.max, tt.r); got != tt.want {
			t.Errorf("Delay(%d, %v, %v, %v) = %v, want %v", tt.n, tt.min, tt.max, tt.r, got, tt.want)
		}
	}
}

// TestDelayBounds checks the jitter range [d/2, d) for d = min·2ⁿ capped at
// max, over every n and several mins, including ones whose shift overflows.
func TestDelayBounds(t *testing.T) {
	capped := func(n int, min, max time.Duration) time.Duration {
		d := min
		for range n {
			if d >= max-d {
				return max
			}
			d *= 2
		}
		return d
	}
	for _, min := range []time.Duration{time.Millisecond, 250 * time.Millisecond, 3 * time.Second, 1<<33 + 1, 1<<40 + 12345} {
		for _, max := range []time.Duration{min, 30 * time.Second, time.Hour, math.MaxInt64} {
			if max < min {
				continue
			}
			for n := range 80 {
				d := capped(n, min, max)
				for _, r := range []float64{0, 0.25, 0.999} {
					if got := Delay(n, min, max, r); got < d/2 || got >= d {
						t.Fatalf("Delay(%d, %v, %v, %v) = %v, want in [%v, %v)", n, min, max, r, got, d/2, d)
					}
				}
			}
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep(cancelled ctx, 1h) = true, want false at once")
	}
	if !Sleep(context.Background(), time.Nanosecond) {
		t.Error("Sleep(ctx, 1ns) = false, want true")
	}
}
