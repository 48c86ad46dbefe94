package ewt

import (
	"math"
	"time"
)

// maxWait caps an estimate so the conversion from seconds cannot overflow a
// time.Duration; no queue keeps a caller this long.
const maxWait = 1000 * time.Hour

// QL is the queue-length estimator with abandonment (QL_m, Ibrahim and Whitt
// 2009): the expected wait until an agent takes a caller who has ahead
// callers in front of it, when agents agents are all busy, a call holds an
// agent for handle on average (μ = 1/handle), and every waiting caller
// abandons at abandonRate per second (θ):
//
//	Σ_{i=0}^{ahead} 1 / (agents·μ + i·θ)
//
// With abandonRate 0 it is (ahead+1)·handle/agents.
//
// ok is false, and the estimate unknown, when there is no agent logged in
// (agents ≤ 0), no usable handle time (handle ≤ 0), or ahead or abandonRate
// is negative or not a number: a caller is better told nothing than a
// made-up figure.
func QL(ahead, agents int, handle time.Duration, abandonRate float64) (wait time.Duration, ok bool) {
	if agents <= 0 || handle <= 0 || ahead < 0 || !(abandonRate >= 0) || math.IsInf(abandonRate, 1) {
		return 0, false
	}
	sMu := float64(agents) / handle.Seconds()
	var sec float64
	if abandonRate == 0 {
		sec = float64(ahead+1) / sMu
	} else {
		for i := range ahead + 1 {
			sec += 1 / (sMu + float64(i)*abandonRate)
		}
	}
	return seconds(sec), true
}

// seconds converts s seconds to a Duration rounded to the nanosecond, capped
// at maxWait.
func seconds(s float64) time.Duration {
	if s >= maxWait.Seconds() {
		return maxWait
	}
	return time.Duration(math.Round(s * float64(time.Second)))
}
