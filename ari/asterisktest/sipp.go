package asterisktest

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

//go:embed sipp/*.xml.tmpl
var scenarioFS embed.FS

var scenarios = template.Must(template.ParseFS(scenarioFS, "sipp/*.xml.tmpl"))

// Defaults for [CallOptions].
const (
	DefaultCallerNumber = "+15551230001"
	DefaultCallerName   = "Alice Caller"
	DefaultSIPpTimeout  = 60 * time.Second
	// StopGrace is how long [SIPp.Stop] waits after SIGINT before SIGKILL.
	StopGrace = 3 * time.Second
)

// CallOptions describes one call from the trunk into Asterisk ([Sandbox.Call]).
type CallOptions struct {
	Exten        string // dialled extension in [from-trunk], e.g. "100"
	CallerNumber string // From user part; default "+15551230001"
	CallerName   string // From display name; default "Alice Caller"
	// HangupAfter is how long the caller stays after the answer (counted
	// from the 200 OK, DTMF pauses included) before sending BYE. 0 waits for
	// Asterisk to send BYE. A BYE from Asterisk that comes first is answered
	// either way and counts as success.
	HangupAfter time.Duration
	// DTMF digits sent in order after the answer, as SIP INFO
	// application/dtmf-relay (Signal=<digit>, Duration=160).
	DTMF []DTMF
	// Timeout is the hard limit for the sipp process (coreutils timeout);
	// default 60 s.
	Timeout time.Duration
	// CallerNumbers, when set, makes one sipp process place one call per
	// number (through an injection file), Rate calls per second, all
	// running at once: a load. CallerNumber is then ignored.
	CallerNumbers []string
	// Rate is the calls per second of a load; default 10.
	Rate float64
}

// DTMF is one digit to send: After is the pause before it (after the answer
// or the previous digit), Digit one of 0-9 * # A-D.
type DTMF struct {
	After time.Duration
	Digit string
}

// AgentOptions describes a queue agent ([Sandbox.Agent]): a sipp UAS on the
// agent's static contact from configs/asterisk/pjsip.conf.
type AgentOptions struct {
	Name        string        // "agent1" (port 5070), "agent2" (5071), "agent3" (5072)
	AnswerAfter time.Duration // ring this long before 200 OK; a CANCEL meanwhile gets 200 + 487
	TalkFor     time.Duration // send BYE this long after the answer; 0 waits for Asterisk's BYE
	Calls       int           // calls to handle before exiting; default 1
	Timeout     time.Duration // hard limit for the sipp process; default 60 s
}

// Result is the outcome of a finished sipp process.
type Result struct {
	Successful int    // calls that reached the end of the scenario
	Failed     int    // calls aborted (unexpected message, timeout, ...)
	ExitCode   int    // sipp: 0 all calls succeeded, 1 some failed; 124 = killed by timeout; -1 = signal
	Output     string // sipp's stdout and stderr
	Errors     string // sipp's -trace_err file (unexpected messages and such)
	Dir        string // work dir with scenario.xml, messages.log, errors.log, stat.csv
}

// SIPp is a running sipp process (wrapped in coreutils timeout).
type SIPp struct {
	name string
	cmd  *exec.Cmd
	dir  string
	out  *bytes.Buffer
	sb   *Sandbox

	done    chan struct{}
	waitErr error
	stopped bool // Stop was called
	mu      sync.Mutex
	once    sync.Once
	res     Result
	resErr  error
}

// AgentPort returns the SIP port of an agent in configs/asterisk/pjsip.conf:
// agentN listens on 127.0.0.1:(5069+N).
func AgentPort(name string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "agent"))
	if !strings.HasPrefix(name, "agent") || err != nil || n < 1 || n > 3 {
		return 0, fmt.Errorf("asterisktest: unknown agent %q (want agent1..agent3)", name)
	}
	return 5069 + n, nil
}

var (
	reDigit  = regexp.MustCompile(`^[0-9*#A-D]$`)
	reNumber = regexp.MustCompile(`^[+0-9A-Za-z*#._-]{1,64}$`)
	reName   = regexp.MustCompile(`^[^"\\<>\[\]\r\n]{0,64}$`)
	reExten  = regexp.MustCompile(`^[+0-9A-Za-z*#._-]{1,64}$`)
)

// uacData is the template data of sipp/uac.xml.tmpl.
type uacData struct {
	CallerNumber, CallerName string
	DTMF                     []uacDTMF
	HangupAfterMS            int64
	ByeCSeq                  int
}

type uacDTMF struct {
	Index   int
	PauseMS int64
	Digit   string
	CSeq    int
}

// agentData is the template data of sipp/agent.xml.tmpl.
type agentData struct {
	Name          string
	AnswerAfterMS int64
	TalkForMS     int64
}

