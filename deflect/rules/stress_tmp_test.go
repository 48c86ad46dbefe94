package rules

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestStressTmp(t *testing.T) {
	r := testRules(t)
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "sales", "support", "spain", "2", "9", "billing", "tech", "order_status", "es", "en", "none"}
	pick := func() string { return strs[rng.IntN(len(strs))] }
	var worst time.Duration
	for i := 0; i < 200000; i++ {
		c := Call{Queue: pick(), Option: pick(), Reason: pick(), Language: pick(),
			Entered: fuzzTime(rng.Int64() - rng.Int64()), EWT: time.Duration(rng.Int64() - rng.Int64()), Position: rng.IntN(30) - 5, Offers: rng.IntN(5) - 1,
			LastOffer: fuzzTime(rng.Int64() - rng.Int64()), Declined: rng.IntN(2) == 0, Abandoned: rng.IntN(3) == 0, AbandonedAt: fuzzTime(rng.Int64() - rng.Int64())}
		now := time.Unix(0, rng.Int64()-rng.Int64())
		start := time.Now()
		d := r.Evaluate(c, now)
		if el := time.Since(start); el > worst {
			worst = el
			t.Logf("slow %s: %+v %s %v", el, c, now, d)
		}
	}
}
