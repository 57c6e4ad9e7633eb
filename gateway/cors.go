package gateway

import (
	"net/http"
	"slices"
	"strings"
)

// corsHeaders are the request headers a page may send: tokens,
// EventSource's resume header, JSON bodies, and a post's expected version.
const corsHeaders = "Authorization, Content-Type, Last-Event-ID, If-Match"

// cors answers preflights and marks responses readable by the allowed
// origins. Requests from other origins are not refused (the gateway's own
// page sends Origin on its POSTs too); browsers just keep their responses
// from the page.
func cors(origins []string, next http.Handler, fail func(http.ResponseWriter, error)) http.Handler {
	any := slices.Contains(origins, "*")
	allowed := func(origin string) bool { return any || slices.Contains(origins, origin) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed(origin) {
			if preflight {
				fail(w, forbidden("origin %q is not allowed (--http-cors-origins)", origin))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Set("Access-Control-Allow-Methods", strings.Join([]string{http.MethodGet, http.MethodPost, http.MethodDelete}, ", "))
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
