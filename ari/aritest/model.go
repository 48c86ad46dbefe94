package aritest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// model is the server's view of Asterisk: what REST calls and sent events
// created and did not remove. Objects are kept as ARI JSON objects, so that
// what a test put in comes back out with every field. Guarded by Server.mu.
type model struct {
	channels  map[string]*channel
	chanOrder []string
	bridges   map[string]*bridge
	brOrder   []string
	playbacks map[string]map[string]any
	apps      map[string]*application
	appOrder  []string
	vars      map[string]map[string]string // channel id -> variables; may precede the channel
	globals   map[string]string            // SetVar("", …): a value every channel has
}

type channel struct {
	obj    map[string]any // ARI Channel
	stasis string         // the application the channel is in, "" if none
}

type bridge struct {
	obj      map[string]any // ARI Bridge, without "channels"
	channels []string
}

type application struct {
	name string
	subs []string // event sources, as "channel:ID"
}

func newModel() model {
	return model{
		channels:  make(map[string]*channel),
		bridges:   make(map[string]*bridge),
		playbacks: make(map[string]map[string]any),
		apps:      make(map[string]*application),
		vars:      make(map[string]map[string]string),
		globals:   make(map[string]string),
	}
}

// app returns the application named name, creating it.
func (m *model) app(name string) *application {
	a := m.apps[name]
	if a == nil {
		a = &application{name: name}
		m.apps[name] = a
		m.appOrder = append(m.appOrder, name)
	}
	return a
}

func (a *application) subscribed(source string) bool { return slices.Contains(a.subs, source) }

func (a *application) subscribe(source string) {
	if !a.subscribed(source) {
		a.subs = append(a.subs, source)
	}
}

func (a *application) unsubscribe(source string) {
	a.subs = slices.DeleteFunc(a.subs, func(s string) bool { return s == source })
}

// applicationJSON is GET /applications/{name}: the channels in the
// application or subscribed to, and the bridges subscribed to or holding
// one of its channels.
func (m *model) applicationJSON(a *application) map[string]any {
	chans := []string{}
	for _, id := range m.chanOrder {
		if m.channels[id].stasis == a.name || a.subscribed("channel:"+id) {
			chans = append(chans, id)
		}
	}
	brs := []string{}
	for _, id := range m.brOrder {
		in := a.subscribed("bridge:" + id)
		for _, ch := range m.bridges[id].channels {
			in = in || (m.channels[ch] != nil && m.channels[ch].stasis == a.name)
		}
		if in {
			brs = append(brs, id)
		}
	}
	endpoints, devices := []string{}, []string{}
	for _, s := range a.subs {
		if v, ok := strings.CutPrefix(s, "endpoint:"); ok {
			endpoints = append(endpoints, v)
		}
		if v, ok := strings.CutPrefix(s, "deviceState:"); ok {
			devices = append(devices, v)
		}
	}
	return map[string]any{
		"name": a.name, "channel_ids": chans, "bridge_ids": brs,
		"endpoint_ids": endpoints, "device_names": devices,
		"events_allowed": []any{}, "events_disallowed": []any{},
	}
}

// putChannel adds or updates a channel from its ARI JSON, keeping what the
// model knows beyond it (application, variables).
func (m *model) putChannel(obj map[string]any) (*channel, error) {
	id, _ := obj["id"].(string)
	if id == "" {
		return nil, errors.New(`aritest: channel without an "id"`)
	}
	ch := m.channels[id]
	if ch == nil {
		ch = &channel{}
		m.channels[id] = ch
		m.chanOrder = append(m.chanOrder, id)
	}
	ch.obj = obj
	return ch, nil
}

// removeChannel forgets a channel that is gone, with everything that
// referred to it.
func (m *model) removeChannel(id string) {
	if m.channels[id] == nil {
		return
	}
	delete(m.channels, id)
	delete(m.vars, id)
	m.chanOrder = slices.DeleteFunc(m.chanOrder, func(s string) bool { return s == id })
	for _, b := range m.bridges {
		b.channels = slices.DeleteFunc(b.channels, func(s string) bool { return s == id })
	}
	for _, a := range m.apps {
		a.unsubscribe("channel:" + id)
	}
}

