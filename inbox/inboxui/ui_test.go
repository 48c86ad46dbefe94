package inboxui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/deflectd/deflectd/inbox/inboxui"
)

// The page and its assets are served from the binary with the headers
// that keep them from being framed, sniffed or extended with inline or
// foreign script; any other path under /inbox/ is the page (the client
// routes), and a write is refused.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(inboxui.Handler())
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{"GET", "/inbox/", 200, "text/html", `<script type="module" src="/inbox/assets/app.js">`},
		{"GET", "/inbox/c/some-chat", 200, "text/html", `<div id="app">`},
		{"GET", "/inbox/assets/app.js", 200, "text/javascript", "vendor/htm-preact-standalone.module.js"},
		{"GET", "/inbox/assets/style.css", 200, "text/css", "--accent"},
		{"GET", "/inbox/assets/vendor/htm-preact-standalone.module.js", 200, "text/javascript", "useState"},
		{"GET", "/inbox/assets/nothing.js", 404, "", ""},
		{"POST", "/inbox/", 405, "", ""},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			continue
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s %s: Content-Security-Policy %q", tt.method, tt.path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s %s: headers %v", tt.method, tt.path, h)
		}
		if tt.status != 200 {
			continue
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %s", tt.method, tt.path, ct, tt.contentType)
		}
		if !strings.Contains(string(body), tt.contains) {
			t.Errorf("%s %s: body lacks %q", tt.method, tt.path, tt.contains)
		}
	}
}
