package ari

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event is one message of the event stream: an event Asterisk sent, decoded
// into its typed struct (or a *RawEvent), or a connection event (*Connected,
// *Disconnected) that the client adds in order with them. Use a type switch.
type Event interface {
	// Header returns the fields every event shares.
	Header() *EventHeader
}

// EventHeader holds the fields every ARI event carries.
type EventHeader struct {
	Type        string `json:"type"`
	Application string `json:"application"`
	Timestamp   Time   `json:"timestamp"`
	AsteriskID  string `json:"asterisk_id,omitempty"`
}

// Header returns h; embedding EventHeader makes a struct an Event.
func (h *EventHeader) Header() *EventHeader { return h }

// Event type names, as Asterisk writes them in "type".
const (
	TypeStasisStart          = "StasisStart"
	TypeStasisEnd            = "StasisEnd"
	TypeChannelCreated       = "ChannelCreated"
	TypeChannelDestroyed     = "ChannelDestroyed"
	TypeChannelStateChange   = "ChannelStateChange"
	TypeChannelDtmfReceived  = "ChannelDtmfReceived"
	TypeChannelHangupRequest = "ChannelHangupRequest"
	TypeChannelEnteredBridge = "ChannelEnteredBridge"
	TypeChannelLeftBridge    = "ChannelLeftBridge"
	TypeChannelVarset        = "ChannelVarset"
	TypeChannelDialplan      = "ChannelDialplan"
	TypeDial                 = "Dial"
	TypePlaybackStarted      = "PlaybackStarted"
	TypePlaybackContinuing   = "PlaybackContinuing"
	TypePlaybackFinished     = "PlaybackFinished"
	TypeBridgeCreated        = "BridgeCreated"
	TypeBridgeDestroyed      = "BridgeDestroyed"
	TypeApplicationReplaced  = "ApplicationReplaced"

	// TypeConnected and TypeDisconnected are the client's own connection
	// events. The colon keeps them apart from any name Asterisk may use.
	TypeConnected    = "ari:Connected"
	TypeDisconnected = "ari:Disconnected"
)

// typedEvents lists every type that decodes to its own struct; the rest
// decode to *RawEvent. It bounds the "type" label of the events metric.
var typedEvents = [...]string{
	TypeStasisStart, TypeStasisEnd, TypeChannelCreated, TypeChannelDestroyed,
	TypeChannelStateChange, TypeChannelDtmfReceived, TypeChannelHangupRequest,
	TypeChannelEnteredBridge, TypeChannelLeftBridge, TypeChannelVarset,
	TypeChannelDialplan, TypeDial, TypePlaybackStarted, TypePlaybackContinuing,
	TypePlaybackFinished, TypeBridgeCreated, TypeBridgeDestroyed,
	TypeApplicationReplaced,
}

// newEvent returns a zero event of the given type, or nil if the type has no
// struct of its own.
func newEvent(typ string) Event {
	switch typ {
	case TypeStasisStart:
		return new(StasisStart)
	case TypeStasisEnd:
		return new(StasisEnd)
	case TypeChannelCreated:
		return new(ChannelCreated)
	case TypeChannelDestroyed:
		return new(ChannelDestroyed)
	case TypeChannelStateChange:
		return new(ChannelStateChange)
	case TypeChannelDtmfReceived:
		return new(ChannelDtmfReceived)
	case TypeChannelHangupRequest:
		return new(ChannelHangupRequest)
	case TypeChannelEnteredBridge:
		return new(ChannelEnteredBridge)
	case TypeChannelLeftBridge:
		return new(ChannelLeftBridge)
	case TypeChannelVarset:
		return new(ChannelVarset)
	case TypeChannelDialplan:
		return new(ChannelDialplan)
	case TypeDial:
		return new(Dial)
	case TypePlaybackStarted:
		return new(PlaybackStarted)
	case TypePlaybackContinuing:
		return new(PlaybackContinuing)
	case TypePlaybackFinished:
		return new(PlaybackFinished)
	case TypeBridgeCreated:
		return new(BridgeCreated)
	case TypeBridgeDestroyed:
		return new(BridgeDestroyed)
	case TypeApplicationReplaced:
		return new(ApplicationReplaced)
	}
	return nil
}

