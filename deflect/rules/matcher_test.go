package rules

import (
	"strings"
	"testing"
)

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form
		matches []string
		misses  []string
	}{
		{`queue="sales"`, `queue="sales"`, []string{"sales"}, []string{"presales", "Sales", ""}},
		{`queue = sales `, `queue="sales"`, []string{"sales"}, []string{"sales "}},
		{`reason!="billing"`, `reason!="billing"`, []string{"tech", ""}, []string{"billing"}},
		{`queue=~"sales|support"`, `queue=~"sales|support"`, []string{"sales", "support"}, []string{"presales", "sales2", "salessupport"}},
		{`language=~"es|es_.*"`, `language=~"es|es_.*"`, []string{"es", "es_AR"}, []string{"en", "ess", ""}},
		{`option!~"[0-9]"`, `option!~"[0-9]"`, []string{"none", "10", ""}, []string{"0", "9"}},
		{`reason=""`, `reason=""`, []string{""}, []string{"x"}},
		{`reason!=`, `reason!=""`, []string{"x"}, []string{""}},
		{`reason="a\"b"`, `reason="a\"b"`, []string{`a"b`}, []string{`a\"b`}},
		{`queue=~".*"`, `queue=~".*"`, []string{"", "anything"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := parseMatcher(tt.in)
			if err != nil {
				t.Fatalf("parseMatcher(%q) = %v", tt.in, err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("parseMatcher(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			for _, v := range tt.matches {
				if !m.matches(v) {
					t.Errorf("parseMatcher(%q).matches(%q) = false, want true", tt.in, v)
				}
			}
			for _, v := range tt.misses {
				if m.matches(v) {
					t.Errorf("parseMatcher(%q).matches(%q) = true, want false", tt.in, v)
				}
			}
		})
	}
}

func TestParseMatcherErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "want label, operator and value"},
		{`queue`, "want label, operator and value"},
		{`="x"`, "no label name"},
		{`que ue="x"`, `invalid label name "que ue"`},
		{`1queue="x"`, `invalid label name "1queue"`},
		{`Queue="x"`, `unknown label "Queue"`},
		{`caller="x"`, `unknown label "caller"`},
		{`queue~="x"`, `operator "~=": want =, !=, =~ or !~`},
		{`queue!"x"`, `operator "!\"": want`},
		{`queue="x`, "not a valid double-quoted string"},
		{`queue="x"y`, "not a valid double-quoted string"},
		{`queue=~"(x"`, "invalid regular expression"},
		{`queue!~"*"`, "invalid regular expression"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := parseMatcher(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseMatcher(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	c := &Call{Queue: "q", Option: "o", Reason: "r", Language: "l"}
	for label, want := range map[string]string{LabelQueue: "q", LabelOption: "o", LabelReason: "r", LabelLanguage: "l"} {
		if got := labelValue(c, label); got != want {
			t.Errorf("labelValue(%+v, %s) = %q, want %q", c, label, got, want)
		}
	}
}