func (m *model) putBridge(obj map[string]any) (*bridge, error) {
	id, _ := obj["id"].(string)
	if id == "" {
		return nil, errors.New(`aritest: bridge without an "id"`)
	}
	b := m.bridges[id]
	if b == nil {
		b = &bridge{}
		m.bridges[id] = b
		m.brOrder = append(m.brOrder, id)
	}
	if chans, ok := obj["channels"].([]any); ok {
		b.channels = b.channels[:0]
		for _, c := range chans {
			if s, ok := c.(string); ok {
				b.channels = append(b.channels, s)
			}
		}
	}
	obj = maps.Clone(obj)
	delete(obj, "channels")
	b.obj = obj
	return b, nil
}

func (m *model) removeBridge(id string) {
	delete(m.bridges, id)
	m.brOrder = slices.DeleteFunc(m.brOrder, func(s string) bool { return s == id })
	for _, a := range m.apps {
		a.unsubscribe("bridge:" + id)
	}
}

func (b *bridge) json() map[string]any {
	out := maps.Clone(b.obj)
	out["channels"] = append([]string{}, b.channels...)
	return out
}

// variable returns a channel's variable: set on it, in its channelvars, or
// set for every channel.
func (m *model) variable(id string, name string) (string, bool) {
	if v, ok := m.vars[id][name]; ok {
		return v, true
	}
	ch := m.channels[id]
	if ch == nil {
		return "", false
	}
	if cv, ok := ch.obj["channelvars"].(map[string]any); ok {
		if v, ok := cv[name].(string); ok {
			return v, true
		}
	}
	v, ok := m.globals[name]
	return v, ok
}

// applyLocked updates the model with an event sent to app, the way Asterisk's
// state had changed when it wrote that event. Fields that do not decode are
// ignored: the event is still sent.
func (s *Server) applyLocked(app string, data []byte) {
	var ev map[string]json.RawMessage
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	var typ string
	json.Unmarshal(ev["type"], &typ)
	m := &s.m
	chObj, _ := decodeObject(ev["channel"])
	var ch *channel
	if chObj != nil {
		if typ == "StasisStart" || typ == "ChannelCreated" || m.channels[idOf(chObj)] != nil {
			ch, _ = m.putChannel(chObj)
		}
	}
	if brObj, _ := decodeObject(ev["bridge"]); brObj != nil && typ != "BridgeDestroyed" {
		m.putBridge(brObj)
	}
	switch typ {
	case "StasisStart":
		if ch != nil {
			ch.stasis = app
			m.app(app)
		}
	case "StasisEnd":
		if ch != nil && ch.stasis == app {
			ch.stasis = ""
		}
	case "ChannelDestroyed":
		if chObj != nil {
			m.removeChannel(idOf(chObj))
		}
	case "ChannelVarset":
		var v struct{ Variable, Value string }
		if ch != nil && json.Unmarshal(data, &v) == nil && v.Variable != "" {
			m.setVar(idOf(chObj), v.Variable, v.Value)
		}
	case "BridgeDestroyed":
		if b, _ := decodeObject(ev["bridge"]); b != nil {
			m.removeBridge(idOf(b))
		}
	case "PlaybackStarted", "PlaybackContinuing":
		if p, _ := decodeObject(ev["playback"]); p != nil && idOf(p) != "" {
			m.playbacks[idOf(p)] = p
		}
	case "PlaybackFinished":
		if p, _ := decodeObject(ev["playback"]); p != nil {
			delete(m.playbacks, idOf(p))
		}
	}
	s.notifyLocked()
}

