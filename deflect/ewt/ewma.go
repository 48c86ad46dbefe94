package ewt

import "time"

// EWMA is app_queue's hold-time update, done each time a caller reaches an
// agent (recalc_holdtime in app_queue.c): holdtime = (3·old + wait)/4, in
// whole seconds with integer division, as Asterisk computes it. A new queue
// starts from 0, so the first few answered calls pull the average up only a
// quarter of the way each. A negative wait (a clock step) counts as 0.
func EWMA(old, wait time.Duration) time.Duration {
	o := max(int64(old/time.Second), 0)
	w := max(int64(wait/time.Second), 0)
	return time.Duration((3*o+w)/4) * time.Second
}

// Announce is the hold time app_queue announces to a caller who has waited
// elapsed in a queue whose EWMA hold time is holdtime (say_position in
// app_queue.c): |holdtime + 30 − elapsed| / 60, in whole minutes, the
// division truncating toward zero as in C. The +30 rounds to the nearest
// minute. The figure is the same for every position in the queue, and once a
// caller has waited longer than the average it grows again: 10 minutes into a
// wait in a queue whose average is 2 minutes, app_queue announces 7.
func Announce(holdtime, elapsed time.Duration) time.Duration {
	d := (int64(holdtime/time.Second) + 30 - int64(elapsed/time.Second)) / 60
	if d < 0 {
		d = -d
	}
	return time.Duration(d) * time.Minute
}
