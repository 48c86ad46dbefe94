package redistest

import (
	"context"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	c := s.Client()
	if err := c.Set(ctx, s.Prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping after Kill = nil, want an error")
	}
	s.Restart()
	if got, err := c.Get(ctx, s.Prefix+"k").Result(); err == nil {
		t.Fatalf("Get after Restart = %q, want nothing: the server keeps no data", got)
	}
}