// StasisStart is sent when a channel enters the application, from the
// dialplan's Stasis() or from an originate with app=. Args are the
// comma-separated arguments after the application name.
type StasisStart struct {
	EventHeader
	Args           []string `json:"args"`
	Channel        Channel  `json:"channel"`
	ReplaceChannel *Channel `json:"replace_channel,omitempty"`
}

// Arg returns the value of a key=value argument, as in
// Stasis(deflect,queue=sales,option=2), and whether it was there. The first
// occurrence wins.
func (e *StasisStart) Arg(key string) (string, bool) {
	for _, a := range e.Args {
		k, v, ok := strings.Cut(a, "=")
		if ok && k == key {
			return v, true
		}
	}
	return "", false
}

// StasisEnd is sent when a channel leaves the application. For a channel the
// application did not subscribe to separately, it is the last event.
type StasisEnd struct {
	EventHeader
	Channel Channel `json:"channel"`
}

// ChannelCreated is sent when a subscribed channel is created.
type ChannelCreated struct {
	EventHeader
	Channel Channel `json:"channel"`
}

// ChannelDestroyed is sent when a channel is gone. Cause is the Q.850 cause
// (16 is a normal clearing).
type ChannelDestroyed struct {
	EventHeader
	Cause     int     `json:"cause"`
	CauseTxt  string  `json:"cause_txt"`
	TechCause int     `json:"tech_cause,omitempty"`
	Channel   Channel `json:"channel"`
}

// ChannelStateChange is sent when a channel's state changes (Ring → Up).
type ChannelStateChange struct {
	EventHeader
	Channel Channel `json:"channel"`
}

// ChannelDtmfReceived is sent for each DTMF digit the channel received.
type ChannelDtmfReceived struct {
	EventHeader
	Digit      string  `json:"digit"`
	DurationMs int     `json:"duration_ms"`
	Channel    Channel `json:"channel"`
}

// ChannelHangupRequest is sent when a hangup is requested. A remote BYE
// carries no cause; a DELETE from ARI carries cause 32 and Soft.
type ChannelHangupRequest struct {
	EventHeader
	Cause     int     `json:"cause,omitempty"`
	Soft      bool    `json:"soft,omitempty"`
	TechCause int     `json:"tech_cause,omitempty"`
	Channel   Channel `json:"channel"`
}

// ChannelEnteredBridge is sent when a channel joins a bridge.
type ChannelEnteredBridge struct {
	EventHeader
	Bridge  Bridge  `json:"bridge"`
	Channel Channel `json:"channel"`
}

// ChannelLeftBridge is sent when a channel leaves a bridge.
type ChannelLeftBridge struct {
	EventHeader
	Bridge  Bridge  `json:"bridge"`
	Channel Channel `json:"channel"`
}

// ChannelVarset is sent when a channel variable is set. Channel is nil for a
// global variable. On a queue's Local channel it carries QUEUEWAIT,
// QUEUEPOSITION and ABANDONED.
type ChannelVarset struct {
	EventHeader
	Variable string   `json:"variable"`
	Value    string   `json:"value"`
	Channel  *Channel `json:"channel,omitempty"`
}

// ChannelDialplan is sent when a channel moves to a new dialplan step.
type ChannelDialplan struct {
	EventHeader
	DialplanApp     string  `json:"dialplan_app"`
	DialplanAppData string  `json:"dialplan_app_data"`
	Channel         Channel `json:"channel"`
}

