package deflect

import (
	"context"
	"strconv"
	"time"

	"github.com/deflectd/deflectd/deflect/ewt"
	"go.uber.org/zap"
)

// tracker returns the EWT tracker of a queue, creating it on first use.
func (e *Engine) tracker(queue string) *ewt.Queue {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.queues[queue]
	if q == nil {
		var err error
		if q, err = ewt.NewQueue(ewt.Options{}); err != nil {
			panic(err) // the zero Options are valid; anything else is a bug
		}
		e.queues[queue] = q
	}
	return q
}

// estimate returns the call's estimated remaining wait (0 when unknown) and
// its position, and refreshes the queue's EWT gauges.
func (e *Engine) estimate(queue, callID string, now time.Time) (time.Duration, int) {
	q := e.tracker(queue)
	est := q.Estimate(callID, now)
	j := q.Joining()
	if j.QLOk {
		e.metrics.ewt.WithLabelValues(queue, "ql").Set(j.QL.Seconds())
	}
	e.metrics.ewt.WithLabelValues(queue, "app_queue").Set(j.EWMA.Seconds())
	if !est.QLOk {
		return 0, est.Position
	}
	return est.QL, est.Position
}

// refreshAgents reads the queue's logged-in and ready agents through a
// channel in the application (dialplan functions need one) and gives them
// to the tracker. A failure leaves the last known numbers.
func (c *call) refreshAgents(ctx context.Context) {
	get := func(fn string) (int, bool) {
		v, err := c.e.opts.ARI.GetVariable(ctx, c.id, "QUEUE_MEMBER("+c.rec.Queue+","+fn+")")
		if err != nil {
			c.log.Debug("deflect: reading queue members", zap.String("function", fn), zap.Error(err))
			return 0, false
		}
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	logged, ok1 := get("logged")
	ready, ok2 := get("ready")
	if ok1 && ok2 {
		c.e.tracker(c.rec.Queue).SetAgents(logged, ready)
	}
}
