// Package aritest provides a fake Asterisk for tests: an ARI server over
// real HTTP and a real websocket on the loopback interface, in the manner of
// net/http/httptest.
//
// It exists so that the ari client, and the packages built on it, can be
// tested without an Asterisk: reconnects, ping timeouts, a second instance
// taking the application (ApplicationReplaced), slow consumers, REST errors
// with Asterisk's {"message"} body and per-request timeouts all need a
// server whose behaviour a test controls exactly, which a real Asterisk
// cannot give. The real Asterisk is for integration tests.
//
// The server keeps a small in-memory model of channels, bridges, playbacks,
// channel variables and application subscriptions, so that its REST answers
// agree with each other and with the events a test sends: GET /channels and
// GET /applications/{app} list what AddChannel, an originate or a
// StasisStart event created, and what a hangup or a ChannelDestroyed event
// did not remove. That is what a test of resync after a reconnect needs.
//
// The fake sends only the events a test sends with Send (REST calls change
// the model but emit nothing), so a test decides the exact order of events.
// Recording returns event sequences captured from a real Asterisk 22 to
// replay.
//
// The package does not import the ari package, so that the ari package's own
// internal tests can use it without an import cycle; it speaks ARI's JSON.
package aritest
