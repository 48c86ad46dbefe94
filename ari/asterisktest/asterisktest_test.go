package asterisktest

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Lines as Asterisk 22 wrote them in the lab (queue proxy, abandon, fallback).
const sampleQueueLog = `1795240363|NONE|NONE|NONE|QUEUESTART|
1795234870|1795234870.2-q2|sales|NONE|ENTERQUEUE||+15551230001|1
1795234876|1795234870.2-q2|sales|Agent One|CONNECT|6|1795234870.5|6

1795234890|1795234870.2-q2|sales|Agent One|COMPLETECALLER|6|14|1
1795234900|1795234899.7|support|Agent Two|RINGCANCELED|5500
1795234901|1795234899.7|support|NONE|ABANDON|1|1|6
`

func TestParseQueueLog(t *testing.T) {
	got, err := ParseQueueLog(strings.NewReader(sampleQueueLog))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d entries, want 6: %+v", len(got), got)
	}
	start := got[0]
	if start.Event != "QUEUESTART" || start.CallID != "NONE" || len(start.Data) != 1 || start.Data[0] != "" {
		t.Errorf("QUEUESTART parsed as %+v", start)
	}
	enter := got[1]
	want := QueueLogEntry{Time: time.Unix(1795234870, 0), CallID: "1795234870.2-q2", Queue: "sales",
		Agent: "NONE", Event: "ENTERQUEUE", Data: []string{"", "+15551230001", "1"}}
	if !enter.Time.Equal(want.Time) || enter.CallID != want.CallID || enter.Queue != want.Queue ||
		enter.Agent != want.Agent || enter.Event != want.Event || strings.Join(enter.Data, "|") != strings.Join(want.Data, "|") {
		t.Errorf("ENTERQUEUE parsed as %+v, want %+v", enter, want)
	}
	if enter.String() != "1795234870|1795234870.2-q2|sales|NONE|ENTERQUEUE||+15551230001|1" {
		t.Errorf("String() = %q", enter.String())
	}
	connect := got[2]
	if connect.Agent != "Agent One" || connect.Event != "CONNECT" || connect.Data[1] != "1795234870.5" {
		t.Errorf("CONNECT parsed as %+v", connect)
	}
	ab := FilterQueueLog(got, func(e QueueLogEntry) bool { return e.Queue == "support" })
	if len(ab) != 2 || ab[1].Event != "ABANDON" || strings.Join(ab[1].Data, ",") != "1,1,6" {
		t.Errorf("support entries: %+v", ab)
	}
}

func TestParseQueueLogErrors(t *testing.T) {
	for _, line := range []string{"x|a|b|c|EVENT", "1|2|3|4", "abc"} {
		if _, err := ParseQueueLog(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("ParseQueueLog(%q): no error", line)
		}
	}
	e, err := ParseQueueLogLine("1795234870.250|id|q|NONE|EV")
	if err != nil || e.Time.UnixMilli() != 1795234870250 || e.Data != nil {
		t.Errorf("fractional time: %+v, %v", e, err)
	}
}

// wellFormed checks that a rendered scenario is well-formed XML.
func wellFormed(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("scenario is not well-formed XML: %v\n%s", err, b)
		}
	}
}

func TestRenderCallScenario(t *testing.T) {
	b, err := RenderCallScenario(CallOptions{Exten: "700", CallerNumber: "+15550001111", CallerName: "Bob",
		HangupAfter: 5 * time.Second,
		DTMF:        []DTMF{{After: time.Second, Digit: "2"}, {After: 500 * time.Millisecond, Digit: "#"}}})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b)
	s := string(b)
	for _, want := range []string{
		`From: "Bob" <sip:+15550001111@[local_ip]:[local_port]>`,
		`<recv request="BYE" timeout="1000" ontimeout="dtmf0" next="farbye"/>`,
		"CSeq: 2 INFO", "Signal=2", "Duration=160",
		`<recv request="BYE" timeout="500" ontimeout="dtmf1" next="farbye"/>`,
		"CSeq: 3 INFO", "Signal=#",
		`<recv request="BYE" timeout="3500" ontimeout="hangup" next="farbye"/>`, // 5 s - 1.5 s of DTMF pauses
		"CSeq: 4 BYE",
		"Content-Type: application/dtmf-relay",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("scenario lacks %q", want)
		}
	}

	// Defaults; no hangup: wait for the far end's BYE.
	b, err = RenderCallScenario(CallOptions{Exten: "100"})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b)
	s = string(b)
	if !strings.Contains(s, `From: "Alice Caller" <sip:+15551230001@`) {
		t.Error("default caller not used")
	}
	if strings.Contains(s, "INFO sip:") || strings.Contains(s, `ontimeout="hangup"`) || !strings.Contains(s, `<recv request="BYE"/>`) {
		t.Errorf("wait-for-BYE scenario wrong:\n%s", s)
	}
}

