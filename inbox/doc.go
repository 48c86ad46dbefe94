// Package inbox is the WhatsApp team inbox: where a customer who answers a
// deflection, or writes on their own, lands with an owner, a team and a
// clock, so that no chat dies in silence.
//
// # The operating model
//
// Chats are lost for three reasons: nobody owns them, there is no clean
// handoff, and "seen" is not "answered". So:
//
//   - Ownership. A new chat goes to its team's Unassigned (routed by the call
//     it came from, by keywords, or to the default team). The first agent
//     who takes it owns it; of concurrent claims exactly one wins and the
//     others get a conflict. The first reply to an Unassigned chat takes it
//     too. A returning customer's chat goes to Unassigned again, or to its
//     last owner with sticky_owner when that owner is online.
//   - Handoffs carry a reason, a priority, a next step and a tag, are kept
//     in the history and counted, and a pass back within the ping-pong
//     window (A→B→A) is flagged.
//   - "Seen and unanswered". A customer message no agent answered keeps the
//     chat pending: normal, then critical (the owner is alerted), then
//     escalated (supervisors are notified; with on_escalate: unassign the
//     chat goes back to Unassigned). Thresholds are per team and priority
//     and count business hours only when the team has them (a time
//     interval of deflect/rules: one calendar for the whole product). The
//     24-hour window is a hard deadline: a pending chat whose window closes
//     within window_margin escalates at once, and one whose window closes
//     unanswered is lost. A taken chat not answered within claim_timeout
//     goes back to Unassigned; the pending chats of an agent who goes
//     offline escalate and go back too.
//
// Only a reply a person wrote and WhatsApp accepted answers: an automatic
// message (the deflection template, a survey) does not, and a reply
// WhatsApp reports failed (131047 outside the window, 131026, ...) answers
// nothing: the chat stays pending and the failure shows on it. A reply
// answers the customer messages that had arrived when the agent wrote it,
// not those that came while it was being sent.
//
// First response time runs from the cycle's first customer WhatsApp message
// (a button tap counts) to the first answer WhatsApp accepted, not from the
// conversation's creation: a deflection may create the chat well before the
// customer writes.
//
// # State and exactly once
//
// Redis holds everything (see store for the key layout, which is Redis
// Cluster safe). The waiting clocks are computed from the messages each
// time they change (derive), not kept as counters, so late, repeated or
// out-of-order webhooks cannot leave them wrong. Every change of a
// conversation is a compare-and-set on its version, retried from a fresh
// read on conflict; the policy (Assess, a pure function of the
// conversation, its policy, its owner's presence and the time) is applied
// in the same change, so each alert, escalation and reassignment is
// committed once however many workers and instances race on it.
//
// Due times live in a Redis sorted set. Every instance's timer worker takes
// due conversations with a lease (another worker takes them only after it
// ends), applies the policy, and sets the next due time; a worker that
// dies only delays its conversations by the lease.
//
// # Sending
//
// Agent replies, templates and surveys are outbox jobs (kinds agent and
// survey): rate limited, sent exactly once, with their statuses coming back
// through the outbox's Results hook and the webhook processor's status
// subscribers. A reply is stored in the conversation first and
// acknowledged only once the outbox holds it; the timer checks on replies
// whose fate is not known and settles them from the outbox's records.
package inbox
