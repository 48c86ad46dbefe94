package ari

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The benchmarks run the real event mix of aritest's recordings (399
// events of Local-channel queue calls, ChannelVarset first) in a loop, one
// event per op, so ns/op is ns/event and allocs/op is allocs/event.

// BenchmarkNext is the client's path: a raw frame pushed into the queue as
// the websocket reader does, read back with Next (decode and type
// dispatch), then a consumer's type switch.
func BenchmarkNext(b *testing.B) {
	lines := fixtureLines(b)
	c, err := New(Options{
		URL:         "http://127.0.0.1:1/ari", // never dialled: Run is not called
		Username:    "bench",
		Password:    "bench",
		Application: "deflect",
		Registerer:  prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var sink int
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.queue.push(item{raw: lines[i%len(lines)]})
		ev, err := c.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sink += dispatch(ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if sink == 0 {
		b.Fatal("dispatch saw nothing")
	}
}

// BenchmarkUnmarshalFloor is the floor for BenchmarkNext: a bare
// json.Unmarshal of the same frames into the same structs, chosen per line
// before the timer starts, then the same type switch.
func BenchmarkUnmarshalFloor(b *testing.B) {
	lines := fixtureLines(b)
	mk := make([]func() Event, len(lines))
	for i, line := range lines {
		ev, err := DecodeEvent(line)
		if err != nil {
			b.Fatal(err)
		}
		mk[i] = floorConstructors[ev.Header().Type]
		if mk[i] == nil {
			mk[i] = func() Event { return new(RawEvent) }
		}
	}
	var sink int
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := i % len(lines)
		ev := mk[n]()
		if err := json.Unmarshal(lines[n], ev); err != nil {
			b.Fatal(err)
		}
		if raw, ok := ev.(*RawEvent); ok {
			raw.Raw = lines[n]
		}
		sink += dispatch(ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if sink == 0 {
		b.Fatal("dispatch saw nothing")
	}
}

var floorConstructors = map[string]func() Event{
	TypeStasisStart:          func() Event { return new(StasisStart) },
	TypeStasisEnd:            func() Event { return new(StasisEnd) },
	TypeChannelCreated:       func() Event { return new(ChannelCreated) },
	TypeChannelDestroyed:     func() Event { return new(ChannelDestroyed) },
	TypeChannelStateChange:   func() Event { return new(ChannelStateChange) },
	TypeChannelDtmfReceived:  func() Event { return new(ChannelDtmfReceived) },
	TypeChannelHangupRequest: func() Event { return new(ChannelHangupRequest) },
	TypeChannelEnteredBridge: func() Event { return new(ChannelEnteredBridge) },
	TypeChannelLeftBridge:    func() Event { return new(ChannelLeftBridge) },
	TypeChannelVarset:        func() Event { return new(ChannelVarset) },
	TypeChannelDialplan:      func() Event { return new(ChannelDialplan) },
	TypeDial:                 func() Event { return new(Dial) },
	TypePlaybackStarted:      func() Event { return new(PlaybackStarted) },
	TypePlaybackContinuing:   func() Event { return new(PlaybackContinuing) },
	TypePlaybackFinished:     func() Event { return new(PlaybackFinished) },
	TypeBridgeCreated:        func() Event { return new(BridgeCreated) },
	TypeBridgeDestroyed:      func() Event { return new(BridgeDestroyed) },
	TypeApplicationReplaced:  func() Event { return new(ApplicationReplaced) },
}

// dispatch is what a consumer does with each event: a type switch that
// reads the field it routes on.
func dispatch(ev Event) int {
	switch e := ev.(type) {
	case *StasisStart:
		return len(e.Channel.ID) + len(e.Args)
	case *StasisEnd:
		return len(e.Channel.ID)
	case *ChannelDestroyed:
		return e.Cause
	case *ChannelStateChange:
		return len(e.Channel.State)
	case *ChannelDtmfReceived:
		return len(e.Digit)
	case *ChannelHangupRequest:
		return e.Cause + 1
	case *ChannelEnteredBridge:
		return len(e.Bridge.ID)
	case *ChannelLeftBridge:
		return len(e.Bridge.ID)
	case *ChannelVarset:
		return len(e.Variable)
	case *ChannelDialplan:
		return len(e.DialplanApp)
	case *Dial:
		return len(e.DialStatus) + len(e.Peer.ID)
	case *PlaybackStarted:
		return len(e.Playback.ID)
	case *PlaybackFinished:
		return len(e.Playback.State)
	case *BridgeDestroyed:
		return len(e.Bridge.ID)
	case *RawEvent:
		return len(e.Type)
	}
	return 0
}