func TestRenderCallScenarioValidates(t *testing.T) {
	for name, o := range map[string]CallOptions{
		"no exten":     {},
		"bad digit":    {Exten: "100", DTMF: []DTMF{{Digit: "12"}}},
		"quote":        {Exten: "100", CallerName: `a"b`},
		"sipp keyword": {Exten: "100", CallerName: "[call_id]"},
		"bad number":   {Exten: "100", CallerNumber: "1 2"},
	} {
		if _, err := RenderCallScenario(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRenderAgentScenario(t *testing.T) {
	b, err := RenderAgentScenario(AgentOptions{Name: "agent2", AnswerAfter: 2 * time.Second, TalkFor: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b)
	s := string(b)
	for _, want := range []string{
		`<recv request="CANCEL" timeout="2000" ontimeout="answer"/>`,
		"SIP/2.0 487 Request Terminated",
		`<recv request="BYE" timeout="3000" ontimeout="agentbye" next="farbye"/>`,
		"Contact: <sip:agent2@[local_ip]:[local_port];transport=[transport]>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("agent scenario lacks %q", want)
		}
	}
	b, err = RenderAgentScenario(AgentOptions{Name: "agent1"})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b)
	if s := string(b); strings.Contains(s, "agentbye") || !strings.Contains(s, `timeout="1" ontimeout="answer"`) {
		t.Errorf("answer-at-once/wait-for-BYE agent scenario wrong:\n%s", s)
	}
	if _, err := RenderAgentScenario(AgentOptions{Name: "agent9"}); err == nil {
		t.Error("agent9 accepted")
	}
}

func TestAgentPort(t *testing.T) {
	for name, want := range map[string]int{"agent1": 5070, "agent2": 5071, "agent3": 5072} {
		if got, err := AgentPort(name); err != nil || got != want {
			t.Errorf("AgentPort(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "agent", "agent0", "agent4", "bob1"} {
		if _, err := AgentPort(bad); err == nil {
			t.Errorf("AgentPort(%q): no error", bad)
		}
	}
}

func TestParseStatCSV(t *testing.T) {
	// Shape of a real sipp 3.6 -trace_stat file (trimmed columns; dates hold a tab).
	csv := "StartTime;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n" +
		"2026-11-21\t05:55:40.7;1;0;0;0;0;\n" +
		"2026-11-21\t05:55:44.8;0;1;1;0;2;\n"
	ok, failed, good := parseStatCSV(csv)
	if !good || ok != 1 || failed != 2 {
		t.Errorf("parseStatCSV = %d, %d, %v", ok, failed, good)
	}
	screen := "  Successful call        |        0                  |        1\n  Failed call            |        0                  |        0\n"
	dir := t.TempDir()
	if s, f := parseSIPpCounts(dir, screen); s != 1 || f != 0 {
		t.Errorf("screen fallback = %d, %d", s, f)
	}
}

func TestReadARIUser(t *testing.T) {
	// The sample config shipped with the project.
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	u, p, err := readARIUser(filepath.Join(root, "configs", "asterisk", "ari.conf"))
	if err != nil || u != "deflectd" || p != "deflectd-secret" {
		t.Errorf("configs/asterisk/ari.conf user = %q %q %v", u, p, err)
	}
	f := filepath.Join(t.TempDir(), "ari.conf")
	os.WriteFile(f, []byte("[general]\nenabled=yes\n[ro](!)\n[viewer]\ntype = user ; comment\nread_only=yes\n[x]\ntype=user\npassword => pw;c\n"), 0o644)
	if u, p, err := readARIUser(f); err != nil || u != "x" || p != "pw" {
		t.Errorf("got %q %q %v, want the first user with a password", u, p, err)
	}
}

func TestCheck(t *testing.T) {
	if err := Check("no-such-dependency"); err == nil {
		t.Error("unknown dependency accepted")
	}
	if err := Check(); err != nil {
		t.Error(err)
	}
}

func TestFreeUDPPorts(t *testing.T) {
	ps, err := freeUDPPorts(1, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i, p := range ps {
		if p < portLo || p >= portHi || p%2 != 0 {
			t.Errorf("port %d outside %d-%d or odd", p, portLo, portHi)
		}
		w := []int{1, 4, 4}[i]
		for j := 0; j < w; j++ {
			if seen[p+j] {
				t.Errorf("port %d handed out twice", p+j)
			}
			seen[p+j] = true
		}
	}
}

// TestScenariosLoadInSIPp feeds every template variant to the real sipp
// (no Asterisk needed): sipp validates a scenario when it loads it and exits
// at once on errors such as a variable that is assigned but never used. A
// valid scenario keeps running until `timeout` stops it.
func TestScenariosLoadInSIPp(t *testing.T) {
	Require(t, "sipp", "timeout")
	calls := map[string]CallOptions{
		"wait-bye":      {Exten: "100"},
		"hangup":        {Exten: "100", HangupAfter: time.Second},
		"dtmf":          {Exten: "700", DTMF: []DTMF{{Digit: "1"}}},
		"dtmf+hangup":   {Exten: "700", DTMF: []DTMF{{Digit: "1"}, {After: time.Second, Digit: "*"}}, HangupAfter: 3 * time.Second},
		"name-and-nums": {Exten: "+4930123", CallerNumber: "anonymous", CallerName: "Zoë Ünicode"},
	}
	agents := map[string]AgentOptions{
		"wait-bye":  {Name: "agent1"},
		"talk":      {Name: "agent2", AnswerAfter: time.Second, TalkFor: time.Second},
		"ring-only": {Name: "agent3", AnswerAfter: time.Minute},
	}
	type variant struct {
		scen []byte
		uac  bool
	}
	all := map[string]variant{}
	for n, o := range calls {
		b, err := RenderCallScenario(o)
		if err != nil {
			t.Fatal(n, err)
		}
		all["call/"+n] = variant{b, true}
	}
	for n, o := range agents {
		b, err := RenderAgentScenario(o)
		if err != nil {
			t.Fatal(n, err)
		}
		all["agent/"+n] = variant{b, false}
	}
	for name, v := range all {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := filepath.Join(dir, "s.xml")
			if err := os.WriteFile(f, v.scen, 0o644); err != nil {
				t.Fatal(err)
			}
			ports, err := freeUDPPorts(1, 1, 4, 1) // SIP, control, media, a dead remote
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"1", "sipp", "-sf", f, "-p", strconv.Itoa(ports[0]), "-cp", strconv.Itoa(ports[1]),
				"-mp", strconv.Itoa(ports[2]), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local", "-nostdin", "-m", "1"}
			if v.uac {
				args = append(args, "-s", "100", "127.0.0.1:"+strconv.Itoa(ports[3]))
			}
			out, err := exec.Command("timeout", args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 124 {
				t.Fatalf("sipp did not keep running with the scenario (%v):\n%s\n--- scenario\n%s", err, lastLines(string(out), 10), v.scen)
			}
		})
	}
}

// A testing.T's Logf used after its test finished must not panic the
// harness (the ari package's e2e tests pass the first test's t.Logf).
func TestLogfAfterTestCompleted(t *testing.T) {
	var logf func(string, ...any)
	t.Run("first", func(t *testing.T) { logf = t.Logf })
	s := &Sandbox{logf: safeLogf(logf)}
	s.logf("after completion: %d", 1) // would panic without the guard
}
