package metrics

import (
	"regexp"
	"slices"
	"strings"
)

var deflectdName = regexp.MustCompile(`deflectd_[a-zA-Z0-9_:]*`)

// Referenced returns the deflectd_* metric families a PromQL expression
// uses, sorted and without repeats. A histogram series name
// (deflectd_wait_seconds_bucket, _sum, _count) is reported as its family
// (deflectd_wait_seconds) when the catalog has that histogram; a name the
// catalog lacks is returned as written, so that a caller checking the
// result against Names sees the typo. Names in # comments are ignored;
// names inside strings (as in {__name__="deflectd_..."}) count.
func Referenced(promql string) []string {
	seen := map[string]bool{}
	var out []string
	s := stripComments(promql)
	for _, loc := range deflectdName.FindAllStringIndex(s, -1) {
		if loc[0] > 0 && isNameByte(s[loc[0]-1]) {
			continue // part of a longer identifier, e.g. my_deflectd_x
		}
		name := family(s[loc[0]:loc[1]])
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// family maps a series name to its catalogued family.
func family(name string) string {
	if m, ok := Lookup(name); ok {
		return m.Name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if m, ok := Lookup(base); ok && m.Type == Histogram {
			return base
		}
	}
	return name
}

func isNameByte(b byte) bool {
	return b == '_' || b == ':' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// stripComments blanks # comments (to the end of the line) outside string
// literals, keeping every other byte in place.
func stripComments(q string) string {
	b := []byte(q)
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '#':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		}
	}
	return string(b)
}
