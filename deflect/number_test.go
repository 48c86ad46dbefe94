package deflect

import (
	"errors"
	"testing"
)

func TestNormalizeCaller(t *testing.T) {
	tests := []struct {
		name, raw, region string
		want              string
		wantSkip          string // "" when the number is eligible
	}{
		{name: "E.164 AR mobile", raw: "+5491155550001", region: "AR", want: "+5491155550001"},
		{name: "E.164 AR mobile, other default region", raw: "+5491155550001", region: "US", want: "+5491155550001"},
		{name: "spaces around", raw: "  +5491155550001 ", region: "AR", want: "+5491155550001"},
		{name: "AR national mobile with 15", raw: "011 15 5555 0001", region: "AR", want: "+5491155550001"},
		{name: "AR international mobile without 9 is a landline", raw: "+541155550001", region: "AR", wantSkip: skipNotMobile},
		{name: "AR landline", raw: "+541143210000", region: "AR", wantSkip: skipNotMobile},
		{name: "AR national landline", raw: "011 4321 0000", region: "AR", wantSkip: skipNotMobile},
		{name: "NANP accepted", raw: "+16502530000", region: "AR", want: "+16502530000"},
		{name: "NANP national", raw: "(650) 253-0000", region: "US", want: "+16502530000"},
		{name: "empty", raw: "", region: "AR", wantSkip: skipAnonymous},
		{name: "anonymous", raw: "anonymous", region: "AR", wantSkip: skipAnonymous},
		{name: "Restricted", raw: " Restricted ", region: "AR", wantSkip: skipAnonymous},
		{name: "unknown", raw: "unknown", region: "AR", wantSkip: skipAnonymous},
		{name: "too short", raw: "12", region: "AR", wantSkip: skipInvalid},
		{name: "letters", raw: "abc", region: "AR", wantSkip: skipInvalid},
		{name: "unassigned country code", raw: "+999123456789", region: "AR", wantSkip: skipInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeCaller(tt.raw, tt.region)
			if tt.wantSkip == "" {
				if err != nil || got != tt.want {
					t.Errorf("normalizeCaller(%q, %q) = %q, %v, want %q, nil", tt.raw, tt.region, got, err, tt.want)
				}
				return
			}
			var inel errIneligible
			if !errors.As(err, &inel) || got != "" {
				t.Fatalf("normalizeCaller(%q, %q) = %q, %v, want an errIneligible", tt.raw, tt.region, got, err)
			}
			if r := skipReason(err); r != tt.wantSkip {
				t.Errorf("skipReason(normalizeCaller(%q, %q)) = %q, want %q", tt.raw, tt.region, r, tt.wantSkip)
			}
		})
	}
}

func TestSkipReasonOtherError(t *testing.T) {
	if got := skipReason(errors.New("boom")); got != "error" {
		t.Errorf(`skipReason(boom) = %q, want "error"`, got)
	}
}
