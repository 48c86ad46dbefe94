// Package whatsapp talks to Meta's WhatsApp Business Cloud API: the message
// shapes it accepts (templates and free-form text, byte for byte as Meta
// documents them), a client that sends one message, and the classification
// of every error Meta returns into what deflectd must do about it (retry,
// give up, or stop sending altogether).
//
// Sending with guarantees (a durable outbox, rate limits shared by several
// instances, the messaging-tier budget) is whatsapp/outbox; receiving
// (signed webhooks, statuses, replies, opt-outs) is whatsapp/webhook; a fake
// Cloud API for tests and the demo is whatsapp/whatsapptest. Templates are
// described in a catalog (see Catalog) and filled from a call's context.
//
// The client is written on net/http rather than a Meta SDK: there is no
// maintained Go SDK for the Cloud API, and the API deflectd uses is one
// POST and one error shape.
package whatsapp
