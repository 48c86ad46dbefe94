// Package deflect will decide, for every call waiting in an Asterisk queue,
// when to offer WhatsApp, when to send it without asking, and when to
// recover an abandoned call; it drives calls through the ari package.
//
// It is empty until the deflect issue lands: nothing here is done yet.
package deflect
