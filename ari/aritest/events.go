package aritest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ErrNotConnected is returned by Send when no event socket holds the
// application. The event still changed the server's model, as an event
// happens in Asterisk whether or not an application hears it.
var ErrNotConnected = errors.New("aritest: no event socket holds the application")

// eventConn is one event websocket.
type eventConn struct {
	conn *websocket.Conn
	apps []string // as requested; which of them it still holds is in Server.owner
	wmu  sync.Mutex
}

// serveEvents upgrades GET /ari/events. Like Asterisk, a socket for an
// application takes it from the socket that held it, which gets an
// ApplicationReplaced and then nothing more, but stays open.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	refuse, closed := s.refuse, s.closed
	s.mu.Unlock()
	if closed {
		writeBody(w, http.StatusServiceUnavailable, ErrorBody("Asterisk is shutting down"))
		return
	}
	if refuse != 0 {
		writeBody(w, refuse, ErrorBody(http.StatusText(refuse)))
		return
	}
	var apps []string
	for a := range strings.SplitSeq(r.URL.Query().Get("app"), ",") {
		if a != "" && !slices.Contains(apps, a) {
			apps = append(apps, a)
		}
	}
	if len(apps) == 0 {
		writeBody(w, http.StatusBadRequest, ErrorBody("Missing parameter app"))
		return
	}

	ec := &eventConn{apps: apps}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"ari"},
		InsecureSkipVerify: true,
		OnPingReceived:     func(context.Context, []byte) bool { return s.answersPings(ec) },
	})
	if err != nil {
		return // Accept has answered
	}
	ec.conn = conn

	replaced, ok := s.register(ec)
	if !ok {
		conn.CloseNow()
		return
	}
	defer s.wg.Done()
	defer s.unregister(ec)
	for _, old := range replaced {
		s.sendReplaced(old.conn, old.app)
	}
	// Reading answers the client's pings and close frames; the loop ends
	// when either side closes.
	for {
		if _, _, err := conn.Read(context.Background()); err != nil {
			return
		}
	}
}

type replacement struct {
	conn *eventConn
	app  string
}

// register gives ec its applications and returns the sockets they were
// taken from. It counts the handler in s.wg, unless the server is closed.
func (s *Server) register(ec *eventConn) ([]replacement, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	var replaced []replacement
	for _, app := range ec.apps {
		if old := s.owner[app]; old != nil {
			replaced = append(replaced, replacement{old, app})
		}
		s.owner[app] = ec
		s.m.app(app)
	}
	s.conns[ec] = true
	s.notifyLocked()
	return replaced, true
}

func (s *Server) unregister(ec *eventConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(ec)
	delete(s.conns, ec)
	s.notifyLocked()
}

// releaseLocked takes every application from ec.
func (s *Server) releaseLocked(ec *eventConn) {
	for _, app := range ec.apps {
		if s.owner[app] == ec {
			delete(s.owner, app)
		}
	}
}

func (s *Server) sendReplaced(ec *eventConn, app string) {
	data := fill([]byte(`{"type":"ApplicationReplaced"}`), app, time.Now())
	ec.wmu.Lock()
	defer ec.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ec.conn.Write(ctx, websocket.MessageText, data) // a dead socket needs no notice
}

func (s *Server) answersPings(ec *eventConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, app := range ec.apps {
		if s.noPongs[app] {
			return false
		}
	}
	return true
}

// WaitConnected waits until an event socket holds app, or ctx ends. A
// client may see its connection up a moment before the server has
// registered it, so a test waits here before its first Send, and again
// after a reconnect.
func (s *Server) WaitConnected(ctx context.Context, app string) error {
	err := s.wait(ctx, func() bool { return s.owner[app] != nil })
	if err != nil {
		return fmt.Errorf("aritest: waiting for a socket for %q: %w", app, err)
	}
	return nil
}

