package inboxhttp

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/deflectd/deflectd/inbox"
)

// FuzzDecode feeds arbitrary bodies to the API's request decoder, for each
// request type: it never panics, an error is always an invalid-input error
// with a message, and what it accepts is one JSON object that
// re-encodes to what it decoded.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"text":"hola","quote":"wamid.1","client_id":"c-1"}`,
		`{"to_team":"support","reason":"r","priority":"high","next_step":"x","tag":"t"}`,
		`{"note":"ok","kind":"confirmation"}`,
		`{"user":"ana","password":"x"}`,
		`{"status":"away","agent":"bob"}`,
		`{"text":1}`, `{"a":1}`, `{} {}`, `[1]`, `null`, ``, `{"text":"\ud800"}`, `{"text":"a","text":"b"}`,
	} {
		f.Add(s)
	}
	targets := []func() any{
		func() any { return new(inbox.ReplyRequest) },
		func() any { return new(inbox.HandoffRequest) },
		func() any { return new(inbox.ResolveRequest) },
		func() any { return new(inbox.TemplateRequest) },
		func() any { return new(inbox.ReassignRequest) },
		func() any { return new(loginRequest) },
		func() any { return new(availabilityRequest) },
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range targets {
			v := target()
			err := decodeBytes([]byte(body), v)
			if err != nil {
				if !errors.Is(err, inbox.ErrInvalid) || err.Message == "" || err.Code == "" {
					t.Fatalf("decode %q: error %#v, want an invalid-input error with a code and message", body, err)
				}
				continue
			}
			if !json.Valid([]byte(body)) {
				t.Fatalf("decode accepted %q, which is not valid JSON", body)
			}
			b, merr := json.Marshal(v)
			if merr != nil {
				t.Fatalf("re-encoding what %q decoded to: %v", body, merr)
			}
			w := target()
			if err := decodeBytes(b, w); err != nil {
				t.Fatalf("%q decoded, re-encoded as %s, which does not decode: %v", body, b, err)
			}
		}
	})
}
