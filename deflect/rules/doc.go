// Package rules provides deflectd's deflection rules: a tree of routes,
// loaded from YAML in the shape of Alertmanager's route tree, and the pure
// function that decides, for one waiting or abandoned call at one moment,
// whether to offer WhatsApp, send it without asking, recover the call or do
// nothing.
//
// The decision is a pure function of the call and the time — Evaluate does
// no I/O and reads no clock — so that it can be tested exhaustively, fuzzed,
// replayed by the dry-run endpoint (Explain) and trusted to answer the same
// after a restart, when the engine re-evaluates adopted calls from their
// stored timestamps. Everything with a side effect (playing the offer,
// sending the template, counting, scheduling the next evaluation at
// Decision.Next) belongs to the engine that calls it.
//
// A Rules value is validated once, at load, and immutable afterwards: a
// reload builds a new one and swaps it in, and a file with any problem is
// refused whole, with every problem reported at once with its line.
// docs/rules.md describes the file and the semantics for operators.
package rules
