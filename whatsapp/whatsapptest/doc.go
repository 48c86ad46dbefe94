// Package whatsapptest provides a fake WhatsApp Business Cloud API for tests
// and for a demo without a Meta account: the messages endpoint over real HTTP
// on the loopback interface, in the manner of net/http/httptest (messages and
// read receipts), and a sender of correctly signed webhooks (statuses and
// every kind of customer message: text, quoted replies, quick-reply taps,
// media, reactions, locations, unsupported types) to a URL.
//
// It exists because Meta offers no sandbox that a test can drive: a real
// test number cannot be told to answer 130429, drop a connection after
// reading a request, time out, or have a customer tap a button at a chosen
// moment, and using it needs a Meta business account, a registered number
// and an access token. The fake answers as Meta does (the same paths, auth,
// validation, error objects and HTTP statuses, the same webhook envelope and
// signature), so the client, the outbox and the webhook receiver can be
// tested, and the whole bridge demonstrated, with nothing from Meta.
//
// # Independence
//
// The fake does not import package whatsapp. It parses every request with its
// own strict decoder (exact key names, no unknown or duplicate keys, exact
// JSON types) and validates it against its own template registry, so a test
// of the client against the fake checks the client against an independent
// reading of Meta's documentation rather than against itself.
//
// # What it enforces
//
//   - POST /{version}/{phone-number-id}/messages, version like v25.0, a
//     configured phone number id (else 400, code 100, subcode 33).
//   - Authorization: Bearer <Options.Token> (else 401, code 190).
//   - Content-Type application/json, messaging_product "whatsapp", "to" a
//     phone number, type "template" or "text".
//   - Templates from the registry (Options.Templates): name and language
//     (132001), parameter count per component (132000), button sub-types and
//     indexes (131009), non-empty text parameters (131008), body length
//     (132005), no newlines, tabs or more than four consecutive spaces in a
//     parameter (132018), paused or disabled templates (132015, 132016).
//   - Free-form text only inside the 24-hour window the fake's own inbound
//     messages opened: outside it the message is accepted and fails with
//     131047 in a "failed" status webhook, as Meta reports it, or, with
//     Options.WindowErrorsInAnswer, the request fails with 131047.
//   - Read receipts (mark as read), strictly: exactly messaging_product
//     "whatsapp", status "read", message_id and an optional
//     typing_indicator {"type":"text"}, else Graph's (#100) parameter
//     error; message_id must be a customer's message the fake made up
//     (SendText and the other inbound Send methods) to that phone number,
//     else 400 code 100 (Invalid parameter); and the customer's 24-hour
//     window must be open, else 131047 (?): Meta only says marking read
//     can fail once the window has closed, so the fake assumes it always
//     does, with the free-form message's code. An accepted receipt answers
//     {"success":true}, does not count toward the throughput window, and
//     is recorded (Reads, WaitReads); recipient faults do not apply to it.
//   - Throughput: Options.MPS messages per second per phone number, as a
//     strict one-second sliding window over accepted messages (130429); an
//     optional pair rate limit per recipient (131056).
//
// Checks run in this order, and the first failure answers: path, token,
// phone number id, body shape, template, recipient faults, the 24-hour
// window (only with Options.WindowErrorsInAnswer), throughput, pair rate;
// for a read receipt: path, token, phone number id, body shape, the
// message id, the 24-hour window.
//
// # HTTP statuses
//
// The status of an error follows the table in Meta's error-code reference
// (see HTTPStatus): 401 for 0 and 190; 403 for 10, 200-299, 368, 131005 and
// 131031; 429 for the throttling codes 4, 80007, 130429, 131048 and 131056
// (Meta's current table; older versions of it said 400, and clients must
// branch on the code, not the status); 404 for 132001; 500 for 3, 131000,
// 131016 and 131057; 503 for 2; 400 for every other code. Graph's own errors
// for an unknown path or object are 400 with code 100.
//
// Meta reports many delivery failures (131026, 131047, 131049, ...) not in
// the answer but in a "failed" status webhook after accepting the message.
// The fake does so for free-form text outside the window by default
// (Options.WindowErrorsInAnswer answers it synchronously instead, for a
// client test that wants the error in hand); injected faults answer
// synchronously unless Fault.Async is set.
//
// # Faults
//
// FailNext, FailRecipient and SetDelay inject what the real API does on a
// bad day: any error code or bare HTTP status, slow answers (which honour
// the request's context), a connection closed after the request was read
// (the client cannot know whether the message went out), and a message
// accepted whose answer is lost (it was sent; only its status webhooks,
// which carry biz_opaque_callback_data, can tell the client).
//
// # Webhooks
//
// SendStatus, SendText, SendReply, SendButtonTap, SendMedia, SendReaction,
// SendLocation, SendUnsupported and SendWebhook POST to the configured URL
// in Meta's envelope, signed with X-Hub-Signature-256 over the exact bytes
// sent. Each customer message opens the customer's 24-hour window and gets
// a wamid that can be marked read; SendMedia also makes up a numeric media
// id and a SHA-256 (the fake serves no files), and SendUnsupported sends
// type "unsupported" with Meta's error 131051. Bodies are encoded as Meta encodes them: non-ASCII characters
// as \uXXXX with lowercase hex digits and "/" as "\/", so a receiver that
// verifies the signature over a re-encoded body, rather than the raw bytes,
// fails here as it would against Meta. Options.AutoStatus sends
// sent/delivered/read for every accepted message (optionally shuffled and
// duplicated, as Meta's at-least-once, unordered delivery can), and
// Options.Customers makes a seeded fraction of template recipients answer.
// Every delivery, failed or not, is recorded (Deliveries).
package whatsapptest
