package redistest

import (
	"context"
	"os"
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

func TestDurableKeepsDataOverKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server twice")
	}
	if os.Getenv("REDIS_URL") != "" {
		t.Skip("REDIS_URL is set: StartDurable needs a server of its own")
	}
	s := StartDurable(t)
	ctx := context.Background()
	c := s.Client()
	if err := c.Set(ctx, s.Prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	s.Restart()
	if got, err := c.Get(ctx, s.Prefix+"k").Result(); err != nil || got != "v" {
		t.Fatalf("Get after Kill and Restart = %q, %v; want v", got, err)
	}
}