// Send sends one event to the socket that holds app, after applying it to
// the server's model (a StasisStart puts its channel in the application, a
// ChannelDestroyed removes it, and so on). event is raw JSON ([]byte,
// json.RawMessage or string), sent byte for byte, or any other value,
// encoded as JSON. A JSON object without "application" or "timestamp" gets
// them (now, in Asterisk's layout). Anything that is not a JSON object is
// sent as is, as a broken Asterisk would. Send returns ErrNotConnected when
// no socket holds app.
func (s *Server) Send(ctx context.Context, app string, event any) error {
	var data []byte
	switch e := event.(type) {
	case []byte:
		data = e
	case json.RawMessage:
		data = e
	case string:
		data = []byte(e)
	default:
		var err error
		if data, err = json.Marshal(e); err != nil {
			return fmt.Errorf("aritest: encoding event: %w", err)
		}
	}
	data = fill(data, app, time.Now())

	s.mu.Lock()
	s.applyLocked(app, data)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		ec, closed := s.owner[app], s.closed
		s.mu.Unlock()
		if closed {
			return errClosed
		}
		if ec == nil {
			return fmt.Errorf("aritest: sending to %q: %w", app, ErrNotConnected)
		}
		// Hold the socket's write lock while checking that it still holds
		// app, so that no event follows an ApplicationReplaced.
		ec.wmu.Lock()
		s.mu.Lock()
		still := s.owner[app] == ec
		s.mu.Unlock()
		if !still {
			ec.wmu.Unlock()
			continue
		}
		err := ec.conn.Write(ctx, websocket.MessageText, data)
		ec.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("aritest: sending to %q: %w", app, err)
		}
		return nil
	}
}

// fill adds "application" and "timestamp" to a JSON object that lacks them,
// without touching the rest of its bytes (Asterisk's key order included).
// Anything else is returned unchanged.
func fill(data []byte, app string, now time.Time) []byte {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil || fields == nil {
		return data
	}
	var add []byte
	if _, ok := fields["timestamp"]; !ok {
		add = fmt.Appendf(add, `,"timestamp":%q`, now.Format(timeLayout))
	}
	if _, ok := fields["application"]; !ok {
		b, _ := json.Marshal(app)
		add = fmt.Appendf(add, `,"application":%s`, b)
	}
	if add == nil {
		return data
	}
	trimmed := bytes.TrimRight(data, " \t\r\n")
	body := trimmed[:len(trimmed)-1] // without the closing brace
	if len(fields) == 0 {
		add = add[1:] // no comma after "{"
	}
	out := make([]byte, 0, len(data)+len(add)+1)
	out = append(out, body...)
	out = append(out, add...)
	return append(out, '}')
}

// Drop cuts the socket that holds app abruptly, without a close frame, as a
// network failure or an Asterisk crash would. The client sees a read error.
func (s *Server) Drop(app string) {
	s.mu.Lock()
	ec := s.owner[app]
	if ec != nil {
		s.releaseLocked(ec)
		s.notifyLocked()
	}
	s.mu.Unlock()
	if ec != nil {
		ec.conn.CloseNow()
	}
}

// RefuseConnections makes every following event socket request fail with
// that HTTP status (503, as an Asterisk not yet booted; 401; 403 …) and a
// {"message"} body, until RefuseConnections(0). Sockets already open stay.
func (s *Server) RefuseConnections(status int) {
	s.mu.Lock()
	s.refuse = status
	s.mu.Unlock()
}

// StopPongs makes the sockets of app stop answering the client's pings, as
// a hung Asterisk or a half-open connection would, until ResumePongs.
// Events are still delivered.
func (s *Server) StopPongs(app string) {
	s.mu.Lock()
	s.noPongs[app] = true
	s.mu.Unlock()
}

// ResumePongs undoes StopPongs.
func (s *Server) ResumePongs(app string) {
	s.mu.Lock()
	delete(s.noPongs, app)
	s.mu.Unlock()
}
