package deflect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deflectd/deflectd/internal/redistest"
	"github.com/google/go-cmp/cmp"
)

func TestStoreRoundTrip(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	s := &store{rdb: rs.Client(), p: rs.Prefix + "call:", ttl: time.Minute}

	if _, err := s.load(ctx, "nope"); !errors.Is(err, errNoRecord) {
		t.Fatalf("load(nope) error = %v, want errNoRecord", err)
	}
	in := record{
		ID: "1795234870.2", Queue: "sales", Option: "2", Reason: "billing", Lang: "es", Number: "+5491155550001",
		Eligible: true, State: StateDeflected, Entered: 1000, LastOffer: 2000, Accepted: 3000, Deflected: 4000,
		Answered: 0, Ended: 5000, Offers: 2, Declined: true, Performed: false, Outcome: "deflected",
	}
	at := time.UnixMilli(1_800_000_000_123)
	for _, st := range []string{"entered", "waiting", "deflected"} {
		if err := s.save(ctx, &in, st, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.load(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, *got); diff != "" {
		t.Errorf("load after save (-saved +loaded):\n%s", diff)
	}
	log, err := s.transitions(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"entered@1800000000123", "waiting@1800000000123", "deflected@1800000000123"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if ttl := rs.Client().PTTL(ctx, s.p+in.ID).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("record TTL = %v, want (0, 1m]", ttl)
	}
}

func TestStoreCooldown(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	s := &store{rdb: rs.Client(), p: rs.Prefix + "call:", ttl: time.Minute}
	const n = "+5491155550001"
	now := time.Now()

	if cool, err := s.inCooldown(ctx, n); err != nil || cool {
		t.Fatalf("inCooldown before any message = %v, %v, want false, nil", cool, err)
	}
	for i, want := range []bool{true, false} {
		if got, err := s.takeCooldown(ctx, n, time.Hour, now); err != nil || got != want {
			t.Errorf("takeCooldown #%d = %v, %v, want %v, nil", i+1, got, err, want)
		}
	}
	if cool, err := s.inCooldown(ctx, n); err != nil || !cool {
		t.Errorf("inCooldown after a message = %v, %v, want true, nil", cool, err)
	}
	if cool, _ := s.inCooldown(ctx, "+5491155550002"); cool {
		t.Error("inCooldown(another number) = true, want false")
	}
	if got, err := s.takeCooldown(ctx, "+5491155550003", 0, now); err != nil || !got {
		t.Errorf("takeCooldown with no window = %v, %v, want true, nil", got, err)
	}
}
