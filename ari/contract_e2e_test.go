//go:build e2e

package ari_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deflectd/deflectd/ari"
)

// The contract test: every method, path and query parameter the client
// sends exists in the Swagger api-docs of the Asterisk installed in the
// sandbox, read at test time. Every REST method of *ari.Client must be
// exercised here, so a new method cannot skip the check.

// swaggerAPI is the part of a Swagger 1.1/1.2 resource file the test reads.
type swaggerAPI struct {
	APIs []struct {
		Path       string `json:"path"`
		Operations []struct {
			HTTPMethod string `json:"httpMethod"`
			Nickname   string `json:"nickname"`
			Parameters []struct {
				Name      string `json:"name"`
				ParamType string `json:"paramType"`
			} `json:"parameters"`
		} `json:"operations"`
	} `json:"apis"`
}

type operation struct {
	path   string // e.g. /channels/{channelId}/answer
	method string
	query  map[string]bool
	body   map[string]bool
}

func loadSwagger(t *testing.T, dir string) []operation {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Swagger files in %s (%v)", dir, err)
	}
	var ops []operation
	for _, f := range files {
		if filepath.Base(f) == "resources.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc swaggerAPI
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, api := range doc.APIs {
			for _, op := range api.Operations {
				o := operation{path: api.Path, method: op.HTTPMethod, query: map[string]bool{}, body: map[string]bool{}}
				for _, p := range op.Parameters {
					switch p.ParamType {
					case "query":
						o.query[p.Name] = true
					case "body":
						o.body[p.Name] = true
					}
				}
				ops = append(ops, o)
			}
		}
	}
	return ops
}

// match finds the operation of a request path; literal segments beat
// {parameters}, so /channels/externalMedia is not /channels/{channelId}.
func match(ops []operation, method, path string) (operation, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestScore := operation{}, -1
	for _, op := range ops {
		if op.method != method {
			continue
		}
		tsegs := strings.Split(strings.Trim(op.path, "/"), "/")
		if len(tsegs) != len(segs) {
			continue
		}
		score := 0
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") {
				continue
			}
			if ts != segs[i] {
				score = -1
				break
			}
			score++
		}
		if score > bestScore {
			best, bestScore = op, score
		}
	}
	return best, bestScore >= 0
}

type recorded struct {
	method, path string
	query        []string
	body         []string
}

