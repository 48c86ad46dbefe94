// Package inboxhttp serves the inbox over HTTP: the JSON API under
// /api/v1/inbox/ (docs/inbox.md lists every call), its authentication
// (session cookies for the web UI, bearer tokens for programs), and the
// live event stream (Server-Sent Events).
//
// Sessions live in Redis, so that a user logged in through one deflectd
// instance is known to all of them. A session cookie is HttpOnly and
// SameSite=Strict, and every write made with it must carry the session's
// CSRF token in X-CSRF-Token; bearer tokens carry no ambient authority and
// need none.
//
// The event stream is written by hand on net/http rather than with an SSE
// library: the protocol is a few lines of text per event, and what matters
// here (one Redis reader per instance fanned out to every client, replay
// from Last-Event-ID, a "reset" when the client missed too much, and
// per-user filtering) is the inbox's own logic, which no library has.
package inboxhttp
