// Package webhook receives Meta's WhatsApp webhooks: it checks that a
// request really comes from Meta, parses the notification into the types of
// package whatsapp (Status, Inbound), and hands them to the rest of deflectd
// (the outbox's status records, the opt-out list, the conversion funnel and
// the subscribers, such as the inbox). Every inbound message type Meta
// sends is parsed (text, button, interactive, media, reaction, location,
// contacts, unsupported, and types Meta adds later), and each keeps its
// raw JSON, so nothing a customer sends is dropped.
//
// Receiving is split in two, because Meta retries a webhook that is not
// answered quickly with a 2xx, and a retry storm is worse than a short
// delay:
//
//   - Handler answers Meta. It verifies the X-Hub-Signature-256 over the raw
//     body, parses it only to reject what is not a notification (400), and
//     appends the raw body to a durable Intake; only then does it answer 200.
//     Nothing is processed in the request, so a slow store never makes Meta
//     retry, and an Intake failure answers 503 so that Meta retries and
//     nothing is lost.
//   - Processor does the work later, from the Intake's Redis stream, with a
//     consumer group shared by every deflectd instance. An entry is
//     acknowledged only after its statuses and messages were handed on; an
//     instance that crashes mid-way leaves its entries pending, and another
//     instance claims them once they have been idle for ClaimAfter.
//
// Delivery is at least once at every step (Meta may send a webhook twice,
// and a claimed entry is processed again), so the Processor deduplicates:
// an inbound message is surfaced once per message id (the completed steps
// of each message are recorded in Redis, so a retry after a partial failure
// repeats only the steps that failed), while statuses are passed on every
// time, to the StatusStore and then to the status subscribers, because the
// store makes them monotonic, except exact (wamid, status) repeats of a
// status that was already applied and handed on.
//
// The stores the Processor feeds are interfaces declared here (StatusStore,
// OptOutStore, ConversionStore) so that this package does not depend on
// their implementations; the outbox implements them.
package webhook
