package asterisktest

import (
	"context"
	"log"
	"sync"
	"testing"
	"time"
)

// The sandbox shared by the tests of one package: Asterisk starts once, at
// the first test that needs it, and stops in TestMain.
var (
	sharedOnce sync.Once
	shared     *Sandbox
	sharedErr  error
)

// Shared returns the package's sandbox, starting it on first use (a leftover
// sandbox Asterisk is replaced). It skips or fails like Require when a
// dependency is missing. Call StopShared from TestMain after m.Run.
func Shared(tb testing.TB) *Sandbox {
	tb.Helper()
	Require(tb, "root", "debootstrap", "sipp")
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// log.Printf, not tb.Logf: the sandbox outlives the test that
		// started it.
		shared, sharedErr = Start(ctx, Options{Logf: log.Printf, ReplaceRunning: true})
	})
	if sharedErr != nil {
		tb.Fatalf("starting the Asterisk sandbox: %v", sharedErr)
	}
	return shared
}

// StopShared stops the sandbox Shared started, if any.
func StopShared() {
	if shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := shared.Stop(ctx); err != nil {
		log.Printf("stopping the Asterisk sandbox: %v", err)
	}
}
