package whatsapp

import "testing"

func TestCodeLabel(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{HTTPStatus: 400, Code: 131026}, "131026"},
		{&Error{HTTPStatus: 401, Code: 0, Message: "AuthException"}, "0"},
		{&Error{HTTPStatus: 403, Code: 250}, "200-299"},
		{&Error{HTTPStatus: 400, Code: 99999}, "other"},
		{&Error{HTTPStatus: 503, NoCode: true}, "none"},
		{&Error{Reason: "network"}, "none"},
	}
	for _, tt := range tests {
		if got := tt.err.CodeLabel(); got != tt.want {
			t.Errorf("(%+v).CodeLabel() = %q, want %q", tt.err, got, tt.want)
		}
	}
	// Every code the classifier names by number is a known label value.
	for _, c := range KnownCodes() {
		if class, _ := Classify(400, c); class == 0 {
			t.Errorf("Classify(400, %d) has no class", c)
		}
	}
}
