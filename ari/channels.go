package ari

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ListChannels returns every channel Asterisk has, in or out of Stasis.
func (c *Client) ListChannels(ctx context.Context) ([]Channel, error) {
	var out []Channel
	err := c.do(ctx, request{op: "list_channels", method: http.MethodGet, path: "/channels"}, &out)
	return out, err
}

// GetChannel returns one channel; ErrNotFound once it is gone.
func (c *Client) GetChannel(ctx context.Context, channelID string) (*Channel, error) {
	var out Channel
	err := c.do(ctx, request{op: "get_channel", method: http.MethodGet, path: "/channels/" + seg(channelID)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Answer answers a channel in the application.
func (c *Client) Answer(ctx context.Context, channelID string) error {
	return c.do(ctx, request{op: "answer", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/answer"}, nil)
}

// Ring indicates ringing to a channel that is not answered yet.
func (c *Client) Ring(ctx context.Context, channelID string) error {
	return c.do(ctx, request{op: "ring", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/ring"}, nil)
}

// StopRinging stops the ringing indication of Ring.
func (c *Client) StopRinging(ctx context.Context, channelID string) error {
	return c.do(ctx, request{op: "ring_stop", method: http.MethodDelete, path: "/channels/" + seg(channelID) + "/ring"}, nil)
}

// Hangup reasons for Hangup, as ARI names them.
const (
	HangupNormal     = "normal"
	HangupBusy       = "busy"
	HangupCongestion = "congestion"
	HangupNoAnswer   = "no_answer"
	HangupTimeout    = "timeout"
	HangupRejected   = "rejected"
)

// Hangup hangs a channel up, in the application or not. reason is one of the
// Hangup* constants; empty means normal. ErrNotFound means it was already
// gone, which callers tearing a call down may treat as done.
func (c *Client) Hangup(ctx context.Context, channelID, reason string) error {
	return c.do(ctx, request{op: "hangup", method: http.MethodDelete, path: "/channels/" + seg(channelID),
		query: params("reason", reason)}, nil)
}

// ContinueRequest says where a channel goes back to in the dialplan. Empty
// fields keep the channel's current context, extension and next priority.
type ContinueRequest struct {
	Context   string
	Extension string
	Priority  int64
	Label     string
}

// Continue makes a channel leave the application and resume the dialplan;
// a StasisEnd follows.
func (c *Client) Continue(ctx context.Context, channelID string, r ContinueRequest) error {
	q := params("context", r.Context, "extension", r.Extension, "label", r.Label)
	if r.Priority != 0 {
		q.Set("priority", strconv.FormatInt(r.Priority, 10))
	}
	return c.do(ctx, request{op: "continue", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/continue", query: q}, nil)
}

// Move moves a channel to another Stasis application with arguments.
func (c *Client) Move(ctx context.Context, channelID, app, appArgs string) error {
	return c.do(ctx, request{op: "move", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/move",
		query: params("app", app, "appArgs", appArgs)}, nil)
}

// DTMFRequest is DTMF to send to a channel. Durations are rounded to
// milliseconds; zero leaves Asterisk's default.
type DTMFRequest struct {
	DTMF                   string
	Before, Between, After time.Duration
	Duration               time.Duration
}

// SendDTMF sends DTMF digits to a channel.
func (c *Client) SendDTMF(ctx context.Context, channelID string, r DTMFRequest) error {
	q := params("dtmf", r.DTMF)
	for k, d := range map[string]time.Duration{"before": r.Before, "between": r.Between, "duration": r.Duration, "after": r.After} {
		if d > 0 {
			q.Set(k, strconv.FormatInt(d.Milliseconds(), 10))
		}
	}
	return c.do(ctx, request{op: "send_dtmf", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/dtmf", query: q}, nil)
}

// PlayRequest is media to play to a channel or bridge.
type PlayRequest struct {
	// Media are media URIs played in order, e.g. "sound:hello-world".
	Media []string
	// Lang picks the sound language; empty uses the channel's.
	Lang string
	// PlaybackID names the playback, so its events can be matched before
	// the call returns; empty lets Asterisk choose.
	PlaybackID string
	// Offset skips the start of the first media; SkipMs is the step of
	// forward/reverse controls. Zero leaves Asterisk's default.
	Offset, Skip time.Duration
}

func (r PlayRequest) query() url.Values {
	q := params("lang", r.Lang)
	q.Set("media", joinComma(r.Media))
	if r.Offset > 0 {
		q.Set("offsetms", strconv.FormatInt(r.Offset.Milliseconds(), 10))
	}
	if r.Skip > 0 {
		q.Set("skipms", strconv.FormatInt(r.Skip.Milliseconds(), 10))
	}
	return q
}

// Play starts media on a channel and returns the playback; PlaybackStarted
// and PlaybackFinished follow.
func (c *Client) Play(ctx context.Context, channelID string, r PlayRequest) (*Playback, error) {
	path := "/channels/" + seg(channelID) + "/play"
	if r.PlaybackID != "" {
		path += "/" + seg(r.PlaybackID)
	}
	var out Playback
	if err := c.do(ctx, request{op: "play", method: http.MethodPost, path: path, query: r.query()}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPlayback returns a playback while it exists.
func (c *Client) GetPlayback(ctx context.Context, playbackID string) (*Playback, error) {
	var out Playback
	if err := c.do(ctx, request{op: "get_playback", method: http.MethodGet, path: "/playbacks/" + seg(playbackID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StopPlayback stops a playback; ErrNotFound if it already ended.
func (c *Client) StopPlayback(ctx context.Context, playbackID string) error {
	return c.do(ctx, request{op: "stop_playback", method: http.MethodDelete, path: "/playbacks/" + seg(playbackID)}, nil)
}

// Playback control operations for ControlPlayback.
const (
	PlaybackRestart = "restart"
	PlaybackPause   = "pause"
	PlaybackUnpause = "unpause"
	PlaybackReverse = "reverse"
	PlaybackForward = "forward"
)

// ControlPlayback pauses, resumes, restarts or skips within a playback.
func (c *Client) ControlPlayback(ctx context.Context, playbackID, operation string) error {
	return c.do(ctx, request{op: "control_playback", method: http.MethodPost, path: "/playbacks/" + seg(playbackID) + "/control",
		query: params("operation", operation)}, nil)
}

// StartMOH plays music on hold to a channel; class empty is the default.
func (c *Client) StartMOH(ctx context.Context, channelID, class string) error {
	return c.do(ctx, request{op: "start_moh", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/moh",
		query: params("mohClass", class)}, nil)
}

// StopMOH stops music on hold on a channel.
func (c *Client) StopMOH(ctx context.Context, channelID string) error {
	return c.do(ctx, request{op: "stop_moh", method: http.MethodDelete, path: "/channels/" + seg(channelID) + "/moh"}, nil)
}

// GetVariable reads a channel variable or evaluates a dialplan function on a
// channel in the application, e.g. QUEUE_MEMBER(sales,logged) or
// CALLERID(num). (GET /asterisk/variable does not evaluate functions, so
// this needs a channel.)
func (c *Client) GetVariable(ctx context.Context, channelID, name string) (string, error) {
	var out struct {
		Value string `json:"value"`
	}
	err := c.do(ctx, request{op: "get_variable", method: http.MethodGet, path: "/channels/" + seg(channelID) + "/variable",
		query: params("variable", name)}, &out)
	return out.Value, err
}

// SetVariable sets a channel variable (or writes a dialplan function).
func (c *Client) SetVariable(ctx context.Context, channelID, name, value string) error {
	q := params("variable", name)
	q.Set("value", value) // an empty value is meaningful: it clears the variable
	return c.do(ctx, request{op: "set_variable", method: http.MethodPost, path: "/channels/" + seg(channelID) + "/variable", query: q}, nil)
}

// OriginateRequest is a new outgoing channel. Either App (default: the
// client's application) or Extension/Context/Priority says where the
// answered channel goes; for the Local-channel queue pattern, Endpoint is
// Local/<queue>@<context>/n, App is the application, and ChannelID and
// OtherChannelID name the ;1 and ;2 halves so their events can be matched
// before Originate returns.
type OriginateRequest struct {
	Endpoint       string
	App            string
	AppArgs        string // comma-separated, as in Stasis()
	Extension      string
	Context        string
	Priority       int64
	Label          string
	CallerID       string // e.g. `"Alice" <+15551230001>`
	Timeout        time.Duration
	ChannelID      string
	OtherChannelID string
	Originator     string
	Formats        string
	// Variables are set on the new channel; they are sent in the JSON body,
	// the only place ARI accepts them.
	Variables map[string]string
}

// Originate creates a channel and returns it (state Down until it answers).
func (c *Client) Originate(ctx context.Context, r OriginateRequest) (*Channel, error) {
	app := r.App
	if app == "" && r.Extension == "" {
		app = c.opts.Application
	}
	q := params("endpoint", r.Endpoint, "app", app, "appArgs", r.AppArgs, "extension", r.Extension,
		"context", r.Context, "label", r.Label, "callerId", r.CallerID, "channelId", r.ChannelID,
		"otherChannelId", r.OtherChannelID, "originator", r.Originator, "formats", r.Formats)
	if r.Priority != 0 {
		q.Set("priority", strconv.FormatInt(r.Priority, 10))
	}
	if r.Timeout > 0 {
		q.Set("timeout", strconv.Itoa(int((r.Timeout+time.Second-1)/time.Second)))
	}
	var body any
	if len(r.Variables) > 0 {
		body = map[string]any{"variables": r.Variables}
	}
	var out Channel
	if err := c.do(ctx, request{op: "originate", method: http.MethodPost, path: "/channels", query: q, body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
