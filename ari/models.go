package ari

// This file holds the resource models of ARI that the bridge reads, named and
// shaped as in Asterisk 22's Swagger models (rest-api/api-docs/*.json).
// Fields the bridge has no use for are left out; encoding/json ignores them.

// Channel is a snapshot of an Asterisk channel as ARI reports it in events
// and in GET /channels.
type Channel struct {
	ID           string            `json:"id"`
	ProtocolID   string            `json:"protocol_id,omitempty"`
	Name         string            `json:"name"`
	State        string            `json:"state"`
	Caller       CallerID          `json:"caller"`
	Connected    CallerID          `json:"connected"`
	AccountCode  string            `json:"accountcode,omitempty"`
	Dialplan     Dialplan          `json:"dialplan"`
	CreationTime Time              `json:"creationtime"`
	Language     string            `json:"language,omitempty"`
	ChannelVars  map[string]string `json:"channelvars,omitempty"`
	CallerRDNIS  string            `json:"caller_rdnis,omitempty"`
	TenantID     string            `json:"tenantid,omitempty"`
}

// Channel states as Asterisk names them.
const (
	StateDown    = "Down"
	StateRing    = "Ring"
	StateRinging = "Ringing"
	StateUp      = "Up"
	StateBusy    = "Busy"
)

// CallerID is a name and number pair, as in a channel's caller and connected
// line.
type CallerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

// Dialplan is where a channel is in the dialplan (Asterisk's DialplanCEP);
// AppName is "Stasis" while the channel is in an ARI application.
type Dialplan struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name,omitempty"`
	AppData  string `json:"app_data,omitempty"`
}

// Bridge is a snapshot of an Asterisk bridge.
type Bridge struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	VideoMode    string   `json:"video_mode,omitempty"`
	CreationTime Time     `json:"creationtime"`
}

// Playback is a media playback on a channel or bridge. State is "queued",
// "playing", "continuing", "done" or "failed".
type Playback struct {
	ID           string `json:"id"`
	MediaURI     string `json:"media_uri"`
	NextMediaURI string `json:"next_media_uri,omitempty"`
	TargetURI    string `json:"target_uri"`
	Language     string `json:"language,omitempty"`
	State        string `json:"state"`
}

// Application is what Asterisk knows of a Stasis application: the resources
// that are in it or subscribed to it. After a reconnect it is the list of
// channels still waiting on the bridge.
type Application struct {
	Name        string   `json:"name"`
	ChannelIDs  []string `json:"channel_ids"`
	BridgeIDs   []string `json:"bridge_ids"`
	EndpointIDs []string `json:"endpoint_ids"`
	DeviceNames []string `json:"device_names"`
}

// AsteriskInfo is the part of GET /asterisk/info the bridge logs on connect.
type AsteriskInfo struct {
	System struct {
		Version  string `json:"version"`
		EntityID string `json:"entity_id"`
	} `json:"system"`
	Status struct {
		StartupTime    Time `json:"startup_time"`
		LastReloadTime Time `json:"last_reload_time"`
	} `json:"status"`
}

// AsteriskPing is the answer of GET /asterisk/ping.
type AsteriskPing struct {
	AsteriskID string `json:"asterisk_id"`
	Ping       string `json:"ping"`
	Timestamp  Time   `json:"timestamp"`
}
