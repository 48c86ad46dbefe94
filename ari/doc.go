// Package ari is deflectd's client for the Asterisk REST Interface (ARI) of
// Asterisk 22: typed REST calls and a reconnecting event stream.
//
// It is written by hand because the usual Go library
// (github.com/CyCoreSystems/ari) cannot be installed here, and because its
// weaknesses are exactly the ones a contact-center bridge cannot afford. This
// package differs from it, and from Node's ari-client, on purpose:
//
//   - Events are never dropped. The websocket reader only appends the frame to
//     an unbounded in-memory backlog and goes back to reading, so Asterisk is
//     never blocked past its websocket_write_timeout (100 ms by default, after
//     which Asterisk closes the socket with 1011). A consumer that falls
//     behind is reported (a metric, a log line, and the Backlog gauge); one
//     that falls behind past Options.MaxBacklog has its connection closed with
//     ErrSlowConsumer, which the consumer sees in order as a Disconnected
//     event followed by a Connected event: the same signal as a network gap,
//     so the same resync code handles both.
//   - Every REST call takes a context and has a per-request timeout, and an
//     error keeps the HTTP status and Asterisk's {"message"} (see Error; use
//     errors.Is with ErrNotFound, ErrConflict, ErrPreconditionFailed,
//     ErrUnprocessable).
//   - The connection lifecycle is observable in the event stream itself
//     (Connected, Disconnected), in order with Asterisk's events, so an
//     application resyncs exactly at the gap (Snapshot lists what is still in
//     the application; Asterisk replays nothing).
//   - The client pings (Asterisk answers pings but sends none), reconnects
//     with capped exponential backoff and jitter, and treats
//     ApplicationReplaced as final: a second instance took the application
//     name, and reconnecting would make the two flap.
//   - Events the bridge uses are typed structs; every other type, including
//     those a newer Asterisk adds, arrives as a RawEvent with its JSON, never
//     as an error that ends the stream. Asterisk's timestamp format
//     (2006-01-02T15:04:05.000-0700, not RFC 3339) is parsed by Time.
//
// The websocket itself is github.com/coder/websocket; only the ARI protocol
// on top of it is written here.
package ari