// ms converts to whole milliseconds, at least 1 (a sipp recv timeout of 0
// means "no timeout").
func ms(d time.Duration) int64 { return max(1, d.Milliseconds()) }

// RenderCallScenario renders the UAC scenario for o (defaults applied),
// without starting anything. Exported for tests and debugging.
func RenderCallScenario(o CallOptions) ([]byte, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	d := uacData{CallerNumber: o.CallerNumber, CallerName: o.CallerName}
	if len(o.CallerNumbers) > 0 {
		d.CallerNumber = "[field0]" // from the injection file, one line per call
	}
	cseq := 2
	var used time.Duration
	for i, x := range o.DTMF {
		d.DTMF = append(d.DTMF, uacDTMF{Index: i, PauseMS: ms(x.After), Digit: x.Digit, CSeq: cseq})
		cseq++
		used += x.After
	}
	if o.HangupAfter > 0 {
		d.HangupAfterMS = ms(o.HangupAfter - used)
	}
	d.ByeCSeq = cseq
	var b bytes.Buffer
	if err := scenarios.ExecuteTemplate(&b, "uac.xml.tmpl", d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RenderAgentScenario renders the agent (UAS) scenario for o.
func RenderAgentScenario(o AgentOptions) ([]byte, error) {
	if _, err := AgentPort(o.Name); err != nil {
		return nil, err
	}
	d := agentData{Name: o.Name, AnswerAfterMS: ms(o.AnswerAfter)}
	if o.TalkFor > 0 {
		d.TalkForMS = ms(o.TalkFor)
	}
	var b bytes.Buffer
	if err := scenarios.ExecuteTemplate(&b, "agent.xml.tmpl", d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (o CallOptions) withDefaults() CallOptions {
	if o.CallerNumber == "" {
		o.CallerNumber = DefaultCallerNumber
	}
	if o.CallerName == "" {
		o.CallerName = DefaultCallerName
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultSIPpTimeout
	}
	return o
}

func (o CallOptions) validate() error {
	if !reExten.MatchString(o.Exten) {
		return fmt.Errorf("asterisktest: bad Exten %q", o.Exten)
	}
	if !reNumber.MatchString(o.CallerNumber) {
		return fmt.Errorf("asterisktest: bad CallerNumber %q", o.CallerNumber)
	}
	for _, n := range o.CallerNumbers {
		if !reNumber.MatchString(n) {
			return fmt.Errorf("asterisktest: bad CallerNumbers entry %q", n)
		}
	}
	// No quotes, brackets (sipp keywords) or line breaks in the display name.
	if !reName.MatchString(o.CallerName) {
		return fmt.Errorf("asterisktest: bad CallerName %q", o.CallerName)
	}
	for _, x := range o.DTMF {
		if !reDigit.MatchString(x.Digit) {
			return fmt.Errorf("asterisktest: bad DTMF digit %q", x.Digit)
		}
	}
	return nil
}

// Call places one call from the trunk to o.Exten: a sipp UAC (-m 1) on a
// free local port, started in the background. Wait for it with
// [SIPp.Wait]; cancelling ctx stops it.
func (s *Sandbox) Call(ctx context.Context, o CallOptions) (*SIPp, error) {
	o = o.withDefaults()
	scen, err := RenderCallScenario(o)
	if err != nil {
		return nil, err
	}
	ports, err := freeUDPPorts(2, 1, 4) // SIP, control, media (RTP/RTCP audio + video)
	if err != nil {
		return nil, err
	}
	args := []string{"-s", o.Exten, s.SIPAddr, "-p", strconv.Itoa(ports[0]), "-cp", strconv.Itoa(ports[1]),
		"-mp", strconv.Itoa(ports[2])}
	var files map[string][]byte
	if n := len(o.CallerNumbers); n > 0 {
		rate := o.Rate
		if rate <= 0 {
			rate = 10
		}
		inf := "SEQUENTIAL\n" + strings.Join(o.CallerNumbers, ";\n") + ";\n"
		files = map[string][]byte{"numbers.csv": []byte(inf)}
		args = append(args, "-inf", "numbers.csv", "-m", strconv.Itoa(n), "-l", strconv.Itoa(n),
			"-r", "1", "-rp", strconv.Itoa(max(1, int(1000/rate)))) // one call every 1/rate s
	} else {
		args = append(args, "-m", "1", "-l", "1")
	}
	return s.startSIPp(ctx, "call-"+o.Exten, scen, o.Timeout, args, files)
}

// Agent starts a queue agent: a sipp UAS on the agent's port (agent1 =
// 127.0.0.1:5070) that handles up to o.Calls calls and then exits.
// Do not start an agent on a port within ~32 s of a test that left an
// INVITE to that port unanswered: the stale transaction's CANCEL would
// reach the new agent.
func (s *Sandbox) Agent(ctx context.Context, o AgentOptions) (*SIPp, error) {
	port, err := AgentPort(o.Name)
	if err != nil {
		return nil, err
	}
	if o.Calls <= 0 {
		o.Calls = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultSIPpTimeout
	}
	scen, err := RenderAgentScenario(o)
	if err != nil {
		return nil, err
	}
	if !udpFree(port) {
		return nil, fmt.Errorf("asterisktest: UDP port %d for %s is in use (another agent still running?)", port, o.Name)
	}
	ports, err := freeUDPPorts(1, 4) // control, media
	if err != nil {
		return nil, err
	}
	args := []string{"-p", strconv.Itoa(port), "-cp", strconv.Itoa(ports[0]), "-mp", strconv.Itoa(ports[1]),
		"-m", strconv.Itoa(o.Calls)}
	return s.startSIPp(ctx, o.Name, scen, o.Timeout, args, nil)
}

func (s *Sandbox) startSIPp(ctx context.Context, name string, scenario []byte, limit time.Duration, args []string, files map[string][]byte) (*SIPp, error) {
	if s.workDir == "" {
		return nil, errors.New("asterisktest: sandbox not started")
	}
	dir, err := os.MkdirTemp(s.workDir, name+"-")
	if err != nil {
		return nil, err
	}
	scenPath := filepath.Join(dir, "scenario.xml")
	if err := os.WriteFile(scenPath, scenario, 0o644); err != nil {
		return nil, err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	secs := int((limit + time.Second - 1) / time.Second)
	full := []string{"--kill-after=5s", strconv.Itoa(secs) + "s", "sipp", "-sf", scenPath}
	full = append(full, args...)
	full = append(full,
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local", // loopback only
		"-nostdin", // never read commands from the terminal
		"-aa",      // auto-answer INFO/NOTIFY/OPTIONS/UPDATE from Asterisk with 200
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1",
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
	)
	cmd := exec.Command("timeout", full...)
	cmd.Dir = dir
	out := &bytes.Buffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = nil
	// Own process group (timeout makes one anyway), so SIGKILL can reach
	// sipp through the group of the wrapper we started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.logf("asterisktest: timeout %s", strings.Join(full, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("asterisktest: start sipp: %w", err)
	}
	p := &SIPp{name: name, cmd: cmd, dir: dir, out: out, sb: s, done: make(chan struct{})}
	s.mu.Lock()
	s.procs[p] = struct{}{}
	s.mu.Unlock()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
		s.mu.Lock()
		delete(s.procs, p)
		s.mu.Unlock()
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Stop()
		case <-p.done:
		}
	}()
	return p, nil
}

// stopSIPp stops every sipp process started by this sandbox that still runs.
func (s *Sandbox) stopSIPp() {
	s.mu.Lock()
	var ps []*SIPp
	for p := range s.procs {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		_ = p.Stop()
	}
}

// PID is the PID of the coreutils timeout process that wraps sipp (sipp is
// its child, in its process group; signals sent to it reach sipp).
func (p *SIPp) PID() int { return p.cmd.Process.Pid }

// Dir is the work dir with the rendered scenario.xml and sipp's logs.
func (p *SIPp) Dir() string { return p.dir }

// Done is closed when the process has exited.
func (p *SIPp) Done() <-chan struct{} { return p.done }

// Wait waits for sipp to exit and returns its call counts. The error is
// non-nil when sipp did not finish on its own with exit code 0 or 1 (killed
// by its timeout, a bad scenario, a port in use...), unless [SIPp.Stop] ended
// it; it then carries sipp's output and error trace. A failed call alone
// (exit 1) is not an error: check Result.Failed.
func (p *SIPp) Wait() (Result, error) {
	<-p.done
	p.once.Do(func() {
		r := Result{Dir: p.dir, ExitCode: 0, Output: p.out.String()}
		if p.waitErr != nil {
			var ee *exec.ExitError
			if errors.As(p.waitErr, &ee) {
				r.ExitCode = ee.ExitCode()
			} else {
				r.ExitCode = -1
			}
		}
		if b, err := os.ReadFile(filepath.Join(p.dir, "errors.log")); err == nil {
			r.Errors = string(b)
		}
		r.Successful, r.Failed = parseSIPpCounts(p.dir, r.Output)
		p.res = r
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if r.ExitCode != 0 && r.ExitCode != 1 && !stopped {
			p.resErr = fmt.Errorf("asterisktest: sipp %s exited with %d (%s)\n%s", p.name, r.ExitCode,
				exitMeaning(r.ExitCode), p.Describe())
		}
	})
	return p.res, p.resErr
}

// Describe summarises the process for a failure message: exit status, the
// tail of its output and its error trace.
func (p *SIPp) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sipp %s (dir %s)\n--- output (tail)\n%s\n", p.name, p.dir, lastLines(p.out.String(), 25))
	if e, err := os.ReadFile(filepath.Join(p.dir, "errors.log")); err == nil && len(e) > 0 {
		fmt.Fprintf(&b, "--- errors.log (tail)\n%s\n", lastLines(string(e), 25))
	}
	return b.String()
}

// Stop ends sipp: SIGINT to the wrapper PID (forwarded to sipp), then
// SIGKILL to its process group after [StopGrace]. Calls in progress are not
// cancelled on the SIP level.
func (p *SIPp) Stop() error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(StopGrace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // the group: wrapper and sipp
	select {
	case <-p.done:
		return nil
	case <-time.After(StopGrace):
		return fmt.Errorf("asterisktest: sipp %s (pid %d) did not exit after SIGKILL", p.name, pid)
	}
}

func exitMeaning(code int) string {
	switch code {
	case 0:
		return "all calls successful"
	case 1:
		return "some calls failed"
	case 97:
		return "exit on internal command"
	case 99:
		return "normal exit without calls processed"
	case 124:
		return "killed by its timeout"
	case 125, 126, 127:
		return "could not run sipp"
	case 137:
		return "SIGKILL after its timeout"
	case 255:
		return "fatal sipp error"
	case -1:
		return "killed by a signal"
	}
	return "unexpected"
}

var (
	reSuccessful = regexp.MustCompile(`Successful call\s*\|\s*\d+\s*\|\s*(\d+)`)
	reFailed     = regexp.MustCompile(`Failed call\s*\|\s*\d+\s*\|\s*(\d+)`)
)

// parseSIPpCounts reads the cumulative SuccessfulCall/FailedCall counters
// from the last row of sipp's -trace_stat CSV, falling back to the
// "Successful call" / "Failed call" rows of its final screen.
func parseSIPpCounts(dir, output string) (ok, failed int) {
	if b, err := os.ReadFile(filepath.Join(dir, "stat.csv")); err == nil {
		if s, f, good := parseStatCSV(string(b)); good {
			return s, f
		}
	}
	screen := output
	if b, err := os.ReadFile(filepath.Join(dir, "screen.log")); err == nil && len(b) > 0 {
		screen = string(b)
	}
	if m := reSuccessful.FindAllStringSubmatch(screen, -1); m != nil {
		ok, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := reFailed.FindAllStringSubmatch(screen, -1); m != nil {
		failed, _ = strconv.Atoi(m[len(m)-1][1])
	}
	return ok, failed
}

// parseStatCSV returns the last row's SuccessfulCall(C) and FailedCall(C)
// columns of a sipp -trace_stat file (';'-separated, header first).
func parseStatCSV(csv string) (ok, failed int, good bool) {
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) < 2 {
		return 0, 0, false
	}
	header := strings.Split(strings.TrimSpace(lines[0]), ";")
	last := strings.Split(strings.TrimSpace(lines[len(lines)-1]), ";")
	si, fi := -1, -1
	for i, h := range header {
		switch h {
		case "SuccessfulCall(C)":
			si = i
		case "FailedCall(C)":
			fi = i
		}
	}
	if si < 0 || fi < 0 || si >= len(last) || fi >= len(last) {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(strings.TrimSpace(last[si]))
	f, err2 := strconv.Atoi(strings.TrimSpace(last[fi]))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return s, f, true
}

// Free UDP ports for sipp are picked at random from 31000-32699: above
// Asterisk's RTP range (10000-30000), below Linux's default ephemeral range
// (32768+), clear of the agents' 5070-5072.
const portLo, portHi = 31000, 32700

var (
	portMu     sync.Mutex
	portRecent = map[int]time.Time{} // ports handed out, not reused for a minute
)

// freeUDPPorts returns, for each requested width, the first of that many
// consecutive free UDP ports (free on 0.0.0.0, so on 127.0.0.1 as well).
func freeUDPPorts(widths ...int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	now := time.Now()
	for p, t := range portRecent {
		if now.Sub(t) > time.Minute {
			delete(portRecent, p)
		}
	}
	var out []int
	for _, w := range widths {
		found := false
		for try := 0; try < 200 && !found; try++ {
			base := portLo + 2*rand.IntN((portHi-portLo-w)/2) // even: RTP convention
			okAll := true
			for i := 0; i < w && okAll; i++ {
				_, recent := portRecent[base+i]
				okAll = !recent && udpFree(base+i)
			}
			if okAll {
				for i := 0; i < w; i++ {
					portRecent[base+i] = now
				}
				out = append(out, base)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("asterisktest: no %d free consecutive UDP ports in %d-%d", w, portLo, portHi)
		}
	}
	return out, nil
}

func udpFree(port int) bool {
	c, err := net.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
