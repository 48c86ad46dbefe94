package ari

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Bridge types for BridgeRequest.Type; they combine, e.g. "mixing,dtmf_events".
const (
	BridgeMixing     = "mixing"
	BridgeHolding    = "holding"
	BridgeDTMFEvents = "dtmf_events"
	BridgeProxyMedia = "proxy_media"
)

// BridgeRequest is a bridge to create.
type BridgeRequest struct {
	// ID names the bridge; empty lets Asterisk choose. An id that exists
	// is ErrConflict.
	ID string
	// Type is a comma-separated list of bridge types; empty is mixing.
	Type string
	// Name is a label shown in Asterisk's CLI.
	Name string
}

// CreateBridge creates a bridge.
func (c *Client) CreateBridge(ctx context.Context, r BridgeRequest) (*Bridge, error) {
	typ := r.Type
	if typ == "" {
		typ = BridgeMixing
	}
	var out Bridge
	err := c.do(ctx, request{op: "create_bridge", method: http.MethodPost, path: "/bridges",
		query: params("type", typ, "bridgeId", r.ID, "name", r.Name)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListBridges returns every bridge.
func (c *Client) ListBridges(ctx context.Context) ([]Bridge, error) {
	var out []Bridge
	err := c.do(ctx, request{op: "list_bridges", method: http.MethodGet, path: "/bridges"}, &out)
	return out, err
}

// GetBridge returns one bridge.
func (c *Client) GetBridge(ctx context.Context, bridgeID string) (*Bridge, error) {
	var out Bridge
	if err := c.do(ctx, request{op: "get_bridge", method: http.MethodGet, path: "/bridges/" + seg(bridgeID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DestroyBridge destroys a bridge; the channels in it stay in the
// application. ErrNotFound means it was already gone.
func (c *Client) DestroyBridge(ctx context.Context, bridgeID string) error {
	return c.do(ctx, request{op: "destroy_bridge", method: http.MethodDelete, path: "/bridges/" + seg(bridgeID)}, nil)
}

// AddChannelRequest is channels to put into a bridge.
type AddChannelRequest struct {
	Channels   []string
	Role       string
	AbsorbDTMF bool // keep DTMF from the channel from reaching the others
	Mute       bool // keep audio from the channel from reaching the others
}

// AddChannel adds channels to a bridge.
func (c *Client) AddChannel(ctx context.Context, bridgeID string, r AddChannelRequest) error {
	q := params("channel", joinComma(r.Channels), "role", r.Role)
	if r.AbsorbDTMF {
		q.Set("absorbDTMF", strconv.FormatBool(true))
	}
	if r.Mute {
		q.Set("mute", strconv.FormatBool(true))
	}
	return c.do(ctx, request{op: "add_channel", method: http.MethodPost, path: "/bridges/" + seg(bridgeID) + "/addChannel", query: q}, nil)
}

// RemoveChannel takes channels out of a bridge; they stay in the
// application.
func (c *Client) RemoveChannel(ctx context.Context, bridgeID string, channelIDs ...string) error {
	return c.do(ctx, request{op: "remove_channel", method: http.MethodPost, path: "/bridges/" + seg(bridgeID) + "/removeChannel",
		query: params("channel", joinComma(channelIDs))}, nil)
}

// PlayOnBridge plays media to every channel in a bridge.
func (c *Client) PlayOnBridge(ctx context.Context, bridgeID string, r PlayRequest) (*Playback, error) {
	path := "/bridges/" + seg(bridgeID) + "/play"
	if r.PlaybackID != "" {
		path += "/" + seg(r.PlaybackID)
	}
	var out Playback
	if err := c.do(ctx, request{op: "play_bridge", method: http.MethodPost, path: path, query: r.query()}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartBridgeMOH plays music on hold to a bridge; class empty is the default.
func (c *Client) StartBridgeMOH(ctx context.Context, bridgeID, class string) error {
	return c.do(ctx, request{op: "start_bridge_moh", method: http.MethodPost, path: "/bridges/" + seg(bridgeID) + "/moh",
		query: params("mohClass", class)}, nil)
}

// StopBridgeMOH stops music on hold on a bridge.
func (c *Client) StopBridgeMOH(ctx context.Context, bridgeID string) error {
	return c.do(ctx, request{op: "stop_bridge_moh", method: http.MethodDelete, path: "/bridges/" + seg(bridgeID) + "/moh"}, nil)
}

func joinComma(s []string) string { return strings.Join(s, ",") }
