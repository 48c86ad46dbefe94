package asterisktest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildMarker is the file scripts/asterisk-sandbox writes into the sandbox
// dir when a chroot build has completed.
const buildMarker = ".build-complete"

// Default addresses of the sandbox; they follow configs/asterisk/{http,pjsip}.conf.
const (
	DefaultARIURL  = "http://127.0.0.1:8088/ari"
	DefaultSIPAddr = "127.0.0.1:5060"
)

// SandboxDir is where scripts/asterisk-sandbox keeps the chroot, its pid file
// and logs: $DEFLECTD_SANDBOX, else $XDG_CACHE_HOME/deflectd/asterisk-sandbox,
// else $HOME/.cache/deflectd/asterisk-sandbox (as the script computes it).
func SandboxDir() string {
	if d := os.Getenv("DEFLECTD_SANDBOX"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "deflectd", "asterisk-sandbox")
}

// Options configures [Start].
type Options struct {
	// Script is the path to scripts/asterisk-sandbox. Default: found by
	// walking up from the working directory to the directory with go.mod.
	Script string
	// Logf receives progress lines (the script's stderr, sipp command
	// lines) for the whole life of the Sandbox. Default: discard. log.Printf
	// fits best; a testing.T's Logf works too, but lines logged after that
	// test has finished are dropped (testing would panic on them).
	Logf func(format string, args ...any)
	// ReplaceRunning stops a sandbox Asterisk that is still running from the
	// same sandbox dir (say, left over by a test binary killed on timeout)
	// instead of failing.
	ReplaceRunning bool
	// KeepFiles keeps the sipp work dir (scenarios, logs, traces) after
	// Stop; it is also kept when DEFLECTD_KEEP_SIPP=1.
	KeepFiles bool
}

// Sandbox is a running Asterisk started by [Start].
type Sandbox struct {
	Root     string // chroot directory
	ARIURL   string // "http://127.0.0.1:8088/ari"
	Username string // ARI user from the installed ari.conf ("deflectd")
	Password string // its password ("deflectd-secret")
	SIPAddr  string // "127.0.0.1:5060"
	PID      int    // Asterisk's PID (from the sandbox pid file)

	script  string
	logf    func(string, ...any)
	keep    bool
	workDir string // sipp scenarios and logs

	lock *os.File // flock on SandboxDir()/.harness.lock, held until Stop

	mu    sync.Mutex
	procs map[*SIPp]struct{} // sipp processes not yet waited for
}

// lockSandbox takes an exclusive flock so that test binaries of several
// packages (go test ./... runs them in parallel) use the one sandbox in
// turn instead of stopping each other's Asterisk. The kernel releases the
// lock if the process dies.
func lockSandbox(ctx context.Context, logf func(string, ...any)) (*os.File, error) {
	dir := SandboxDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".harness.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("asterisktest: lock %s: %w", f.Name(), err)
		}
		if !waiting {
			logf("asterisktest: another test process is using the sandbox; waiting for %s", f.Name())
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("asterisktest: waiting for the sandbox lock: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Start runs `scripts/asterisk-sandbox start` (which builds the chroot on
// first use, ~40 s) and returns once ARI answers.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	script := opts.Script
	if script == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		script = filepath.Join(root, "scripts", "asterisk-sandbox")
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("asterisktest: sandbox script: %w", err)
	}
	logf := safeLogf(opts.Logf)
	lock, err := lockSandbox(ctx, logf)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		lock:    lock,
		ARIURL:  DefaultARIURL,
		SIPAddr: DefaultSIPAddr,
		script:  script,
		logf:    logf,
		keep:    opts.KeepFiles || os.Getenv("DEFLECTD_KEEP_SIPP") == "1",
		procs:   map[*SIPp]struct{}{},
	}
	ok := false
	defer func() {
		if !ok {
			s.unlock()
		}
	}()
	root, err := s.run(ctx, "path")
	if err != nil {
		return nil, err
	}
	s.Root = strings.TrimSpace(root)
	if opts.ReplaceRunning {
		// We hold the lock, so a running sandbox Asterisk belongs to no live
		// test process: a leftover, or one started by hand with the script.
		if out, err := s.run(ctx, "status"); err == nil && strings.HasPrefix(out, "running") {
			logf("asterisktest: stopping leftover sandbox Asterisk (%s)", strings.TrimSpace(out))
			if _, err := s.run(ctx, "stop"); err != nil {
				return nil, err
			}
		}
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	s.workDir, err = os.MkdirTemp("", "asterisktest-")
	if err != nil {
		_, _ = s.run(ctx, "stop")
		return nil, err
	}
	ok = true
	return s, nil
}

// safeLogf wraps logf (nil: discard) so that a testing.T's Logf called after
// its test completed, which panics, just drops the line.
func safeLogf(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		defer func() { _ = recover() }()
		logf(format, args...)
	}
}

func (s *Sandbox) unlock() {
	if s.lock != nil {
		_ = s.lock.Close() // closing the fd releases the flock
		s.lock = nil
	}
}

