package ewt

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestQL(t *testing.T) {
	tests := []struct {
		name   string
		ahead  int
		agents int
		handle time.Duration
		theta  float64
		want   time.Duration
		wantOk bool
	}{
		{name: "head of line, one agent", ahead: 0, agents: 1, handle: time.Minute, want: time.Minute, wantOk: true},
		{name: "five ahead of five agents", ahead: 4, agents: 5, handle: 5 * time.Minute, want: 5 * time.Minute, wantOk: true},
		// sμ = 2/120 = 1/60, θ = 1/60: 60·(1 + 1/2 + 1/3) = 110 s.
		{name: "abandonment", ahead: 2, agents: 2, handle: 2 * time.Minute, theta: 1.0 / 60, want: 110 * time.Second, wantOk: true},
		// sμ = 4/200 = 0.02, θ = 0.01: 1/0.02 + 1/0.03 = 50 + 33.3… s.
		{name: "abandonment, fractional", ahead: 1, agents: 4, handle: 200 * time.Second, theta: 0.01, want: 83333333333, wantOk: true},
		// Abandonment only shortens the wait of callers behind someone.
		{name: "abandonment at the head", ahead: 0, agents: 3, handle: 3 * time.Minute, theta: 0.5, want: time.Minute, wantOk: true},
		{name: "capped", ahead: 1_000_000, agents: 1, handle: time.Hour, want: maxWait, wantOk: true},
		{name: "no agents", ahead: 3, agents: 0, handle: time.Minute},
		{name: "negative agents", ahead: 3, agents: -1, handle: time.Minute},
		{name: "no handle time", ahead: 3, agents: 2},
		{name: "negative ahead", ahead: -1, agents: 2, handle: time.Minute},
		{name: "negative theta", ahead: 1, agents: 2, handle: time.Minute, theta: -0.1},
		{name: "NaN theta", ahead: 1, agents: 2, handle: time.Minute, theta: math.NaN()},
		{name: "infinite theta", ahead: 1, agents: 2, handle: time.Minute, theta: math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := QL(tt.ahead, tt.agents, tt.handle, tt.theta)
			if got != tt.want || ok != tt.wantOk {
				t.Errorf("QL(%d, %d, %v, %v) = %v, %v, want %v, %v",
					tt.ahead, tt.agents, tt.handle, tt.theta, got, ok, tt.want, tt.wantOk)
			}
		})
	}
}

// With θ = 0 the sum is (n+1)/(sμ); a vanishing θ takes the summing path and
// must land on the same figure.
func TestQLWithoutAbandonment(t *testing.T) {
	for _, ahead := range []int{0, 1, 7, 49} {
		for _, agents := range []int{1, 3, 10} {
			for _, handle := range []time.Duration{30 * time.Second, 4*time.Minute + 10*time.Second} {
				t.Run(fmt.Sprintf("n=%d,s=%d,h=%v", ahead, agents, handle), func(t *testing.T) {
					want := time.Duration(ahead+1) * handle / time.Duration(agents)
					if got, _ := QL(ahead, agents, handle, 0); (got - want).Abs() > time.Nanosecond {
						t.Errorf("QL(%d, %d, %v, 0) = %v, want %v", ahead, agents, handle, got, want)
					}
					if got, _ := QL(ahead, agents, handle, 1e-15); (got - want).Abs() > time.Microsecond {
						t.Errorf("QL(%d, %d, %v, 1e-15) = %v, want %v", ahead, agents, handle, got, want)
					}
				})
			}
		}
	}
}

func TestEWMA(t *testing.T) {
	// Asterisk starts every queue at 0 and moves a quarter of the way to
	// each new wait, in whole seconds.
	waits := []time.Duration{60 * time.Second, 120 * time.Second, 0, 30 * time.Second, -5 * time.Second, 59900 * time.Millisecond}
	want := []time.Duration{15 * time.Second, 41 * time.Second, 30 * time.Second, 30 * time.Second, 22 * time.Second, 31 * time.Second}
	var hold time.Duration
	var got []time.Duration
	for _, w := range waits {
		hold = EWMA(hold, w)
		got = append(got, hold)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EWMA over %v (-want +got):\n%s", waits, diff)
	}
}

