// Package ewt estimates how long a caller waiting in an Asterisk queue will
// still wait: per call, from its position, the agents logged in, the recent
// handle time and the recent abandonment rate. It does no I/O and reads no
// clock; every method takes the time it is asked about, so the estimate is a
// pure function of the events fed in and can be tested in virtual time.
//
// # Estimators
//
// The estimate deflectd decides on is the queue-length estimator with
// abandonment, QL_m in Ibrahim and Whitt ("Real-Time Delay Estimation in
// Overloaded Multiserver Queues with Abandonments", Management Science,
// 2009). A caller with n callers ahead, s agents all busy, mean handle time
// 1/μ and callers who abandon at rate θ each, reaches an agent after n+1
// departures from the line in front of it; while i callers are still ahead,
// the next departure comes at rate sμ + iθ (an agent frees up, or one of the i
// gives up), so
//
//	E[W] = Σ_{i=0}^{n} 1 / (sμ + iθ)
//
// which is (n+1)/(sμ) when nobody abandons (θ = 0). It is what QL computes.
// Ibrahim and Whitt find this estimator the most accurate of those they
// compare (queue-length and delay-history ones) whenever s, μ and θ can be
// estimated, and that the plain (n+1)/(sμ), which ignores abandonment,
// overestimates in overloaded queues, where abandonment is what keeps the
// line moving. It is position aware, so callers at different places hear
// different waits, and it moves during the wait as callers ahead leave,
// instead of freezing.
//
// app_queue's own estimate is computed alongside for comparison (EWMA,
// Announce). It is a delay-history estimator: an exponentially weighted
// average of the waits of the callers who reached an agent, in whole seconds,
// holdtime = (3·old + new)/4, starting from 0. What it announces is
// |holdtime + 30 − elapsed| / 60 whole minutes: one figure per queue, not per
// position, that lags a building queue by several answered calls and, past
// the average, grows again the longer a caller has waited.
//
// # Inputs
//
// Queue keeps the state of one Asterisk queue from the events the engine
// sees: callers entering and leaving the line (Entered, Answered, Abandoned,
// Left), talk times (Completed) and agent counts (SetAgents, typically from
// QUEUE_MEMBER(<q>,logged) and QUEUE_MEMBER(<q>,ready)). From them it derives:
//
//   - s: the agents logged in. With none known the QL estimate is reported as
//     unknown (QLOk false) rather than guessed.
//   - 1/μ: the mean of the last Options.HandleWindow talk times plus
//     Options.Wrapup, or Options.DefaultHandle before the first sample.
//   - θ: the maximum-likelihood rate of exponential patience over the last
//     Options.AbandonWindow finished waits: abandons divided by the total time
//     those callers spent waiting. Callers who were answered, or left for
//     another reason (a deflection to WhatsApp is not an abandon), count as
//     censored observations: their waiting time, no abandon. Until
//     Options.MinAbandonSamples waits have been seen, θ is
//     1/Options.DefaultPatience.
//   - n: the callers ahead, in order of entry time, less the agents free
//     right now (each free agent is about to take one of them).
package ewt
