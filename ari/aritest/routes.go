package aritest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The default REST behaviour: the ARI routes the bridge uses, answered from
// the model with Asterisk's status codes and {"message"} texts.

func (s *Server) defaultRoutes() []route {
	r := func(method, pattern string, h func(Call) (int, any)) route {
		return route{method: method, segs: splitPattern(pattern), h: func(_ context.Context, c Call) (int, any) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return h(c)
		}}
	}
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	return []route{
		r(get, "/asterisk/ping", s.ping),
		r(get, "/asterisk/info", s.info),

		r(get, "/applications", s.listApplications),
		r(get, "/applications/{app}", s.getApplication),
		r(post, "/applications/{app}/subscription", s.subscribe),
		r(del, "/applications/{app}/subscription", s.unsubscribe),

		r(get, "/channels", s.listChannels),
		r(post, "/channels", s.originate),
		r(get, "/channels/{id}", s.getChannel),
		r(post, "/channels/{id}", s.originate),
		r(del, "/channels/{id}", s.hangup),
		r(post, "/channels/{id}/answer", s.answer),
		r(post, "/channels/{id}/ring", s.inStasis),
		r(del, "/channels/{id}/ring", s.inStasis),
		r(post, "/channels/{id}/continue", s.leave),
		r(post, "/channels/{id}/move", s.move),
		r(post, "/channels/{id}/dtmf", s.dtmf),
		r(post, "/channels/{id}/play", s.play),
		r(post, "/channels/{id}/play/{playbackId}", s.play),
		r(post, "/channels/{id}/moh", s.inStasis),
		r(del, "/channels/{id}/moh", s.inStasis),
		r(get, "/channels/{id}/variable", s.getVariable),
		r(post, "/channels/{id}/variable", s.setVariable),

		r(get, "/bridges", s.listBridges),
		r(post, "/bridges", s.createBridge),
		r(get, "/bridges/{id}", s.getBridge),
		r(post, "/bridges/{id}", s.createBridge),
		r(del, "/bridges/{id}", s.destroyBridge),
		r(post, "/bridges/{id}/addChannel", s.addChannel),
		r(post, "/bridges/{id}/removeChannel", s.removeChannel),
		r(post, "/bridges/{id}/play", s.play),
		r(post, "/bridges/{id}/play/{playbackId}", s.play),
		r(post, "/bridges/{id}/moh", s.bridgeExists),
		r(del, "/bridges/{id}/moh", s.bridgeExists),

		r(get, "/playbacks/{id}", s.getPlayback),
		r(del, "/playbacks/{id}", s.stopPlayback),
		r(post, "/playbacks/{id}/control", s.controlPlayback),
	}
}

