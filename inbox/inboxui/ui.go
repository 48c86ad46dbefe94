// Package inboxui is the inbox's web UI for agents and supervisors,
// served by deflectd under /inbox/. It is a client of the inbox's JSON API
// and live event stream (package inboxhttp) and nothing more: every rule
// and every authorization check lives behind that API, so the UI cannot
// show or do what the API refuses.
//
// The page is a small Preact application written with htm (tagged
// templates instead of JSX), vendored as one ES module file
// (assets/vendor, with its version and licenses): no build step, so a
// fresh clone builds with `go build` alone, and nothing is loaded from a
// CDN, since contact centers run this on closed networks. The assets are
// embedded with go:embed. The pages carry a Content-Security-Policy that
// allows no inline script and no other origin.
package inboxui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Base is the path the UI is served under.
const Base = "/inbox/"

//go:embed assets
var assets embed.FS

// Handler serves the UI under Base: the application's page for Base
// itself and for any path that is not an asset (the page routes on the
// client), and the assets under Base+"assets/".
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	files := http.StripPrefix(Base+"assets/", http.FileServerFS(sub))
	page, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasPrefix(r.URL.Path, Base+"assets/") {
			// Assets change with the binary; a reload after an upgrade
			// must not mix versions.
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(page)
	})
}

// secure sets the headers every page and asset of the UI carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}