func TestE2EContract(t *testing.T) {
	sb := startSandbox(t)
	ops := loadSwagger(t, sb.APIDocsDir())

	var (
		mu       sync.Mutex
		reqs     []recorded
		dialed   = make(chan struct{})
		dialOnce sync.Once
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: strings.TrimPrefix(r.URL.Path, "/ari")}
		for k := range r.URL.Query() {
			rec.query = append(rec.query, k)
		}
		if r.Body != nil {
			var body map[string]json.RawMessage
			if json.NewDecoder(r.Body).Decode(&body) == nil {
				for k := range body {
					rec.body = append(rec.body, k)
				}
			}
		}
		mu.Lock()
		reqs = append(reqs, rec)
		mu.Unlock()
		if rec.path == "/events" {
			dialOnce.Do(func() { close(dialed) })
			http.Error(w, `{"message":"no websocket here"}`, http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	c, err := ari.New(ari.Options{URL: srv.URL + "/ari", Username: "u", Password: "p", Application: app, SubscribeAll: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	full := ari.PlayRequest{Media: []string{"sound:a", "sound:b"}, Lang: "es", PlaybackID: "pb1", Offset: time.Second, Skip: 2 * time.Second}
	calls := map[string]func() error{
		"ListChannels": func() error { _, err := c.ListChannels(ctx); return err },
		"GetChannel":   func() error { _, err := c.GetChannel(ctx, "c1"); return err },
		"Answer":       func() error { return c.Answer(ctx, "c1") },
		"Ring":         func() error { return c.Ring(ctx, "c1") },
		"StopRinging":  func() error { return c.StopRinging(ctx, "c1") },
		"Hangup":       func() error { return c.Hangup(ctx, "c1", ari.HangupBusy) },
		"Continue": func() error {
			return c.Continue(ctx, "c1", ari.ContinueRequest{Context: "x", Extension: "s", Priority: 2, Label: "l"})
		},
		"Move": func() error { return c.Move(ctx, "c1", "other", "a,b") },
		"SendDTMF": func() error {
			return c.SendDTMF(ctx, "c1", ari.DTMFRequest{DTMF: "12", Before: 1, Between: 1, Duration: 1, After: 1})
		},
		"Play": func() error {
			if _, err := c.Play(ctx, "c1", full); err != nil {
				return err
			}
			_, err := c.Play(ctx, "c1", ari.PlayRequest{Media: []string{"sound:a"}})
			return err
		},
		"GetPlayback":     func() error { _, err := c.GetPlayback(ctx, "pb1"); return err },
		"StopPlayback":    func() error { return c.StopPlayback(ctx, "pb1") },
		"ControlPlayback": func() error { return c.ControlPlayback(ctx, "pb1", ari.PlaybackPause) },
		"StartMOH":        func() error { return c.StartMOH(ctx, "c1", "default") },
		"StopMOH":         func() error { return c.StopMOH(ctx, "c1") },
		"GetVariable":     func() error { _, err := c.GetVariable(ctx, "c1", "QUEUE_MEMBER(sales,logged)"); return err },
		"SetVariable":     func() error { return c.SetVariable(ctx, "c1", "X", "1") },
		"Originate": func() error {
			_, err := c.Originate(ctx, ari.OriginateRequest{
				Endpoint: "Local/sales@queue-entry/n", AppArgs: "qproxy,c1", CallerID: "A <1>", Timeout: time.Minute,
				ChannelID: "c1-q1", OtherChannelID: "c1-q2", Originator: "c1", Formats: "ulaw",
				Variables: map[string]string{"A": "1"},
			})
			if err != nil {
				return err
			}
			_, err = c.Originate(ctx, ari.OriginateRequest{Endpoint: "PJSIP/agent1", Extension: "s", Context: "x", Priority: 1, Label: "l"})
			return err
		},
		"CreateBridge": func() error {
			_, err := c.CreateBridge(ctx, ari.BridgeRequest{ID: "b1", Type: "mixing,dtmf_events", Name: "n"})
			return err
		},
		"ListBridges":   func() error { _, err := c.ListBridges(ctx); return err },
		"GetBridge":     func() error { _, err := c.GetBridge(ctx, "b1"); return err },
		"DestroyBridge": func() error { return c.DestroyBridge(ctx, "b1") },
		"AddChannel": func() error {
			return c.AddChannel(ctx, "b1", ari.AddChannelRequest{Channels: []string{"c1", "c2"}, Role: "r", AbsorbDTMF: true, Mute: true})
		},
		"RemoveChannel":      func() error { return c.RemoveChannel(ctx, "b1", "c1") },
		"PlayOnBridge":       func() error { _, err := c.PlayOnBridge(ctx, "b1", full); return err },
		"StartBridgeMOH":     func() error { return c.StartBridgeMOH(ctx, "b1", "default") },
		"StopBridgeMOH":      func() error { return c.StopBridgeMOH(ctx, "b1") },
		"GetApplication":     func() error { _, err := c.GetApplication(ctx); return err },
		"Subscribe":          func() error { _, err := c.Subscribe(ctx, ari.ChannelSource("c1"), ari.BridgeSource("b1")); return err },
		"Unsubscribe":        func() error { _, err := c.Unsubscribe(ctx, ari.EndpointSource("PJSIP", "agent1")); return err },
		"SubscribeChannel":   func() error { return c.SubscribeChannel(ctx, "c1") },
		"UnsubscribeChannel": func() error { return c.UnsubscribeChannel(ctx, "c1") },
		"Ping":               func() error { _, err := c.Ping(ctx); return err },
		"Info":               func() error { _, err := c.Info(ctx); return err },
		"Snapshot":           func() error { _, err := c.Snapshot(ctx); return err },
	}

	// Every exported method that takes a context must be in the table,
	// except the event stream (checked below through its URL).
	ct := reflect.TypeOf(c)
	ctxType := reflect.TypeFor[context.Context]()
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Type.NumIn() < 2 || m.Type.In(1) != ctxType || m.Name == "Run" || m.Name == "Next" {
			continue
		}
		if _, ok := calls[m.Name]; !ok {
			t.Errorf("(*ari.Client).%s is not exercised by the contract test", m.Name)
		}
	}
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := calls[name](); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The event websocket: one dial attempt, then stop.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	select {
	case <-dialed:
	case err := <-done:
		t.Fatalf("Run() = %v before dialing", err)
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) < len(calls) {
		t.Fatalf("recorded %d requests, want at least %d", len(reqs), len(calls))
	}
	for _, r := range reqs {
		op, ok := match(ops, r.method, r.path)
		if !ok {
			t.Errorf("%s %s: no such operation in Asterisk's api-docs", r.method, r.path)
			continue
		}
		for _, q := range r.query {
			if !op.query[q] && q != "api_key" {
				t.Errorf("%s %s: query parameter %q is not in %s %s", r.method, r.path, q, op.method, op.path)
			}
		}
		for _, b := range r.body {
			if !op.body[b] {
				t.Errorf("%s %s: body field %q is not in %s %s", r.method, r.path, b, op.method, op.path)
			}
		}
	}
	t.Logf("checked %d requests of %d client methods against %d operations", len(reqs), len(calls), len(ops))
}