// arg returns a parameter from the query or, as ARI allows, from a JSON
// body's top-level field.
func arg(c Call, name string) string {
	if c.Query.Has(name) {
		return c.Query.Get(name)
	}
	if len(c.Body) == 0 {
		return ""
	}
	obj, err := decodeObject(c.Body)
	if err != nil {
		return ""
	}
	switch v := obj[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func list(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func missing(name string) (int, any) {
	return http.StatusBadRequest, ErrorBody("missing required parameter: " + name)
}

var (
	errChannelNotFound  = ErrorBody("Channel not found")
	errNotInStasis      = ErrorBody("Channel not in Stasis application")
	errBridgeNotFound   = ErrorBody("Bridge not found")
	errPlaybackNotFound = ErrorBody("Playback not found")
	errAppNotFound      = ErrorBody("Application not found")
)

func (s *Server) ping(Call) (int, any) {
	return http.StatusOK, map[string]any{"asterisk_id": AsteriskID, "ping": "pong", "timestamp": time.Now().Format(timeLayout)}
}

func (s *Server) info(Call) (int, any) {
	start := s.started.Format(timeLayout)
	return http.StatusOK, map[string]any{
		"build":  map[string]any{"os": "Linux", "kernel": "", "machine": "x86_64", "options": "", "date": "", "user": ""},
		"system": map[string]any{"version": Version, "entity_id": AsteriskID},
		"config": map[string]any{"name": "aritest", "default_language": "en", "setid": map[string]any{"user": "", "group": ""}},
		"status": map[string]any{"startup_time": start, "last_reload_time": start},
	}
}

func (s *Server) listApplications(Call) (int, any) {
	out := []any{}
	for _, name := range s.m.appOrder {
		out = append(out, s.m.applicationJSON(s.m.apps[name]))
	}
	return http.StatusOK, mustJSON(out)
}

func (s *Server) getApplication(c Call) (int, any) {
	a := s.m.apps[c.Params["app"]]
	if a == nil {
		return http.StatusNotFound, errAppNotFound
	}
	return http.StatusOK, mustJSON(s.m.applicationJSON(a))
}

func (s *Server) subscribe(c Call) (int, any)   { return s.subscription(c, true) }
func (s *Server) unsubscribe(c Call) (int, any) { return s.subscription(c, false) }

func (s *Server) subscription(c Call, on bool) (int, any) {
	sources := list(arg(c, "eventSource"))
	if len(sources) == 0 {
		return missing("eventSource")
	}
	a := s.m.apps[c.Params["app"]]
	if a == nil {
		return http.StatusNotFound, errAppNotFound
	}
	for _, src := range sources {
		kind, id, _ := strings.Cut(src, ":")
		switch kind {
		case "channel":
			if on && s.m.channels[id] == nil {
				return http.StatusUnprocessableEntity, ErrorBody("Unable to find event source " + src)
			}
		case "bridge":
			if on && s.m.bridges[id] == nil {
				return http.StatusUnprocessableEntity, ErrorBody("Unable to find event source " + src)
			}
		case "endpoint", "deviceState":
		default:
			return http.StatusBadRequest, ErrorBody("Invalid event source URI scheme: " + src)
		}
		if !on && !a.subscribed(src) {
			return http.StatusConflict, ErrorBody("Application not subscribed to event source " + src)
		}
	}
	for _, src := range sources {
		if on {
			a.subscribe(src)
		} else {
			a.unsubscribe(src)
		}
	}
	s.notifyLocked()
	return http.StatusOK, mustJSON(s.m.applicationJSON(a))
}

func (s *Server) listChannels(Call) (int, any) {
	out := []any{}
	for _, id := range s.m.chanOrder {
		out = append(out, s.m.channels[id].obj)
	}
	return http.StatusOK, mustJSON(out)
}

func (s *Server) getChannel(c Call) (int, any) {
	ch := s.m.channels[c.Params["id"]]
	if ch == nil {
		return http.StatusNotFound, errChannelNotFound
	}
	return http.StatusOK, mustJSON(ch.obj)
}

// stasisChannel returns the channel of the call's {id}, or the error
// Asterisk answers when it is gone or not in an application.
func (s *Server) stasisChannel(c Call) (*channel, int, any) {
	ch := s.m.channels[c.Params["id"]]
	if ch == nil {
		return nil, http.StatusNotFound, errChannelNotFound
	}
	if ch.stasis == "" {
		return nil, http.StatusConflict, errNotInStasis
	}
	return ch, 0, nil
}

// inStasis answers an action that only needs the channel in an application.
func (s *Server) inStasis(c Call) (int, any) {
	if _, status, body := s.stasisChannel(c); status != 0 {
		return status, body
	}
	return http.StatusNoContent, nil
}

func (s *Server) answer(c Call) (int, any) {
	ch, status, body := s.stasisChannel(c)
	if status != 0 {
		return status, body
	}
	ch.obj["state"] = "Up"
	return http.StatusNoContent, nil
}

var hangupReasons = []string{
	"normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
	"normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
	"answered_elsewhere",
}

func (s *Server) hangup(c Call) (int, any) {
	id := c.Params["id"]
	if s.m.channels[id] == nil {
		return http.StatusNotFound, errChannelNotFound
	}
	if r := arg(c, "reason"); r != "" && !slices.Contains(hangupReasons, r) {
		return http.StatusBadRequest, ErrorBody("Invalid reason for hangup provided")
	}
	s.m.removeChannel(id)
	s.notifyLocked()
	return http.StatusNoContent, nil
}

// leave is continue: the channel goes back to the dialplan, out of the
// application.
func (s *Server) leave(c Call) (int, any) {
	ch, status, body := s.stasisChannel(c)
	if status != 0 {
		return status, body
	}
	ch.stasis = ""
	s.notifyLocked()
	return http.StatusNoContent, nil
}

func (s *Server) move(c Call) (int, any) {
	app := arg(c, "app")
	if app == "" {
		return missing("app")
	}
	ch, status, body := s.stasisChannel(c)
	if status != 0 {
		return status, body
	}
	ch.stasis = app
	s.m.app(app)
	s.notifyLocked()
	return http.StatusNoContent, nil
}

func (s *Server) dtmf(c Call) (int, any) {
	if arg(c, "dtmf") == "" {
		return http.StatusBadRequest, ErrorBody("DTMF is required")
	}
	return s.inStasis(c)
}

func (s *Server) play(c Call) (int, any) {
	media := list(arg(c, "media"))
	if len(media) == 0 {
		return missing("media")
	}
	var target, lang string
	if c.Params["id"] != "" && strings.HasPrefix(c.Path, "/bridges/") {
		if s.m.bridges[c.Params["id"]] == nil {
			return http.StatusNotFound, errBridgeNotFound
		}
		target = "bridge:" + c.Params["id"]
	} else {
		ch, status, body := s.stasisChannel(c)
		if status != 0 {
			return status, body
		}
		target = "channel:" + c.Params["id"]
		lang, _ = ch.obj["language"].(string)
	}
	if l := arg(c, "lang"); l != "" {
		lang = l
	}
	if lang == "" {
		lang = "en"
	}
	id := c.Params["playbackId"]
	if id == "" {
		id = fmt.Sprintf("aritest-playback-%d", s.nextLocked())
	}
	if s.m.playbacks[id] != nil {
		return http.StatusConflict, ErrorBody("Playback with given id already exists")
	}
	p := map[string]any{"id": id, "media_uri": media[0], "target_uri": target, "language": lang, "state": "queued"}
	if len(media) > 1 {
		p["next_media_uri"] = media[1]
	}
	s.m.playbacks[id] = p
	s.notifyLocked()
	return http.StatusCreated, mustJSON(p)
}

func (s *Server) getVariable(c Call) (int, any) {
	name := arg(c, "variable")
	if name == "" {
		return missing("variable")
	}
	if s.m.channels[c.Params["id"]] == nil {
		return http.StatusNotFound, errChannelNotFound
	}
	v, ok := s.m.variable(c.Params["id"], name)
	if !ok {
		return http.StatusNotFound, ErrorBody("Provided variable was not found")
	}
	return http.StatusOK, map[string]string{"value": v}
}

func (s *Server) setVariable(c Call) (int, any) {
	name := arg(c, "variable")
	if name == "" {
		return http.StatusBadRequest, ErrorBody("Variable name is required")
	}
	if s.m.channels[c.Params["id"]] == nil {
		return http.StatusNotFound, errChannelNotFound
	}
	s.m.setVar(c.Params["id"], name, arg(c, "value"))
	s.notifyLocked()
	return http.StatusNoContent, nil
}

// originate creates the channel of POST /channels[/{id}]: for a Local
// endpoint, both halves (;1 with channelId, ;2 with otherChannelId), and
// subscribes the application to the ;1 half, as Asterisk does. It stays
// out of Stasis (Down) until a test sends its StasisStart.
func (s *Server) originate(c Call) (int, any) {
	endpoint := arg(c, "endpoint")
	if endpoint == "" {
		return http.StatusBadRequest, ErrorBody("Endpoint must be specified")
	}
	app, exten := arg(c, "app"), arg(c, "extension")
	if app == "" && exten == "" {
		return http.StatusBadRequest, ErrorBody("Application or extension must be specified")
	}
	id := c.Params["id"]
	if id == "" {
		id = arg(c, "channelId")
	}
	n := s.nextLocked()
	if id == "" {
		id = fmt.Sprintf("%d.%d", s.started.Unix(), n)
	}
	other := arg(c, "otherChannelId")
	local := strings.HasPrefix(endpoint, "Local/")
	if local && other == "" {
		other = fmt.Sprintf("%d.%d", s.started.Unix(), s.nextLocked())
	}
	for _, x := range []string{id, other} {
		if x != "" && s.m.channels[x] != nil {
			return http.StatusConflict, ErrorBody("Channel with given unique ID already exists")
		}
	}
	var variables map[string]string
	if len(c.Body) > 0 {
		var body struct {
			Variables map[string]string `json:"variables"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil {
			return http.StatusBadRequest, ErrorBody("Invalid JSON body: " + err.Error())
		}
		variables = body.Variables
	}

	base := fmt.Sprintf("%s-%08x", endpoint, n)
	name := base
	if local {
		// Local/sales@queue-entry/n is named Local/sales@queue-entry-0000000N;1.
		base = fmt.Sprintf("%s-%08x", strings.TrimSuffix(endpoint, "/n"), n)
		name = base + ";1"
	}
	cidName, cidNum := parseCallerID(arg(c, "callerId"))
	dialplan := map[string]any{"context": arg(c, "context"), "exten": exten, "priority": 1, "app_name": "", "app_data": ""}
	if dialplan["context"] == "" {
		dialplan["context"] = "default"
	}
	if exten == "" {
		dialplan["exten"] = "s"
	}
	mk := func(id, name string) map[string]any {
		obj := s.channelDefaults(id, name)
		obj["state"] = "Down"
		obj["caller"] = map[string]any{"name": cidName, "number": cidNum}
		obj["dialplan"] = maps.Clone(dialplan)
		return obj
	}
	ch, _ := s.m.putChannel(mk(id, name))
	for k, v := range variables {
		s.m.setVar(id, k, v)
	}
	if local {
		s.m.putChannel(mk(other, base+";2"))
	}
	if app != "" {
		s.m.app(app).subscribe("channel:" + id)
	}
	s.notifyLocked()
	return http.StatusOK, mustJSON(ch.obj)
}

// parseCallerID splits `"Alice" <+1555>` (or a bare number) into name and
// number.
func parseCallerID(s string) (name, number string) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return strings.Trim(strings.TrimSpace(s[:i]), `"`), s[i+1 : len(s)-1]
	}
	return "", s
}

func (s *Server) listBridges(Call) (int, any) {
	out := []any{}
	for _, id := range s.m.brOrder {
		out = append(out, s.m.bridges[id].json())
	}
	return http.StatusOK, mustJSON(out)
}

func (s *Server) getBridge(c Call) (int, any) {
	b := s.m.bridges[c.Params["id"]]
	if b == nil {
		return http.StatusNotFound, errBridgeNotFound
	}
	return http.StatusOK, mustJSON(b.json())
}

func (s *Server) createBridge(c Call) (int, any) {
	id := c.Params["id"]
	if id == "" {
		id = arg(c, "bridgeId")
	}
	if id == "" {
		id = fmt.Sprintf("aritest-bridge-%d", s.nextLocked())
	}
	if s.m.bridges[id] != nil {
		return http.StatusConflict, ErrorBody("Bridge with id " + id + " already exists")
	}
	obj := s.bridgeDefaults(id)
	types := list(arg(c, "type"))
	if slices.Contains(types, "holding") {
		obj["bridge_type"], obj["technology"] = "holding", "holding_bridge"
	}
	obj["name"] = arg(c, "name")
	b, _ := s.m.putBridge(obj)
	s.notifyLocked()
	return http.StatusOK, mustJSON(b.json())
}

func (s *Server) bridgeExists(c Call) (int, any) {
	if s.m.bridges[c.Params["id"]] == nil {
		return http.StatusNotFound, errBridgeNotFound
	}
	return http.StatusNoContent, nil
}

func (s *Server) destroyBridge(c Call) (int, any) {
	if s.m.bridges[c.Params["id"]] == nil {
		return http.StatusNotFound, errBridgeNotFound
	}
	s.m.removeBridge(c.Params["id"])
	s.notifyLocked()
	return http.StatusNoContent, nil
}

func (s *Server) addChannel(c Call) (int, any) {
	ids := list(arg(c, "channel"))
	if len(ids) == 0 {
		return missing("channel")
	}
	b := s.m.bridges[c.Params["id"]]
	if b == nil {
		return http.StatusNotFound, errBridgeNotFound
	}
	for _, id := range ids {
		ch := s.m.channels[id]
		if ch == nil {
			return http.StatusBadRequest, errChannelNotFound
		}
		if ch.stasis == "" {
			return http.StatusUnprocessableEntity, errNotInStasis
		}
	}
	for _, id := range ids {
		for _, other := range s.m.bridges { // a channel is in one bridge at a time
			other.channels = slices.DeleteFunc(other.channels, func(s string) bool { return s == id })
		}
		b.channels = append(b.channels, id)
	}
	s.notifyLocked()
	return http.StatusNoContent, nil
}

func (s *Server) removeChannel(c Call) (int, any) {
	ids := list(arg(c, "channel"))
	if len(ids) == 0 {
		return missing("channel")
	}
	b := s.m.bridges[c.Params["id"]]
	if b == nil {
		return http.StatusNotFound, errBridgeNotFound
	}
	for _, id := range ids {
		if s.m.channels[id] == nil {
			return http.StatusBadRequest, errChannelNotFound
		}
		if !slices.Contains(b.channels, id) {
			return http.StatusUnprocessableEntity, ErrorBody("Channel not in this bridge")
		}
	}
	b.channels = slices.DeleteFunc(b.channels, func(s string) bool { return slices.Contains(ids, s) })
	s.notifyLocked()
	return http.StatusNoContent, nil
}

func (s *Server) getPlayback(c Call) (int, any) {
	p := s.m.playbacks[c.Params["id"]]
	if p == nil {
		return http.StatusNotFound, errPlaybackNotFound
	}
	return http.StatusOK, mustJSON(p)
}

func (s *Server) stopPlayback(c Call) (int, any) {
	if s.m.playbacks[c.Params["id"]] == nil {
		return http.StatusNotFound, errPlaybackNotFound
	}
	delete(s.m.playbacks, c.Params["id"])
	s.notifyLocked()
	return http.StatusNoContent, nil
}

var playbackOperations = []string{"restart", "pause", "unpause", "reverse", "forward"}

func (s *Server) controlPlayback(c Call) (int, any) {
	op := arg(c, "operation")
	if op == "" {
		return missing("operation")
	}
	if !slices.Contains(playbackOperations, op) {
		return http.StatusBadRequest, ErrorBody("Invalid operation " + op)
	}
	if s.m.playbacks[c.Params["id"]] == nil {
		return http.StatusNotFound, errPlaybackNotFound
	}
	return http.StatusNoContent, nil
}
