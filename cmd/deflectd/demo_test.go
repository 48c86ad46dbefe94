package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is the demo's stdout, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs the whole demo for three simulated minutes at 60x: callers
// arrive, are offered WhatsApp, some accept, messages reach the fake Cloud
// API and customers answer.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for a few seconds")
	}
	var out syncBuffer
	var metrics string
	o := demoOptions{
		duration: 3 * time.Minute, speed: 60, rate: 12, agents: 1, seed: 7,
		listen: "127.0.0.1:0", statusAddr: "127.0.0.1:0", accept: 0.8, decline: 0.1, replyRate: 1,
		progress: time.Second, configDir: "../../configs/deflectd", logFile: t.TempDir() + "/demo.log",
		stdout: &out, drainTimeoutSimTime: 15 * time.Minute,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := make(chan [2]string, 1)
	o.onReady = func(app, status string) { ready <- [2]string{app, status} }
	o.onFinish = func() {
		resp, err := http.Get((<-ready)[0] + "/metrics")
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o) }()
	var addrs [2]string
	select {
	case addrs = <-ready:
		ready <- addrs // for onFinish
	case err := <-done:
		t.Fatalf("runDemo() = %v before it was ready; output:\n%s", err, out.String())
	}
	for _, u := range []string{addrs[1]} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "deflectd demo") {
			t.Errorf("GET %s = %d %q, want the status page", u, resp.StatusCode, body)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("runDemo() = %v; output:\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^deflectd_calls_entered_total\{queue="sales"\} (\d+)`).FindStringSubmatch(metrics)
	if m == nil || m[1] == "0" {
		t.Errorf("/metrics: deflectd_calls_entered_total{queue=\"sales\"} = %v, want > 0", m)
	}
	text := out.String()
	t.Log(text)
	num := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("summary has no match for %q", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for _, c := range []struct {
		what string
		re   string
	}{
		{"calls", `calls +(\d+) entered`},
		{"offers", `offers +(\d+) played`},
		{"accepted offers", `played: (\d+) accepted`},
		{"deflections by offer", `deflections +(\d+) by offer`},
		{"messages at the fake Cloud API", `\((\d+) at the fake Cloud API`},
		{"conversions", `conversions +(\d+)`},
		{"inbox chats", `inbox chats +(\d+) opened`},
		{"chats from calls", `opened \((\d+) from calls`},
		{"chats taken", `agents took (\d+)`},
		{"agent replies", `sent (\d+) replies`},
		{"first responses", `mean over (\d+) answers`},
	} {
		if got := num(c.re); got < 1 {
			t.Errorf("summary: %s = %d, want at least 1", c.what, got)
		}
	}
	// The four metrics of the inbox.
	for _, re := range []string{`first response +\S+ mean`, `pending now +\d+, of which \d+ seen and unanswered \(\d+%\)`,
		`resolved per agent +\S`, `policy +\d+ alerts`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("summary has no match for %q", re)
		}
	}
	for _, bad := range []string{"inbox API errors", "inbox dashboard", "at the drain limit", "still working chats"} {
		if strings.Contains(text, bad) {
			t.Errorf("summary says %q", bad)
		}
	}
}
