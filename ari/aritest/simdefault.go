package aritest

import (
	"context"
	"net/http"
)

// Default answers c with the server's own behaviour, as if no Handle
// override existed: the model's answer, with the model changed. An
// override that extends rather than replaces a route (a simulator that
// originates Local channels and then makes their queue ring) calls it
// first and acts on its answer. The call is not recorded again in Calls.
func (s *Server) Default(ctx context.Context, c Call) (status int, body any) {
	segs, err := splitPath(c.RawPath)
	if err != nil {
		return http.StatusBadRequest, ErrorBody("Invalid path")
	}
	s.mu.Lock()
	var h HandlerFunc
	for _, rt := range s.defaults {
		if p, ok := matchSegs(rt.segs, segs); ok && rt.method == c.Method {
			h, c.Params = rt.h, p
			break
		}
	}
	s.mu.Unlock()
	if h == nil {
		return http.StatusNotFound, ErrorBody("Not found")
	}
	return h(ctx, c)
}
