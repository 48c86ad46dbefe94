package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The labels a matcher can test: the Stasis arguments of the call.
const (
	LabelQueue    = "queue"
	LabelOption   = "option"
	LabelReason   = "reason"
	LabelLanguage = "language"
)

// matchOp is a matcher's operator, spelled as in Alertmanager.
type matchOp string

const (
	opEqual    matchOp = "="
	opNotEqual matchOp = "!="
	opRegexp   matchOp = "=~"
	opNotRegex matchOp = "!~"
)

// matcher is one Alertmanager-style label matcher, e.g. queue=~"sales|support".
type matcher struct {
	label string
	op    matchOp
	value string
	re    *regexp.Regexp // for =~ and !~, anchored at both ends
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// parseMatcher parses `label op value`, where value is either a Go-style
// double-quoted string or the rest of the text, trimmed. Regular
// expressions are anchored at both ends, as in Alertmanager: "sales" does
// not match "presales".
func parseMatcher(s string) (matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!~")
	if i < 0 {
		return matcher{}, errors.New(`want label, operator and value, such as queue="sales"`)
	}
	label := strings.TrimSpace(s[:i])
	rest := s[i:]
	var m matcher
	for _, op := range []matchOp{opRegexp, opNotRegex, opNotEqual, opEqual} {
		if strings.HasPrefix(rest, string(op)) {
			m.op = op
			break
		}
	}
	if m.op == "" {
		return matcher{}, fmt.Errorf("operator %q: want =, !=, =~ or !~", rest[:min(2, len(rest))])
	}
	switch {
	case label == "":
		return matcher{}, errors.New(`no label name: want label, operator and value, such as queue="sales"`)
	case !labelNameRE.MatchString(label):
		return matcher{}, fmt.Errorf("invalid label name %q", label)
	case label != LabelQueue && label != LabelOption && label != LabelReason && label != LabelLanguage:
		return matcher{}, fmt.Errorf("unknown label %q: want queue, option, reason or language", label)
	}
	m.label = label
	value := strings.TrimSpace(rest[len(m.op):])
	if strings.HasPrefix(value, `"`) {
		v, err := strconv.Unquote(value)
		if err != nil {
			return matcher{}, fmt.Errorf("value %s: not a valid double-quoted string", value)
		}
		value = v
	}
	m.value = value
	if m.op == opRegexp || m.op == opNotRegex {
		if _, err := regexp.Compile(value); err != nil {
			return matcher{}, fmt.Errorf("invalid regular expression: %w", err)
		}
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return matcher{}, fmt.Errorf("invalid regular expression %q: %w", value, err)
		}
		m.re = re
	}
	return m, nil
}

func (m *matcher) matches(v string) bool {
	switch m.op {
	case opEqual:
		return v == m.value
	case opNotEqual:
		return v != m.value
	case opRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

// String returns the matcher in its canonical form, value quoted.
func (m *matcher) String() string {
	return m.label + string(m.op) + strconv.Quote(m.value)
}

// labelValue returns the call's value for a label.
func labelValue(c *Call, label string) string {
	switch label {
	case LabelQueue:
		return c.Queue
	case LabelOption:
		return c.Option
	case LabelReason:
		return c.Reason
	default:
		return c.Language
	}
}
