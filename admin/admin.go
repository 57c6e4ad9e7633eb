// Package admin is the operators' HTTP interface: the live actor tree
// (GET /actors, and a page at /admin/actors), stopping one stream or HTTP
// session (POST /actors/{name}/stop), the servers acting as one (GET /replicas),
// durable consumers (GET /consumers, POST /consumers/{name}/reset,
// DELETE /consumers/{name}), Prometheus metrics (/metrics) and health
// (/healthz, /readyz).
package admin

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eventsource/eventsource/internal/buildinfo"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/supervision"
)

// Backend is what the admin interface asks of the server.
type Backend interface {
	// Actors lists the registry's entries that match.
	Actors(f supervision.Filter, offset, limit int) ([]supervision.Entry, int)
	// StopActor ends the named actor: a stream with "error" on its
	// channel, an HTTP session with "closed" on its stream (an SSE stream
	// with "reconnect"); false when there is no such actor to stop.
	StopActor(ctx context.Context, name string) (bool, error)
	// Ready reports why the server cannot serve now, or nil.
	Ready(ctx context.Context) error
	// ServerID is the server's id among the servers on the same Redis.
	ServerID() string
	// Replicas lists the live servers on the same Redis, this one included.
	Replicas(ctx context.Context) ([]replicas.Replica, error)
}

// Readiness is the body of GET /readyz.
type Readiness struct {
	// Status is "ready" (200) or "not ready" (503).
	Status string `json:"status"`
	// Error says why the server is not ready; empty when it is.
	Error string `json:"error,omitempty"`
	// Version is the server's build, as eventsource version prints it in
	// one word.
	Version string `json:"version"`
}

// MaxPage bounds one page of GET /actors.
const MaxPage = 1000

// Kinds are the kinds of actor the registry holds, which GET /actors may
// filter on: the router and its children (stream, persist: package
// actors), and the HTTP gateway's supervisor and its children (http,
// session, sse: package gateway).
var Kinds = []string{"router", "stream", "persist", "http", "session", "sse"}

//go:embed actors.html
var actorsPage []byte

// Handler serves the admin interface. With a token, every request must
// carry it (see requireToken) except /healthz and /readyz, which
// orchestrators probe without credentials.
func Handler(b Backend, metrics *prometheus.Registry, token string, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	// /readyz answers 200 or 503, which is what probes read, with a JSON
	// body that says which build answered (buildinfo: the version the
	// server logs at start and registers among its replicas) and, when
	// not ready, why.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		version := buildinfo.Read().String()
		if err := b.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, Readiness{Status: "not ready", Error: err.Error(), Version: version})
			return
		}
		writeJSON(w, http.StatusOK, Readiness{Status: "ready", Version: version})
	})

	protected := http.NewServeMux()
	if metrics != nil {
		protected.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	}
	protected.HandleFunc("GET /actors", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		offset, err1 := nonNegative(q.Get("offset"), 0)
		limit, err2 := nonNegative(q.Get("limit"), 100)
		if err := errors.Join(err1, err2); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		// An unknown kind would match nothing: say so rather than list
		// nothing, since it is most likely a typo.
		kind := q.Get("kind")
		if kind != "" && !slices.Contains(Kinds, kind) {
			writeJSON(w, http.StatusBadRequest, map[string]any{
				"error": fmt.Sprintf("unknown kind %q: want one of %s", kind, strings.Join(Kinds, ", ")),
				"kinds": Kinds,
			})
			return
		}
		limit = min(limit, MaxPage)
		entries, total := b.Actors(supervision.Filter{Kind: kind, State: q.Get("state"), ChannelPrefix: q.Get("prefix")}, offset, limit)
		if entries == nil {
			entries = []supervision.Entry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"server": b.ServerID(), "total": total, "offset": offset, "limit": limit, "actors": entries})
	})
	protected.HandleFunc("GET /replicas", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		list, err := b.Replicas(ctx)
		if err != nil {
			logger.Warn("admin: list replicas failed", slog.Any("err", err))
			http.Error(w, "could not read the servers from Redis", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"server": b.ServerID(), "replicas": list})
	})
	// Names hold the channel, which may contain slashes: match the rest of
	// the path and require it to end in /stop.
	protected.HandleFunc("POST /actors/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("rest"), "/stop")
		if !ok || name == "" {
			http.Error(w, "want POST /actors/{name}/stop", http.StatusNotFound)
			return
		}
		stopped, err := b.StopActor(r.Context(), name)
		switch {
		case err != nil:
			logger.Warn("admin: stop actor failed", slog.String("actor", name), slog.Any("err", err))
			http.Error(w, "could not stop "+name, http.StatusInternalServerError)
		case !stopped:
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no running stream or session named " + name})
		default:
			logger.Info("admin: actor stopped", slog.String("actor", name))
			writeJSON(w, http.StatusOK, map[string]any{"stopped": name})
		}
	})
	consumerRoutes(protected, b, logger)
	protected.HandleFunc("GET /admin/actors", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(actorsPage)
	})
	mux.Handle("/", requireToken(token, protected))
	return mux
}

// requireToken lets a request through when it carries the token: as a
// bearer token (the CLI, scripts), as the password of HTTP Basic
// authentication (what a browser asks for when it opens the page), or as
// the access_token parameter (a link to the page). Compared in constant
// time.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	matches := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		_, password, isBasic := r.BasicAuth()
		if isBearer && matches(bearer) || isBasic && matches(password) || matches(r.URL.Query().Get("access_token")) {
			next.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/admin/actors" {
			// A browser asks its user for Basic credentials: any user
			// name, the token as the password.
			w.Header().Set("WWW-Authenticate", `Basic realm="eventsource admin: the token is the password", charset="UTF-8"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventsource admin"`)
		}
		http.Error(w, "unauthorized: this server wants its admin token", http.StatusUnauthorized)
	})
}

func nonNegative(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("offset and limit must be non-negative integers")
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