func TestAnnounce(t *testing.T) {
	tests := []struct {
		hold, elapsed, want time.Duration
	}{
		{hold: 0, elapsed: 0, want: 0},
		{hold: 29 * time.Second, elapsed: 0, want: 0},
		{hold: 30 * time.Second, elapsed: 0, want: time.Minute},
		{hold: 2 * time.Minute, elapsed: 0, want: 2 * time.Minute},
		{hold: 2 * time.Minute, elapsed: 100 * time.Second, want: 0},
		// Past the average the figure grows again: (150−300)/60 = −2.
		{hold: 2 * time.Minute, elapsed: 5 * time.Minute, want: 2 * time.Minute},
		{hold: 2 * time.Minute, elapsed: 10 * time.Minute, want: 7 * time.Minute},
		{hold: 10 * time.Minute, elapsed: 1 * time.Minute, want: 9 * time.Minute},
	}
	for _, tt := range tests {
		if got := Announce(tt.hold, tt.elapsed); got != tt.want {
			t.Errorf("Announce(%v, %v) = %v, want %v", tt.hold, tt.elapsed, got, tt.want)
		}
	}
}

func TestNewQueueOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    Options
		wantErr bool
	}{
		{
			name: "defaults",
			want: Options{DefaultHandle: 3 * time.Minute, HandleWindow: 50, DefaultPatience: 5 * time.Minute, AbandonWindow: 200, MinAbandonSamples: 20},
		},
		{
			name: "small window caps the minimum",
			opts: Options{AbandonWindow: 10},
			want: Options{DefaultHandle: 3 * time.Minute, HandleWindow: 50, DefaultPatience: 5 * time.Minute, AbandonWindow: 10, MinAbandonSamples: 10},
		},
		{
			name: "set",
			opts: Options{DefaultHandle: time.Minute, Wrapup: 10 * time.Second, HandleWindow: 5, DefaultPatience: time.Hour, AbandonWindow: 30, MinAbandonSamples: 30},
			want: Options{DefaultHandle: time.Minute, Wrapup: 10 * time.Second, HandleWindow: 5, DefaultPatience: time.Hour, AbandonWindow: 30, MinAbandonSamples: 30},
		},
		{name: "minimum above window", opts: Options{AbandonWindow: 10, MinAbandonSamples: 11}, wantErr: true},
		{name: "negative handle", opts: Options{DefaultHandle: -time.Second}, wantErr: true},
		{name: "negative wrapup", opts: Options{Wrapup: -time.Second}, wantErr: true},
		{name: "negative window", opts: Options{HandleWindow: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewQueue(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewQueue(%+v) error = %v, want error %v", tt.opts, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, q.opts); diff != "" {
				t.Errorf("NewQueue(%+v) options (-want +got):\n%s", tt.opts, diff)
			}
		})
	}
}