// Dial statuses, as in Dial.DialStatus. An empty status means the dial
// began.
const (
	DialRinging  = "RINGING"
	DialProgress = "PROGRESS"
	DialAnswer   = "ANSWER"
	DialBusy     = "BUSY"
	DialNoAnswer = "NOANSWER"
	DialCancel   = "CANCEL"
)

// Dial is sent as a dial attempt progresses. Caller is nil when the dial was
// made by an originate. On a queue's Local ;2 half, DialStatus ANSWER with
// Caller.ID equal to that half is the agent connecting, and its Peer is the
// agent's channel.
type Dial struct {
	EventHeader
	Caller     *Channel `json:"caller,omitempty"`
	Peer       Channel  `json:"peer"`
	Forward    string   `json:"forward,omitempty"`
	Forwarded  *Channel `json:"forwarded,omitempty"`
	DialString string   `json:"dialstring,omitempty"`
	DialStatus string   `json:"dialstatus"`
}

// PlaybackStarted is sent when a playback begins.
type PlaybackStarted struct {
	EventHeader
	Playback Playback `json:"playback"`
}

// PlaybackContinuing is sent when a playback moves to its next media URI.
type PlaybackContinuing struct {
	EventHeader
	Playback Playback `json:"playback"`
}

// PlaybackFinished is sent when a playback ends; Playback.State is "done" or
// "failed".
type PlaybackFinished struct {
	EventHeader
	Playback Playback `json:"playback"`
}

// BridgeCreated is sent when a subscribed bridge is created.
type BridgeCreated struct {
	EventHeader
	Bridge Bridge `json:"bridge"`
}

// BridgeDestroyed is sent when a bridge is gone.
type BridgeDestroyed struct {
	EventHeader
	Bridge Bridge `json:"bridge"`
}

// ApplicationReplaced is sent when another websocket registered the same
// application name. Asterisk sends nothing more on this socket; the client
// stops and Run returns ErrApplicationReplaced.
type ApplicationReplaced struct {
	EventHeader
}

// RawEvent is an event of a type without a struct of its own, or one whose
// typed decoding failed (Err says why). Raw is the JSON Asterisk sent, which
// stays valid after Next returns.
type RawEvent struct {
	EventHeader
	Raw json.RawMessage `json:"-"`
	Err error           `json:"-"`
}

// Connected is added to the stream each time the websocket is established.
// Reconnect is false the first time. After a reconnect, events of the Gap
// were lost for good (Asterisk replays nothing): resync with Snapshot.
type Connected struct {
	EventHeader
	Reconnect bool
	Gap       time.Duration
}

// Disconnected is added to the stream when the websocket is lost, with the
// reason. It is followed by a Connected once the client is back, unless Err
// is ErrApplicationReplaced or the client is stopping.
type Disconnected struct {
	EventHeader
	Err error
}

// DecodeEvent decodes one event as Asterisk sends it. A known type decodes to
// its struct; any other type, and a known type whose fields do not decode,
// becomes a *RawEvent, so a stream never ends on an event. The error is only
// for input that is not a JSON object with a "type".
func DecodeEvent(data []byte) (Event, error) {
	typ, ok := peekType(data)
	if !ok {
		// Only the type: a malformed header field (a timestamp in an
		// unknown layout) must not hide it.
		var h struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &h); err != nil {
			return nil, fmt.Errorf("ari: event is not a JSON object: %w", err)
		}
		if h.Type == "" {
			return nil, fmt.Errorf("ari: event has no type")
		}
		typ = h.Type
	}
	if ev := newEvent(typ); ev != nil {
		err := json.Unmarshal(data, ev)
		if err == nil && ev.Header().Type != typ {
			// Duplicate "type" keys: encoding/json kept the last one.
			err = fmt.Errorf("conflicting type %q", ev.Header().Type)
		}
		if err == nil {
			return ev, nil
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("ari: event is not a JSON object: %w", err)
		}
		return rawEvent(data, typ, fmt.Errorf("ari: decoding %s: %w", typ, err))
	}
	return rawEvent(data, typ, nil)
}

