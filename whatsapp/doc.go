// Package whatsapp will send WhatsApp template messages through Meta's
// Business Cloud API from a durable, exactly-once Redis outbox, and receive
// its signed webhooks.
//
// It is empty until the whatsapp issue lands: nothing here is done yet.
package whatsapp
