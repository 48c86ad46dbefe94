// Package retry holds the two pieces every retry loop of deflectd shares:
// the jittered exponential delay (ARI reconnects, outbox retries) and a wait
// that ends with its context. One implementation, so its overflow guard and
// its tests live in one place.
package retry

import (
	"context"
	"time"
)

// Delay is the wait before attempt n (from 0): min·2ⁿ capped at max, with
// "equal jitter": half of it fixed, half random (r in [0,1)), so many
// clients failing together spread out but none retries at once.
func Delay(n int, min, max time.Duration, r float64) time.Duration {
	d := max
	if n >= 0 && n < 63 && min <= max>>n { // then min<<n ≤ max: the shift cannot overflow
		d = min << n
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// Sleep waits d or until ctx ends, and reports whether it waited d.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
