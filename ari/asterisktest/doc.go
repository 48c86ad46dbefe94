// Package asterisktest runs a real Asterisk 22 and real SIP endpoints for
// deflectd's end-to-end tests.
//
// Mocks of ARI cannot tell us whether the dialplan contract in
// configs/asterisk/ (Stasis arguments, the Queue fallback, the Local-channel
// queue entry) or the event sequences deflectd relies on are what Asterisk
// really does. This package starts the Asterisk sandbox built by
// scripts/asterisk-sandbox (a cached Debian sid chroot, everything bound to
// 127.0.0.1) with the project's sample configs, and drives it with sipp:
// [Sandbox.Call] places a caller on the trunk and [Sandbox.Agent] answers as
// a queue agent. Tests then talk to ARI exactly as deflectd does.
//
// The package deliberately does not import github.com/deflectd/deflectd/ari:
// the ari package's own tests use this harness, so it must stay a leaf.
//
// Needs root, sipp (Debian package sip-tester) and, for the first build,
// debootstrap; `scripts/asterisk-sandbox deps` installs the host tools.
// Use [Require] (or [Check] and [SkipOrFail] in TestMain) so that tests skip
// cleanly where these are missing, or fail when DEFLECTD_REQUIRE_DEPS=1.
package asterisktest