func newQueue(t testing.TB, opts Options) *Queue {
	t.Helper()
	q, err := NewQueue(opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// positions lists the position of each call, in the order given.
func positions(q *Queue, ids ...string) []int {
	var p []int
	for _, id := range ids {
		p = append(p, q.Position(id))
	}
	return p
}

func TestQueuePosition(t *testing.T) {
	type step struct {
		op  string // enter, answer, abandon, leave
		id  string
		at  time.Duration
		all []int // positions of a..f after the step
	}
	ids := []string{"a", "b", "c", "d", "e", "f"}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "interleaved",
			steps: []step{
				{"enter", "a", 0, []int{1, 0, 0, 0, 0, 0}},
				{"enter", "b", 1 * time.Second, []int{1, 2, 0, 0, 0, 0}},
				{"enter", "c", 2 * time.Second, []int{1, 2, 3, 0, 0, 0}},
				{"answer", "a", 3 * time.Second, []int{0, 1, 2, 0, 0, 0}},
				{"enter", "d", 4 * time.Second, []int{0, 1, 2, 3, 0, 0}},
				{"abandon", "c", 5 * time.Second, []int{0, 1, 0, 2, 0, 0}},
				{"enter", "e", 6 * time.Second, []int{0, 1, 0, 2, 3, 0}},
				{"leave", "d", 7 * time.Second, []int{0, 1, 0, 0, 2, 0}},
				{"enter", "f", 8 * time.Second, []int{0, 1, 0, 0, 2, 3}},
				{"answer", "b", 9 * time.Second, []int{0, 0, 0, 0, 1, 2}},
				{"answer", "e", 10 * time.Second, []int{0, 0, 0, 0, 0, 1}},
				{"answer", "f", 11 * time.Second, []int{0, 0, 0, 0, 0, 0}},
			},
		},
		{
			name: "adopted out of order after a restart",
			steps: []step{
				{"enter", "c", 20 * time.Second, []int{0, 0, 1, 0, 0, 0}},
				{"enter", "a", 0, []int{1, 0, 2, 0, 0, 0}},
				{"enter", "b", 10 * time.Second, []int{1, 2, 3, 0, 0, 0}},
			},
		},
		{
			name: "same entry time keeps call order",
			steps: []step{
				{"enter", "b", 0, []int{0, 1, 0, 0, 0, 0}},
				{"enter", "a", 0, []int{2, 1, 0, 0, 0, 0}},
				{"enter", "c", 0, []int{2, 1, 3, 0, 0, 0}},
				{"leave", "b", 0, []int{1, 0, 2, 0, 0, 0}},
			},
		},
		{
			name: "repeated and unknown events change nothing",
			steps: []step{
				{"enter", "a", 0, []int{1, 0, 0, 0, 0, 0}},
				{"enter", "b", time.Second, []int{1, 2, 0, 0, 0, 0}},
				{"enter", "a", 2 * time.Second, []int{1, 2, 0, 0, 0, 0}},
				{"answer", "z", 3 * time.Second, []int{1, 2, 0, 0, 0, 0}},
				{"abandon", "a", 4 * time.Second, []int{0, 1, 0, 0, 0, 0}},
				{"abandon", "a", 5 * time.Second, []int{0, 1, 0, 0, 0, 0}},
				{"answer", "a", 6 * time.Second, []int{0, 1, 0, 0, 0, 0}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t, Options{})
			for i, s := range tt.steps {
				switch s.op {
				case "enter":
					q.Entered(s.id, at(s.at))
				case "answer":
					q.Answered(s.id, at(s.at))
				case "abandon":
					q.Abandoned(s.id, at(s.at))
				case "leave":
					q.Left(s.id, at(s.at))
				}
				if diff := cmp.Diff(s.all, positions(q, ids...)); diff != "" {
					t.Fatalf("step %d (%s %s): Position(a..f) (-want +got):\n%s", i, s.op, s.id, diff)
				}
				want := 0
				for _, p := range s.all {
					want = max(want, p)
				}
				if got := q.Len(); got != want {
					t.Fatalf("step %d (%s %s): Len() = %d, want %d", i, s.op, s.id, got, want)
				}
			}
		})
	}
}

// wait is one finished wait fed to a Queue.
type wait struct {
	d   time.Duration
	out string // answer, abandon, leave
}

func feed(q *Queue, waits []wait) {
	start := t0
	for i, w := range waits {
		id := fmt.Sprint("call-", i)
		q.Entered(id, start)
		switch w.out {
		case "answer":
			q.Answered(id, start.Add(w.d))
		case "abandon":
			q.Abandoned(id, start.Add(w.d))
		case "leave":
			q.Left(id, start.Add(w.d))
		}
		start = start.Add(time.Hour)
	}
}

func repeat(n int, w wait) []wait {
	ws := make([]wait, n)
	for i := range ws {
		ws[i] = w
	}
	return ws
}

