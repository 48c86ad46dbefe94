// Package outbox sends WhatsApp messages so that none is lost and none is
// sent twice, from any number of deflectd instances sharing one Redis and
// one business phone number.
//
// # How a message travels
//
// Enqueue stores the job under its idempotency key (a call id plus the
// message kind) and appends the key to a Redis stream, in one Lua script
// that also honours the opt-out list and reserves the messaging-tier budget.
// The same key enqueued again, by another instance or after a restart, finds
// the job and adds nothing. Workers read the stream through a consumer
// group; before each POST they take a slot of the shared per-number rate
// limit (a sliding one-second window kept in Redis, on Redis' clock) and
// respect the per-recipient spacing. The result (wamid, or error code and
// class) is recorded and the stream entry acknowledged in one script, so a
// result is never half-written. Retryable errors go to a delayed set and
// come back with exponential backoff and jitter; a breaker error (expired
// token, restricted account) stops every instance from sending until a
// cooldown passes. A worker that dies leaves its entry pending, and another
// instance claims it once it has been idle for ClaimAfter; a restarted
// process on the same host takes over its dead predecessor's entries at
// once.
//
// When the API cannot be reached at all (connection refused, DNS), a
// retry costs nothing at Meta and cannot send twice: such attempts do not
// count against MaxAttempts, back off at most 30 s, and the first send
// that gets through makes all of them due, so the backlog of an outage
// drains as soon as the API is back, paced by the rate limit.
//
// # The window between "POST sent" and "result recorded"
//
// The Cloud API has no idempotency key, so a POST whose answer was lost (the
// process died, the connection dropped, a timeout after the request was
// written) may or may not have produced a message. The outbox narrows and
// then closes that window:
//
//  1. The job is marked "sending" (with the time) just before the POST; a
//     crash before that point leaves a job that is safe to send.
//  2. A shutdown does not abort a POST in flight: the request runs to its
//     own timeout and its result is recorded, so cancelling a worker never
//     creates doubt.
//  3. Every message carries its key in biz_opaque_callback_data, which Meta
//     returns in each status webhook of that message. A job found "sending"
//     by another worker, or whose POST ended without an answer, is marked
//     "in doubt" and is not resent at once: it waits InDoubtGrace for a
//     status webhook naming its key. If one comes (ApplyStatus), the message
//     was sent and the job is recorded as sent with its wamid; no second
//     message goes out.
//  4. Only if no webhook arrives within the grace period is the job sent
//     again. A duplicate is then possible only if Meta accepted the first
//     POST and delivered no status webhook for InDoubtGrace (default two
//     minutes); the metric deflectd_whatsapp_indoubt_resends_total counts
//     exactly these resends.
//
// Records (state, wamid, status, error code, conversion) live for RecordTTL;
// an enqueue of the same key after that sends again.
package outbox
