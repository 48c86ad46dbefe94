package ari

import (
	"context"
	"fmt"
	"net/http"
)

// Event sources for Subscribe and Unsubscribe.

// ChannelSource is the event source of one channel.
func ChannelSource(channelID string) string { return "channel:" + channelID }

// BridgeSource is the event source of one bridge.
func BridgeSource(bridgeID string) string { return "bridge:" + bridgeID }

// EndpointSource is the event source of an endpoint, e.g. PJSIP/agent1.
func EndpointSource(tech, resource string) string { return "endpoint:" + tech + "/" + resource }

// GetApplication returns what Asterisk knows of the client's application:
// after a reconnect, ChannelIDs are the channels still in it.
func (c *Client) GetApplication(ctx context.Context) (*Application, error) {
	var out Application
	err := c.do(ctx, request{op: "get_application", method: http.MethodGet, path: "/applications/" + seg(c.opts.Application)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Subscribe subscribes the application to event sources (ChannelSource,
// BridgeSource, …), so their events keep coming after StasisEnd or for
// channels that never entered the application, such as the ;2 half of a
// Local channel running Queue().
func (c *Client) Subscribe(ctx context.Context, sources ...string) (*Application, error) {
	return c.subscription(ctx, "subscribe", http.MethodPost, sources)
}

// Unsubscribe ends subscriptions made with Subscribe; ErrConflict if the
// application was not subscribed.
func (c *Client) Unsubscribe(ctx context.Context, sources ...string) (*Application, error) {
	return c.subscription(ctx, "unsubscribe", http.MethodDelete, sources)
}

// SubscribeChannel subscribes the application to one channel's events.
func (c *Client) SubscribeChannel(ctx context.Context, channelID string) error {
	_, err := c.Subscribe(ctx, ChannelSource(channelID))
	return err
}

// UnsubscribeChannel ends a SubscribeChannel.
func (c *Client) UnsubscribeChannel(ctx context.Context, channelID string) error {
	_, err := c.Unsubscribe(ctx, ChannelSource(channelID))
	return err
}

func (c *Client) subscription(ctx context.Context, op, method string, sources []string) (*Application, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("ari: %s: no event source", op)
	}
	var out Application
	err := c.do(ctx, request{op: op, method: method, path: "/applications/" + seg(c.opts.Application) + "/subscription",
		query: params("eventSource", joinComma(sources))}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Ping checks that Asterisk answers ARI.
func (c *Client) Ping(ctx context.Context) (*AsteriskPing, error) {
	var out AsteriskPing
	if err := c.do(ctx, request{op: "ping", method: http.MethodGet, path: "/asterisk/ping"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Info returns Asterisk's version and start time; a start time that changed
// across a reconnect means Asterisk restarted and every call is gone.
func (c *Client) Info(ctx context.Context) (*AsteriskInfo, error) {
	var out AsteriskInfo
	if err := c.do(ctx, request{op: "info", method: http.MethodGet, path: "/asterisk/info"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Snapshot is the state of the application at one moment, for rebuilding
// an application's state after a (re)connect: Asterisk replays no events.
type Snapshot struct {
	Application Application
	// Channels are the channels in the application or subscribed to it
	// that still exist, in the order of Application.ChannelIDs.
	Channels []Channel
	// Bridges are the application's bridges that still exist.
	Bridges []Bridge
}

// Snapshot lists what the application holds now. Channels and bridges that
// vanish between the listing and their lookup are left out.
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	app, err := c.GetApplication(ctx)
	if err != nil {
		return nil, err
	}
	channels, err := c.ListChannels(ctx)
	if err != nil {
		return nil, err
	}
	bridges, err := c.ListBridges(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Application: *app}
	byID := make(map[string]Channel, len(channels))
	for _, ch := range channels {
		byID[ch.ID] = ch
	}
	for _, id := range app.ChannelIDs {
		if ch, ok := byID[id]; ok {
			s.Channels = append(s.Channels, ch)
		}
	}
	inApp := make(map[string]bool, len(app.BridgeIDs))
	for _, id := range app.BridgeIDs {
		inApp[id] = true
	}
	for _, b := range bridges {
		if inApp[b.ID] {
			s.Bridges = append(s.Bridges, b)
		}
	}
	return s, nil
}
