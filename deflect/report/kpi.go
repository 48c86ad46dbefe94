package report

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Options are the thresholds the KPIs depend on.
type Options struct {
	// ShortAbandon: an abandon with a shorter wait is a short abandon,
	// counted apart and left out of the abandonment rate (a misdial, a
	// caller who heard the greeting and left). Default 10 s.
	ShortAbandon time.Duration
	// ServiceLevel is the T of "answered within T". Default 20 s.
	ServiceLevel time.Duration
}

func (o *Options) defaults() {
	if o.ShortAbandon <= 0 {
		o.ShortAbandon = 10 * time.Second
	}
	if o.ServiceLevel <= 0 {
		o.ServiceLevel = 20 * time.Second
	}
}

// KPIs are one queue's figures over a set of calls. docs/report.md defines
// each with a worked example.
type KPIs struct {
	Queue string
	// Bucket is the period of a SummarizeBy, "" for Summarize.
	Bucket string
	// Offered counts the visits that ended in the log (Open ones apart).
	Offered, Answered, Abandoned, ShortAbandoned, Deflected, ExitKey, Timeout, ExitEmpty, Open int
	Transferred, RingNoAnswers                                                                 int

	// AbandonRate = Abandoned / (Offered − ShortAbandoned). Deflected
	// calls stay in the denominator: they were queued, and not lost.
	AbandonRate float64
	// ASA is the mean wait of answered calls; AHT their mean talk time
	// (queue_log has no hold or after-call work).
	ASA, AHT time.Duration
	// SLAnswered is Asterisk's SL: answered within T / answered.
	// SLOffered: answered within T / (Offered − ShortAbandoned).
	// SL2 is Asterisk's SL2: (answered within T + abandoned within T) /
	// (answered + abandoned), short abandons included.
	SLAnswered, SLOffered, SL2 float64
	// AnsweredWaits and AbandonWaits are the waits, sorted, for
	// distributions.
	AnsweredWaits, AbandonWaits []time.Duration
}

// Summarize computes the KPIs of each queue, by queue name.
func Summarize(calls []Call, o Options) map[string]*KPIs {
	return SummarizeBy(calls, o, nil)
}

// SummarizeBy computes the KPIs of each queue and period: bucket names a
// call's period (see Hour, Day, HourOfWeek). The map's keys are the queue
// and the bucket joined by a tab.
func SummarizeBy(calls []Call, o Options, bucket func(Call) string) map[string]*KPIs {
	o.defaults()
	out := map[string]*KPIs{}
	for _, c := range calls {
		b := ""
		if bucket != nil {
			b = bucket(c)
		}
		key := c.Queue
		if bucket != nil {
			key += "\t" + b
		}
		k := out[key]
		if k == nil {
			k = &KPIs{Queue: c.Queue, Bucket: b}
			out[key] = k
		}
		k.add(c, o)
	}
	for _, k := range out {
		k.finish(o)
	}
	return out
}

func (k *KPIs) add(c Call, o Options) {
	if c.Outcome == Open {
		k.Open++
		return
	}
	k.Offered++
	k.RingNoAnswers += c.RingNoAnswers
	switch c.Outcome {
	case Answered:
		k.Answered++
		k.AnsweredWaits = append(k.AnsweredWaits, c.Wait)
		k.ASA += c.Wait // a sum until finish
		k.AHT += c.Talk
		if c.Transferred {
			k.Transferred++
		}
	case Abandoned:
		if c.Wait < o.ShortAbandon {
			k.ShortAbandoned++
		} else {
			k.Abandoned++
		}
		k.AbandonWaits = append(k.AbandonWaits, c.Wait)
	case Deflected:
		k.Deflected++
	case ExitKey:
		k.ExitKey++
	case Timeout:
		k.Timeout++
	case ExitEmpty:
		k.ExitEmpty++
	}
}

func (k *KPIs) finish(o Options) {
	slices.Sort(k.AnsweredWaits)
	slices.Sort(k.AbandonWaits)
	if k.Answered > 0 {
		k.ASA /= time.Duration(k.Answered)
		k.AHT /= time.Duration(k.Answered)
	}
	within := func(ws []time.Duration) int {
		n := 0
		for _, w := range ws {
			if w <= o.ServiceLevel {
				n++
			}
		}
		return n
	}
	ansIn, abIn := within(k.AnsweredWaits), within(k.AbandonWaits)
	k.AbandonRate = ratio(k.Abandoned, k.Offered-k.ShortAbandoned)
	k.SLAnswered = ratio(ansIn, k.Answered)
	k.SLOffered = ratio(ansIn, k.Offered-k.ShortAbandoned)
	k.SL2 = ratio(ansIn+abIn, k.Answered+k.Abandoned+k.ShortAbandoned)
}

func ratio(n, d int) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Periods for SummarizeBy, by the call's entry in loc: the hour
// ("2026-11-03 14:00"), the day ("2026-11-03"), and the hour of the week
// ("Tue 14"), which compares like with like across weeks.
func Hour(loc *time.Location) func(Call) string {
	return func(c Call) string { return c.Entered.In(loc).Format("2006-01-02 15:00") }
}

// Day: see Hour.
func Day(loc *time.Location) func(Call) string {
	return func(c Call) string { return c.Entered.In(loc).Format(time.DateOnly) }
}

// HourOfWeek: see Hour. It sorts Monday first ("1 Mon 14").
func HourOfWeek(loc *time.Location) func(Call) string {
	return func(c Call) string {
		t := c.Entered.In(loc)
		wd := (int(t.Weekday()) + 6) % 7 // Monday 0
		return fmt.Sprintf("%d %s %02d", wd+1, t.Format("Mon"), t.Hour())
	}
}

// Quantile returns the q-quantile of sorted durations by the nearest-rank
// method (the smallest value with at least q of the values at or below
// it), 0 for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
