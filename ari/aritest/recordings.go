package aritest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// recordings are the events the application "deflect" received from the lab
// Asterisk 22.10.1 (shared/asterisk-lab.md, sections 4 to 7), one per line.
//
//go:embed testdata/*.jsonl
var recordings embed.FS

// Recordings returns the names Recording accepts, sorted:
//
//   - step4: a call enters Stasis, is answered, hears a prompt, is hung up;
//   - step5: the same with two DTMF digits;
//   - step6a: the Local-channel queue pattern, an agent answers after 6 s,
//     the caller hangs up later;
//   - step6b: the service cancels the queue attempt while an agent rings;
//   - step6c: as step6a, with a queue entry that does not Answer();
//   - step6d: no agent reachable, the service cancels;
//   - step6e: the agent hangs up first;
//   - step7: the caller hangs up while an agent rings.
func Recordings() []string {
	entries, _ := recordings.ReadDir("testdata")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Recording returns the events of one recording (see Recordings) in the
// order Asterisk sent them, byte for byte, ready for Send.
func Recording(name string) ([]json.RawMessage, error) {
	data, err := recordings.ReadFile("testdata/" + name + ".jsonl")
	if err != nil {
		return nil, fmt.Errorf("aritest: no recording %q (have %v)", name, Recordings())
	}
	var events []json.RawMessage
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			events = append(events, json.RawMessage(line))
		}
	}
	return events, nil
}
