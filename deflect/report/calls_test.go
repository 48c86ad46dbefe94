package report

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari/queuelog"
	"github.com/google/go-cmp/cmp"
)

// fixture is a hand-built queue_log with one call of each kind.
const fixture = `1795230000|NONE|NONE|NONE|QUEUESTART|
1795230000|NONE|sales|PJSIP/agent1|ADDMEMBER|
1795230010|ans-q2|sales|NONE|ENTERQUEUE||+5491100000001|1
1795230014|ans-q2|sales|Agent One|RINGNOANSWER|3000
1795230020|ans-q2|sales|Agent One|CONNECT|10|1795230019.9|2
1795230140|ans-q2|sales|Agent One|COMPLETECALLER|10|120|1
1795230030|ab-q2|sales|NONE|ENTERQUEUE||+5491100000002|2
1795230075|ab-q2|sales|NONE|ABANDON|2|2|45
1795230040|def-q2|hold|NONE|ENTERQUEUE||+5491100000003|1
1795230043|def-q2|hold|NONE|EXITWITHKEY|D|1|1|3
1795230050|key-q2|hold|NONE|ENTERQUEUE||+5491100000004|2
1795230052|key-q2|hold|NONE|EXITWITHKEY|5|2|2|2
1795230060|re-q2|support|NONE|ENTERQUEUE||+5491100000005|1
1795230360|re-q2|support|NONE|EXITWITHTIMEOUT|1|1|300
1795230361|re-q2|sales|NONE|ENTERQUEUE||+5491100000005|3
1795230370|re-q2|sales|Agent One|CONNECT|9|1795230369.1|1
1795230400|re-q2|sales|Agent One|BLINDTRANSFER|200|from-agent|9|30|3
1795230500|late-q2|sales|NONE|ABANDON|1|1|5
1795230600|bad-q2|sales|NONE|ENTERQUEUE||+5491100000006|1
1795230610|bad-q2|sales|NONE|ABANDON|1|1|x
1795230700|wait-q2|sales|NONE|ENTERQUEUE||+5491100000007|1
`

func assemble(t *testing.T, log string) *Assembler {
	t.Helper()
	a := &Assembler{}
	r := queuelog.NewReader(strings.NewReader(log), "fixture")
	for {
		e, err := r.Next()
		if err == io.EOF {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		a.Add(e)
	}
}

func TestAssembleEveryOutcome(t *testing.T) {
	a := assemble(t, fixture)
	type row struct {
		ID      string
		Queue   string
		Outcome Outcome
		Wait    time.Duration
		Talk    time.Duration
		Xfer    bool
		RNA     int
		Key     string
	}
	var got []row
	for _, c := range a.Calls() {
		got = append(got, row{c.ID, c.Queue, c.Outcome, c.Wait, c.Talk, c.Transferred, c.RingNoAnswers, c.Key})
	}
	s := time.Second
	want := []row{
		{"ans-q2", "sales", Answered, 10 * s, 120 * s, false, 1, ""},
		{"ab-q2", "sales", Abandoned, 45 * s, 0, false, 0, ""},
		{"def-q2", "hold", Deflected, 3 * s, 0, false, 0, "D"},
		{"key-q2", "hold", ExitKey, 2 * s, 0, false, 0, "5"},
		{"re-q2", "support", Timeout, 300 * s, 0, false, 0, ""},
		{"re-q2", "sales", Answered, 9 * s, 30 * s, true, 0, ""}, // re-entered another queue
		{"bad-q2", "sales", Abandoned, 10 * s, 0, false, 0, ""},  // bad wait column: the lines' times
		{"wait-q2", "sales", Open, 0, 0, false, 0, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(a.Problems) != 2 || !strings.Contains(a.Problems[0], "ABANDON without an ENTERQUEUE") || !strings.Contains(a.Problems[1], `"x", want seconds`) {
		t.Errorf("problems = %q, want the orphan ABANDON and the bad column", a.Problems)
	}
}

// FuzzAssemble: any queue_log, however broken, assembles and summarizes
// without a panic, and each queue's outcomes add up to what it offered.
func FuzzAssemble(f *testing.F) {
	f.Add(fixture)
	f.Add("1|a|q|NONE|ENTERQUEUE||+1|1\n2|a|q|NONE|CONNECT|x\n3|a|q|NONE|COMPLETEAGENT\n")
	f.Add("1|a|q|NONE|EXITWITHKEY\n1|a|q|NONE|ENTERQUEUE\n1|a|q|NONE|ENTERQUEUE\n")
	f.Fuzz(func(t *testing.T, log string) {
		a := &Assembler{}
		r := queuelog.NewReader(strings.NewReader(log), "fuzz")
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			var le *queuelog.LineError
			if errors.As(err, &le) {
				continue
			}
			if err != nil {
				return // a line past the reader's limit
			}
			a.Add(e)
		}
		for q, k := range Summarize(a.Calls(), Options{}) {
			if sum := k.Answered + k.Abandoned + k.ShortAbandoned + k.Deflected + k.ExitKey + k.Timeout + k.ExitEmpty; sum != k.Offered {
				t.Fatalf("queue %q: outcomes add to %d, offered %d", q, sum, k.Offered)
			}
			if k.AbandonRate < 0 || k.AbandonRate > 1 || k.SL2 < 0 || k.SL2 > 1 || k.SLOffered > 1 {
				t.Fatalf("queue %q: a rate out of [0, 1]: %+v", q, k)
			}
		}
	})
}