func TestQueueAbandonRate(t *testing.T) {
	opts := Options{DefaultPatience: 4 * time.Minute, AbandonWindow: 10, MinAbandonSamples: 4}
	tests := []struct {
		name  string
		waits []wait
		want  float64
	}{
		{name: "no history", want: 1.0 / 240},
		{name: "too few", waits: repeat(3, wait{60 * time.Second, "abandon"}), want: 1.0 / 240},
		{
			name:  "all abandon at 60 s",
			waits: repeat(4, wait{60 * time.Second, "abandon"}),
			want:  1.0 / 60,
		},
		{
			// 2 abandons over 30+90+120+60 = 300 s of waiting.
			name:  "answered and deflected waits are censored",
			waits: []wait{{30 * time.Second, "abandon"}, {90 * time.Second, "answer"}, {120 * time.Second, "leave"}, {60 * time.Second, "abandon"}},
			want:  2.0 / 300,
		},
		{
			name:  "nobody abandons",
			waits: repeat(5, wait{time.Minute, "answer"}),
			want:  0,
		},
		{
			// Immediate answers say nothing about patience: still too few.
			name:  "zero waits do not count",
			waits: append(repeat(20, wait{0, "answer"}), wait{10 * time.Second, "abandon"}),
			want:  1.0 / 240,
		},
		{
			// The window keeps the last 10: one abandon at 100 s and nine
			// answers at 100 s.
			name:  "old waits leave the window",
			waits: append(repeat(10, wait{10 * time.Second, "abandon"}), append([]wait{{100 * time.Second, "abandon"}}, repeat(9, wait{100 * time.Second, "answer"})...)...),
			want:  1.0 / 1000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t, opts)
			feed(q, tt.waits)
			got := q.Joining().AbandonRate
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("AbandonRate after %v = %v, want %v", tt.waits, got, tt.want)
			}
		})
	}
}

func TestQueueHandle(t *testing.T) {
	type talk struct {
		id     string
		answer bool // Answered before Completed
		talk   time.Duration
	}
	tests := []struct {
		name  string
		opts  Options
		talks []talk
		want  time.Duration
	}{
		{name: "default", opts: Options{DefaultHandle: 4 * time.Minute}, want: 4 * time.Minute},
		{
			name:  "mean",
			talks: []talk{{"a", true, time.Minute}, {"b", true, 2 * time.Minute}, {"c", true, 6 * time.Minute}},
			want:  3 * time.Minute,
		},
		{
			name:  "wrapup added",
			opts:  Options{Wrapup: 30 * time.Second},
			talks: []talk{{"a", true, time.Minute}, {"b", true, 2 * time.Minute}},
			want:  2 * time.Minute,
		},
		{
			name:  "window keeps the last",
			opts:  Options{HandleWindow: 2},
			talks: []talk{{"a", true, 10 * time.Minute}, {"b", true, time.Minute}, {"c", true, 3 * time.Minute}},
			want:  2 * time.Minute,
		},
		{
			name:  "calls not answered here and repeats are ignored",
			opts:  Options{DefaultHandle: 4 * time.Minute},
			talks: []talk{{"a", true, time.Minute}, {"a", false, time.Hour}, {"x", false, time.Hour}},
			want:  time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t, tt.opts)
			for _, c := range tt.talks {
				if c.answer {
					q.Entered(c.id, t0)
					q.Answered(c.id, t0.Add(time.Second))
				}
				q.Completed(c.id, c.talk)
			}
			if got := q.Joining().Handle; got != tt.want {
				t.Errorf("Handle after %v = %v, want %v", tt.talks, got, tt.want)
			}
		})
	}
}