func rawEvent(data []byte, typ string, decodeErr error) (Event, error) {
	ev := &RawEvent{Raw: json.RawMessage(data), Err: decodeErr}
	if err := json.Unmarshal(data, &ev.EventHeader); err != nil {
		// The header itself is malformed (a timestamp in an unknown layout,
		// say): keep the type DecodeEvent found, and the raw bytes.
		ev.EventHeader = EventHeader{Type: typ}
		if ev.Err == nil {
			ev.Err = fmt.Errorf("ari: decoding %s header: %w", typ, err)
		}
	}
	if ev.Type == "" {
		return nil, fmt.Errorf("ari: event has no type")
	}
	return ev, nil
}

// peekType finds the top-level "type" member of an event without decoding
// the rest, so that DecodeEvent parses each event once, into its own struct.
// Asterisk does not always write "type" first (ChannelVarset starts with
// "variable"), so it scans the members, skipping values without decoding
// them. It does not validate: the full decode that follows does. Anything
// it does not expect (escapes in the type, a type that is not a string)
// reports false and is left to encoding/json.
func peekType(data []byte) (string, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return "", false
		}
		keyEnd, escaped := scanString(data, i)
		if keyEnd < 0 {
			return "", false
		}
		isType := !escaped && string(data[i+1:keyEnd-1]) == "type"
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return "", false
		}
		i = skipSpace(data, i+1)
		if isType {
			if i >= len(data) || data[i] != '"' {
				return "", false
			}
			end, escaped := scanString(data, i)
			if end < 0 || escaped || end-i <= 2 {
				return "", false
			}
			return string(data[i+1 : end-1]), true
		}
		if i = skipValue(data, i); i < 0 {
			return "", false
		}
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			return "", false // end of the object, or malformed: no type
		}
		i++
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the JSON string starting at
// data[i] (a quote), and whether it holds escapes; -1 if it never ends.
func scanString(data []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index just past the JSON value starting at data[i],
// or -1 if it never ends.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		end, _ := scanString(data, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, _ := scanString(data, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(data); j++ { // number, true, false, null
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return -1
}

// ChannelIDs returns the ids of the channels an event is about, for routing
// an event to the calls it concerns: both sides of a Dial, the channel of a
// channel or bridge-membership event, and the target of a channel playback.
// It returns nil for events about no channel.
func ChannelIDs(e Event) []string {
	switch e := e.(type) {
	case *StasisStart:
		return []string{e.Channel.ID}
	case *StasisEnd:
		return []string{e.Channel.ID}
	case *ChannelCreated:
		return []string{e.Channel.ID}
	case *ChannelDestroyed:
		return []string{e.Channel.ID}
	case *ChannelStateChange:
		return []string{e.Channel.ID}
	case *ChannelDtmfReceived:
		return []string{e.Channel.ID}
	case *ChannelHangupRequest:
		return []string{e.Channel.ID}
	case *ChannelEnteredBridge:
		return []string{e.Channel.ID}
	case *ChannelLeftBridge:
		return []string{e.Channel.ID}
	case *ChannelDialplan:
		return []string{e.Channel.ID}
	case *ChannelVarset:
		if e.Channel != nil {
			return []string{e.Channel.ID}
		}
	case *Dial:
		if e.Caller != nil && e.Caller.ID != "" {
			return []string{e.Caller.ID, e.Peer.ID}
		}
		return []string{e.Peer.ID}
	case *PlaybackStarted:
		return playbackChannel(&e.Playback)
	case *PlaybackContinuing:
		return playbackChannel(&e.Playback)
	case *PlaybackFinished:
		return playbackChannel(&e.Playback)
	}
	return nil
}

func playbackChannel(p *Playback) []string {
	if id, ok := strings.CutPrefix(p.TargetURI, "channel:"); ok {
		return []string{id}
	}
	return nil
}
