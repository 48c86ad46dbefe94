package metrics

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Marker is the line of docs/metrics.md that Render's output starts with:
// above it the hand-written intro, below it the generated tables.
const Marker = "<!-- Generated from metrics.Catalog() by `go test ./metrics -update`: do not edit below this line. -->"

var groupTitles = map[string]struct{ title, blurb string }{
	GroupVoice: {"Voice", "The callers' side, per queue: what the contact center sees with or without deflection."},
	GroupFunnel: {"Deflection funnel", "Eligible → offered → accepted | performed → sent → delivered → read → converted, and " +
		"recovery (abandoned → recovered → converted), in funnel order. The bridge's stages are per queue; " +
		"after the outbox they are per message kind (offer, perform, recover, agent)."},
	GroupWhatsApp: {"WhatsApp", "The Cloud API, the outbox and the webhooks."},
	GroupInbox:    {"Inbox", "The WhatsApp team inbox: ownership, handoffs, the \"seen and unanswered\" clock, and the chats it could not save."},
	GroupARI:      {"ARI", "The connection to Asterisk."},
	GroupOps:      {"Ops", "The bridge's own health: adopted and fallen-back calls, Redis errors, configuration reloads."},
}

// Render writes the generated part of docs/metrics.md: Marker, then a
// table per group (name, type, labels, meaning).
func Render(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, Marker)
	for _, g := range Groups() {
		fmt.Fprintf(b, "\n## %s\n\n%s\n\n", groupTitles[g].title, groupTitles[g].blurb)
		fmt.Fprintln(b, "| Metric | Type | Labels | Meaning |")
		fmt.Fprintln(b, "|---|---|---|---|")
		for _, m := range catalog {
			if m.Group != g {
				continue
			}
			labels := make([]string, len(m.Labels))
			for i, l := range m.Labels {
				labels[i] = "`" + l + "`"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", m.Name, m.Type, strings.Join(labels, ", "), cell(m.Help))
		}
	}
	return b.Flush()
}

// cell escapes text for a markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
