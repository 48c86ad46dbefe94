// Package redistest gives tests a real Redis: a redis-server of their own on
// a free loopback port, or the one named by REDIS_URL. deflectd keeps all
// shared state in Redis, and its exactly-once guarantees live in Lua scripts
// and stream commands that no in-memory fake reproduces faithfully, so tests
// use the real server.
//
// Without redis-server on PATH and without REDIS_URL, tests are skipped, or
// fail when DEFLECTD_REQUIRE_DEPS=1 (as in CI).
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a Redis for one test.
type Server struct {
	// Addr is host:port.
	Addr string
	// Prefix is unique to the test: stores under test must put their keys
	// under it, so tests sharing a REDIS_URL server do not collide.
	Prefix string

	tb      testing.TB
	durable string // the data directory of a server that keeps its data
	mu      sync.Mutex
	cmd     *exec.Cmd // nil when REDIS_URL is used
	done    chan struct{}
}

// Start returns a Redis for tb, stopped when the test ends. It keeps
// nothing on disk: Kill loses its data.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, "")
}

// StartDurable returns a Redis that writes every command to its
// append-only file before it answers (appendfsync always), so that Kill
// and Restart lose nothing, as a production Redis configured for the
// outbox's guarantees would. Fault tests that kill Redis use it.
func StartDurable(tb testing.TB) *Server {
	tb.Helper()
	if os.Getenv("REDIS_URL") != "" {
		tb.Fatalf("redistest: StartDurable needs a server of its own (REDIS_URL is set)")
	}
	return start(tb, tb.TempDir())
}

func start(tb testing.TB, durable string) *Server {
	tb.Helper()
	s := &Server{tb: tb, Prefix: "test:" + randomID() + ":", durable: durable}
	if u := os.Getenv("REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			tb.Fatalf("REDIS_URL: %v", err)
		}
		s.Addr = opt.Addr
		return s
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("DEFLECTD_REQUIRE_DEPS") == "1" {
			tb.Fatalf("redis-server not on PATH and REDIS_URL not set (DEFLECTD_REQUIRE_DEPS=1)")
		}
		tb.Skip("redis-server not on PATH and REDIS_URL not set")
	}
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	return s
}

func (s *Server) start() error {
	port := s.port()
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		port = p
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--daemonize", "no", "--loglevel", "notice"}
	if s.durable != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--dir", s.durable)
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	// Readiness is a line of redis-server's log, not a poll.
	ready := make(chan error, 1)
	var logTail []string
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			logTail = append(logTail, line)
			if strings.Contains(line, "Ready to accept connections") {
				ready <- nil
				for sc.Scan() { // keep draining so redis never blocks on its log
				}
				return
			}
		}
		ready <- fmt.Errorf("redis-server exited before it was ready: %s", strings.Join(logTail, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return err
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("redis-server not ready after 20 s")
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *Server) port() int {
	if s.Addr == "" {
		return 0
	}
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Client returns a go-redis client for the server, closed when the test
// ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Kill stops the server at once (SIGKILL), as a crash would. Data is lost
// unless the server is durable (StartDurable).
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same address after Kill: empty,
// or with its data when it is durable.
func (s *Server) Restart() {
	s.tb.Helper()
	if os.Getenv("REDIS_URL") != "" {
		s.tb.Fatalf("redistest: Restart needs a server of its own (REDIS_URL is set)")
	}
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Ping fails the test unless the server answers.
func (s *Server) Ping(ctx context.Context) {
	s.tb.Helper()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		s.tb.Fatalf("redis ping: %v", err)
	}
}