func (s *Sandbox) start(ctx context.Context) error {
	out, err := s.run(ctx, "start")
	if err != nil {
		return err
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return errors.New("asterisktest: sandbox start printed no PID")
	}
	pid, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		return fmt.Errorf("asterisktest: sandbox start printed %q, want a PID", out)
	}
	s.PID = pid
	user, pass, err := readARIUser(filepath.Join(s.Root, "etc", "asterisk", "ari.conf"))
	if err != nil {
		return err
	}
	s.Username, s.Password = user, pass
	return nil
}

// run runs the sandbox script and returns its stdout; stderr goes to Logf
// and, on failure, into the error.
func (s *Sandbox) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	for _, l := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
		if l != "" {
			s.logf("%s", l)
		}
	}
	if err != nil {
		if args[0] == "status" {
			return stdout.String(), nil // exit 3 = stopped
		}
		return stdout.String(), fmt.Errorf("asterisktest: %s %s: %w\n%s%s", filepath.Base(s.script),
			strings.Join(args, " "), err, stdout.String(), lastLines(stderr.String(), 40))
	}
	return stdout.String(), nil
}

// Stop stops every sipp process still running, then Asterisk (graceful
// "core stop now", then signals), removes the sipp work dir unless
// KeepFiles or DEFLECTD_KEEP_SIPP=1, and lets other test processes have the
// sandbox.
func (s *Sandbox) Stop(ctx context.Context) error {
	s.stopSIPp()
	_, err := s.run(ctx, "stop")
	s.unlock()
	if !s.keep && s.workDir != "" {
		_ = os.RemoveAll(s.workDir)
	} else if s.workDir != "" {
		s.logf("asterisktest: sipp files kept in %s", s.workDir)
	}
	return err
}

// Restart stops and starts Asterisk again (fresh queue_log and
// messages.log, same configs). ARI WebSockets are closed by it; sipp
// processes are left alone.
func (s *Sandbox) Restart(ctx context.Context) error {
	if _, err := s.run(ctx, "stop"); err != nil {
		return err
	}
	return s.start(ctx)
}

// CLI runs one Asterisk CLI command (asterisk -rx) and returns its output.
func (s *Sandbox) CLI(ctx context.Context, cmd string) (string, error) {
	return s.run(ctx, "cli", cmd)
}

// QueueLogPath is $Root/var/log/asterisk/queue_log.
func (s *Sandbox) QueueLogPath() string {
	return filepath.Join(s.Root, "var", "log", "asterisk", "queue_log")
}

// QueueLog parses the queue_log written since the sandbox was (re)started.
// A missing file (no queue event yet) gives no entries and no error.
func (s *Sandbox) QueueLog() ([]QueueLogEntry, error) {
	f, err := os.Open(s.QueueLogPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQueueLog(f)
}

// APIDocsDir is where the asterisk package installs the ARI Swagger JSON
// (resources.json, channels.json, events.json, ...):
// $Root/usr/share/asterisk/rest-api.
func (s *Sandbox) APIDocsDir() string {
	return filepath.Join(s.Root, "usr", "share", "asterisk", "rest-api")
}

// MessagesLogPath is $Root/var/log/asterisk/messages.log (verbose dialplan
// trace, warnings, DTMF).
func (s *Sandbox) MessagesLogPath() string {
	return filepath.Join(s.Root, "var", "log", "asterisk", "messages.log")
}

// Logs returns the last n lines of messages.log, for failure messages.
func (s *Sandbox) Logs(n int) string {
	b, err := os.ReadFile(s.MessagesLogPath())
	if err != nil {
		return fmt.Sprintf("(messages.log: %v)", err)
	}
	return lastLines(string(b), n)
}

// EventsURL is the ARI WebSocket URL for app, with credentials in the
// api_key query parameter, e.g.
// ws://127.0.0.1:8088/ari/events?app=deflect&api_key=deflectd:deflectd-secret.
func (s *Sandbox) EventsURL(app string) string {
	u := strings.Replace(s.ARIURL, "http", "ws", 1) + "/events"
	q := url.Values{"app": {app}, "api_key": {s.Username + ":" + s.Password}}
	return u + "?" + q.Encode()
}

// RepoRoot walks up from the working directory to the directory that
// contains go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("asterisktest: no go.mod above the working directory; set Options.Script")
		}
		dir = parent
	}
}

// readARIUser returns the first ARI user (type = user) with a password in
// an ari.conf.
func readARIUser(path string) (user, pass string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("asterisktest: %w", err)
	}
	defer f.Close()
	var order []string
	isUser := map[string]bool{}
	pw := map[string]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			if end := strings.IndexByte(line, ']'); end > 0 {
				sec = line[1:end]
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || sec == "" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(strings.TrimPrefix(v, ">"))
		switch k {
		case "type":
			if v == "user" && !isUser[sec] {
				isUser[sec] = true
				order = append(order, sec)
			}
		case "password":
			pw[sec] = v
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	for _, u := range order {
		if p, ok := pw[u]; ok {
			return u, p, nil
		}
	}
	return "", "", fmt.Errorf("asterisktest: no ARI user with a password in %s", path)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