func idOf(obj map[string]any) string {
	id, _ := obj["id"].(string)
	return id
}

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(data []byte) (map[string]any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// toObject turns raw JSON or a value into a JSON object.
func toObject(v any) (map[string]any, error) {
	var data []byte
	switch x := v.(type) {
	case []byte:
		data = x
	case json.RawMessage:
		data = x
	case string:
		data = []byte(x)
	default:
		var err error
		if data, err = json.Marshal(x); err != nil {
			return nil, err
		}
	}
	obj, err := decodeObject(data)
	if err == nil && obj == nil {
		err = errors.New("not a JSON object")
	}
	return obj, err
}

// withDefaults fills the fields of an ARI object that obj lacks.
func withDefaults(obj, defaults map[string]any) map[string]any {
	out := maps.Clone(defaults)
	maps.Copy(out, obj)
	return out
}

func (s *Server) channelDefaults(id, name string) map[string]any {
	now := time.Now().Format(timeLayout)
	return map[string]any{
		"id": id, "name": name, "state": "Up", "protocol_id": "",
		"caller":       map[string]any{"name": "", "number": ""},
		"connected":    map[string]any{"name": "", "number": ""},
		"accountcode":  "",
		"dialplan":     map[string]any{"context": "default", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
		"creationtime": now, "language": "en",
	}
}

func (s *Server) bridgeDefaults(id string) map[string]any {
	return map[string]any{
		"id": id, "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
		"creator": "Stasis", "name": "", "channels": []any{}, "video_mode": "none",
		"creationtime": time.Now().Format(timeLayout),
	}
}

// nextLocked returns a new sequence number for ids and names.
func (s *Server) nextLocked() int {
	s.seq++
	return s.seq
}

// AddChannel puts a channel into the model, in Stasis in app (or in no
// application when app is empty), as if it had entered the dialplan's
// Stasis() while no socket was listening. channel is the channel's ARI JSON
// (as in a StasisStart's "channel"), as []byte, json.RawMessage or string,
// or a value encoded as JSON; it needs an "id", and the fields it lacks get
// plausible values. A channel with that id is replaced.
func (s *Server) AddChannel(app string, channel any) error {
	obj, err := toObject(channel)
	if err != nil {
		return fmt.Errorf("aritest: AddChannel: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextLocked()
	obj = withDefaults(obj, s.channelDefaults(idOf(obj), fmt.Sprintf("PJSIP/trunk-%08x", n)))
	ch, err := s.m.putChannel(obj)
	if err != nil {
		return err
	}
	ch.stasis = app
	if app != "" {
		s.m.app(app)
	}
	s.notifyLocked()
	return nil
}

// AddBridge puts a bridge into the model, from its ARI JSON as for
// AddChannel. Its "channels" are the ids of channels in it.
func (s *Server) AddBridge(bridge any) error {
	obj, err := toObject(bridge)
	if err != nil {
		return fmt.Errorf("aritest: AddBridge: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.m.putBridge(withDefaults(obj, s.bridgeDefaults(idOf(obj)))); err != nil {
		return err
	}
	s.notifyLocked()
	return nil
}

// SetVar sets what GET /channels/{id}/variable returns for name on the
// channel channelID (which may be added later; a hangup forgets it), or on
// every channel that has no value of its own when channelID is empty: the
// way to give a dialplan function such as QUEUE_MEMBER(sales,logged) a
// value.
func (s *Server) SetVar(channelID, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if channelID == "" {
		s.m.globals[name] = value
		return
	}
	s.m.setVar(channelID, name, value)
}

func (m *model) setVar(id, name, value string) {
	if m.vars[id] == nil {
		m.vars[id] = make(map[string]string)
	}
	m.vars[id][name] = value
}

// Channel returns the ARI JSON of a channel of the model, and whether it
// exists.
func (s *Server) Channel(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.m.channels[id]
	if ch == nil {
		return nil, false
	}
	return mustJSON(ch.obj), true
}

// Bridge returns the ARI JSON of a bridge of the model, and whether it
// exists.
func (s *Server) Bridge(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m.bridges[id]
	if b == nil {
		return nil, false
	}
	return mustJSON(b.json()), true
}

// mustJSON encodes a value built from decoded JSON, which cannot fail.
func mustJSON(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("aritest: encoding %T: %v", v, err))
	}
	return data
}
