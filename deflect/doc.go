// Package deflect is the bridge itself: for every call the dialplan hands to
// the Stasis application, it keeps the caller waiting in the real Asterisk
// queue (through a Local channel, so the caller never loses their place),
// decides with the rules when to offer WhatsApp, when to send it without
// asking and when to recover an abandoned call, plays the offer, and hands
// the message to the WhatsApp outbox.
//
// Each call is a small state machine, run by a goroutine of its own that
// receives the call's ARI events in order:
//
//	entered → waiting ⇄ offered → accepted → deflected
//	                  ↘ performed          (self-service reasons, no offer)
//	waiting|offered → connected            (an agent answered)
//	waiting|offered → abandoned | short_abandoned
//
// Every transition is timestamped in the call's Redis record, which is what
// lets another instance (or this one after a restart) adopt the call: on
// every connect, the calls still in the application are listed, their
// records loaded, and their timers restored from the stored times.
// Idempotent outbox keys (call id + kind) make sure nothing adopted is sent
// twice. When Redis is unavailable the bridge fails open: callers keep
// waiting in the queue, nothing is offered, and a metric and a log line say
// so.
//
// The decisions themselves are pure functions in deflect/rules (when to
// act) and deflect/ewt (how long the wait will be).
package deflect
