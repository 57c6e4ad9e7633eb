package gateway

import (
	"net/http"
)

// Handler is the gateway's HTTP interface: the API (behind the token
// check) and the web page (open, since a browser cannot send a token with
// a navigation).
func (g *Gateway) Handler() http.Handler {
	fail := func(w http.ResponseWriter, err error) { writeError(w, g.logger, err) }
	api := http.NewServeMux()
	api.HandleFunc("POST /events", g.postEvents)
	api.HandleFunc("GET /events", g.getEvents)
	api.HandleFunc("POST /sessions", g.createSession)
	api.HandleFunc("GET /sessions/{id}/stream", g.sessionStream)
	api.HandleFunc("POST /sessions/{id}/listen", g.listen)
	api.HandleFunc("POST /sessions/{id}/unlisten", g.unlisten)
	api.HandleFunc("POST /sessions/{id}/tasks", g.submitTask)
	api.HandleFunc("DELETE /sessions/{id}/tasks/{task}", g.cancelTask)
	api.HandleFunc("POST /sessions/{id}/disconnect", g.disconnect)
	api.HandleFunc("DELETE /sessions/{id}", g.disconnect)

	mux := http.NewServeMux()
	authed := g.auth.middleware(api, fail)
	for _, pattern := range []string{"/events", "/sessions", "/sessions/"} {
		mux.Handle(pattern, authed)
	}
	if page := webHandler(); page != nil {
		mux.Handle("GET /{$}", page)
		mux.Handle("GET /client.js", page)
		mux.Handle("GET /static/", page)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, notFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return limitConnections(g.cfg.MaxConnections, cors(g.cfg.CORSOrigins, g.refuseWhileClosing(mux, fail), fail), fail)
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
