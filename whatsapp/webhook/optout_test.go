package webhook

import "testing"

func TestIsOptOut(t *testing.T) {
	def := DefaultOptOutKeywords()
	tests := []struct {
		text     string
		keywords []string
		want     bool
	}{
		{"STOP", def, true},
		{"stop", def, true},
		{" STOP ", def, true},
		{"Stop.", def, true},
		{"STOP!!!", def, true},
		{"baja", def, true},
		{"Baja.", def, true},
		{"¡BAJA!", def, true},
		{"dar de baja", def, true},
		{"Dar  de\tBaja", def, true},
		{"darme de baja!", def, true},
		{"Unsubscribe", def, true},
		{"parar", def, true},
		{"arret", def, true},
		{"ARRÊT", def, true},
		{"arrêt", def, true},
		{"stop 🛑", def, true},
		{"\"stop\"", def, true},
		{"", def, false},
		{"   ", def, false},
		{"!!!", def, false},
		{"stop calling me at night", def, false},
		{"please don't stop", def, false},
		{"stopp", def, false},
		{"bajar", def, false},
		{"cancelar", def, false},
		{"cancel", def, false},
		{"hola, quiero ayuda", def, false},
		// Configured keywords are folded the same way.
		{"cancelación", []string{"CANCELACION"}, true},
		{"CANCELACIÓN", []string{"cancelación"}, true},
		{"stop", []string{}, false},
		{"stop", nil, false},
		{"stop", []string{"", "  "}, false},
	}
	for _, tt := range tests {
		if got := IsOptOut(tt.text, tt.keywords); got != tt.want {
			t.Errorf("IsOptOut(%q, %q) = %v, want %v", tt.text, tt.keywords, got, tt.want)
		}
	}
}