func TestQueueEstimate(t *testing.T) {
	theta := 1.0 / 300 // DefaultPatience 5 minutes
	tests := []struct {
		name          string
		logged, free  int
		call          string
		now           time.Duration
		want          Estimate
		setAgentsSkip bool
	}{
		{
			name: "agents never reported", setAgentsSkip: true, call: "c", now: time.Minute,
			want: Estimate{Position: 3, Ahead: 2, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{
			name: "no agent logged in", call: "c", now: time.Minute,
			want: Estimate{Position: 3, Ahead: 2, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{
			// sμ = 2/180, θ = 1/300: 90 + 1/(1/90+1/300) + 1/(1/90+2/300) s.
			name: "all agents busy", logged: 2, call: "c", now: time.Minute,
			want: Estimate{QL: seconds(90 + 1/(1.0/90+1.0/300) + 1/(1.0/90+2.0/300)), QLOk: true, Position: 3, Ahead: 2, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{
			name: "a free agent takes the head", logged: 2, free: 1, call: "c", now: time.Minute,
			want: Estimate{QL: seconds(90 + 1/(1.0/90+1.0/300)), QLOk: true, Position: 3, Ahead: 2, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{
			name: "enough free agents", logged: 5, free: 4, call: "c", now: time.Minute,
			want: Estimate{QL: 0, QLOk: true, Position: 3, Ahead: 2, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{
			name: "free above logged is capped", logged: 1, free: 9, call: "a", now: time.Minute,
			want: Estimate{QL: 0, QLOk: true, Position: 1, Ahead: 0, Handle: 3 * time.Minute, AbandonRate: theta},
		},
		{name: "not waiting", logged: 2, call: "zz", now: time.Minute, want: Estimate{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t, Options{})
			if !tt.setAgentsSkip {
				q.SetAgents(tt.logged, tt.free)
			}
			q.Entered("a", at(0))
			q.Entered("b", at(10*time.Second))
			q.Entered("c", at(20*time.Second))
			if diff := cmp.Diff(tt.want, q.Estimate(tt.call, at(tt.now))); diff != "" {
				t.Errorf("Estimate(%q, +%v) (-want +got):\n%s", tt.call, tt.now, diff)
			}
		})
	}
}

// app_queue's figure, carried alongside: one hold time for the queue, the
// same at every position, growing again for a caller past the average.
func TestQueueEstimateEWMA(t *testing.T) {
	q := newQueue(t, Options{})
	q.SetAgents(1, 0)
	// Four answered waits of 8 minutes: hold 120, 210, 277, 327 s.
	for i := range 4 {
		id := fmt.Sprint("old-", i)
		q.Entered(id, at(0))
		q.Answered(id, at(8*time.Minute))
	}
	q.Entered("a", at(10*time.Minute))
	q.Entered("b", at(11*time.Minute))
	got := []Estimate{q.Estimate("a", at(12*time.Minute)), q.Estimate("b", at(12*time.Minute)), q.Estimate("a", at(30*time.Minute))}
	var ewma, hold []time.Duration
	for _, e := range got {
		ewma = append(ewma, e.EWMA)
		hold = append(hold, e.Hold)
	}
	// (327+30−120)/60 = 3; (327+30−60)/60 = 4; |327+30−1200|/60 = 14.
	if diff := cmp.Diff([]time.Duration{3 * time.Minute, 4 * time.Minute, 14 * time.Minute}, ewma); diff != "" {
		t.Errorf("Estimate().EWMA (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{327 * time.Second, 327 * time.Second, 327 * time.Second}, hold); diff != "" {
		t.Errorf("Estimate().Hold (-want +got):\n%s", diff)
	}
}

// Run under -race: the engine's goroutine feeds events while another reads.
func TestQueueConcurrentUse(t *testing.T) {
	q := newQueue(t, Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint(g, "-", i)
				now := at(time.Duration(i) * time.Second)
				q.SetAgents(3, i%2)
				q.Entered(id, now)
				_ = q.Estimate(id, now)
				_ = q.Joining()
				if i%3 == 0 {
					q.Abandoned(id, now.Add(time.Minute))
				} else {
					q.Answered(id, now.Add(time.Minute))
					q.Completed(id, time.Minute)
				}
			}
		})
	}
	wg.Wait()
	if got := q.Len(); got != 0 {
		t.Errorf("Len() after every call left = %d, want 0", got)
	}
}

func BenchmarkEstimate(b *testing.B) {
	q := newQueue(b, Options{})
	q.SetAgents(20, 0)
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprint("call-", i)
		q.Entered(ids[i], at(time.Duration(i)*time.Second))
	}
	now := at(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = q.Estimate(ids[i%len(ids)], now)
		i++
	}
}
