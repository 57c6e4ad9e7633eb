package gateway

import (
	"net/http"
)

// Handler is the gateway's HTTP interface: the API (behind the token
// check) and the web page (open, since a browser cannot send a token with
// a navigation).
func (g *Gateway) Handler() http.Handler {
	fail := func(w http.ResponseWriter, err error) { writeError(w, g.logger, err) }
	// Each route checks the token itself, so that its requests are counted
	// under its own pattern, refused ones too.
	api := http.NewServeMux()
	// The per-subject limits come after the token check, so that a bad
	// token gets 401 whatever its subject holds.
	for _, r := range []struct {
		pattern string
		kind    routeKind
		handler http.HandlerFunc
	}{
		{"POST /events", kindRequest, g.postEvents},
		{"GET /events", kindStream, g.getEvents},
		{"POST /sessions", kindRequest, g.createSession},
		{"GET /sessions/{id}/stream", kindStream, g.sessionStream},
		{"POST /sessions/{id}/listen", kindRequest, g.listen},
		{"POST /sessions/{id}/unlisten", kindRequest, g.unlisten},
		{"POST /sessions/{id}/tasks", kindRequest, g.submitTask},
		{"DELETE /sessions/{id}/tasks/{task}", kindRequest, g.cancelTask},
		{"POST /sessions/{id}/disconnect", kindRequest, g.disconnect},
		{"DELETE /sessions/{id}", kindRequest, g.disconnect},
	} {
		api.Handle(r.pattern, g.deps.Metrics.InstrumentRoute(r.pattern, g.auth.middleware(g.adm.subject(r.kind, r.handler), fail)))
	}

	mux := http.NewServeMux()
	for _, pattern := range []string{"/events", "/sessions", "/sessions/"} {
		mux.Handle(pattern, api)
	}
	if page := webHandler(); page != nil {
		mux.Handle("GET /{$}", page)
		mux.Handle("GET /client.js", page)
		mux.Handle("GET /static/", page)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, notFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	// The global cap is first and cheap: past it nothing is parsed.
	return g.adm.global(cors(g.cfg.CORSOrigins, g.refuseWhileClosing(mux, fail), fail))
}

// refuseWhileClosing answers 503 once shutdown began.
func (g *Gateway) refuseWhileClosing(next http.Handler, fail func(http.ResponseWriter, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closing.Load() {
			fail(w, unavailable("the server is shutting down"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
