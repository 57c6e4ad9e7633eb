package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ConsumerBackend is what the durable consumer endpoints ask of the
// server: GET /consumers, POST /consumers/{name}/reset and
// DELETE /consumers/{name}. A Backend that implements it serves them.
type ConsumerBackend interface {
	// ListConsumers returns every consumer, by name, with its lag.
	ListConsumers(ctx context.Context) ([]ConsumerStatus, error)
	// ResetConsumer sets a consumer's position and frees it; an error
	// wrapping ErrNoConsumer when there is none by that name.
	ResetConsumer(ctx context.Context, name string, position int64) (ConsumerStatus, error)
	// DeleteConsumer removes a consumer; an error wrapping ErrNoConsumer
	// when there is none by that name.
	DeleteConsumer(ctx context.Context, name string) error
}

// ErrNoConsumer: no durable consumer has that name (404).
var ErrNoConsumer = errors.New("no such consumer")

// ConsumerStatus is one durable consumer as the admin listener shows it.
type ConsumerStatus struct {
	Name string `json:"name"`
	// Query is the consumer's query, as JSON.
	Query json.RawMessage `json:"query"`
	// Position is the key of the last row the consumer accepted.
	Position int64 `json:"position"`
	// Held is set while a stream holds the consumer; Holder and Server
	// name that stream and its server (or the last ones, once the lease
	// ran out), HeldUntil the end of its lease.
	Held      bool       `json:"held"`
	Holder    string     `json:"holder"`
	Server    string     `json:"server"`
	HeldUntil *time.Time `json:"held_until"`
	UpdatedAt time.Time  `json:"updated_at"`
	// Newest is the key of the newest row of the query (0: none), Lag the
	// rows after Position, counted up to a bound (LagCapped: more).
	Newest    int64 `json:"newest"`
	Lag       int64 `json:"lag"`
	LagCapped bool  `json:"lag_capped"`
	// LagError says why Newest and Lag are unknown (they are then 0).
	LagError string `json:"lag_error,omitempty"`
}

// consumerTimeout bounds one consumer request: a listing counts every
// consumer's lag.
const consumerTimeout = 30 * time.Second

// consumerRoutes adds the consumer endpoints to mux if b serves them.
func consumerRoutes(mux *http.ServeMux, b Backend, logger *slog.Logger) {
	cb, ok := b.(ConsumerBackend)
	if !ok {
		return
	}
	failed := func(w http.ResponseWriter, what, name string, err error) {
		if errors.Is(err, ErrNoConsumer) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no consumer named " + name})
			return
		}
		logger.Warn("admin: "+what+" failed", slog.String("consumer", name), slog.Any("err", err))
		// The admin listener is the operators': the cause is theirs to see.
		http.Error(w, "could not "+what+": "+err.Error(), http.StatusServiceUnavailable)
	}
	mux.HandleFunc("GET /consumers", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), consumerTimeout)
		defer cancel()
		list, err := cb.ListConsumers(ctx)
		if err != nil {
			failed(w, "list the consumers", "", err)
			return
		}
		if list == nil {
			list = []ConsumerStatus{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"server": b.ServerID(), "consumers": list})
	})
	mux.HandleFunc("POST /consumers/{name}/reset", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var body struct {
			Position *int64 `json:"position"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, `want a body of {"position": N} or none: `+err.Error(), http.StatusBadRequest)
			return
		}
		var position int64
		if body.Position != nil {
			position = *body.Position
		}
		if position < 0 {
			http.Error(w, "position must not be negative", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), consumerTimeout)
		defer cancel()
		status, err := cb.ResetConsumer(ctx, name, position)
		if err != nil {
			failed(w, "reset the consumer", name, err)
			return
		}
		logger.Info("admin: consumer reset", slog.String("consumer", name), slog.Int64("position", position))
		writeJSON(w, http.StatusOK, status)
	})
	mux.HandleFunc("DELETE /consumers/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ctx, cancel := context.WithTimeout(r.Context(), consumerTimeout)
		defer cancel()
		if err := cb.DeleteConsumer(ctx, name); err != nil {
			failed(w, "delete the consumer", name, err)
			return
		}
		logger.Info("admin: consumer deleted", slog.String("consumer", name))
		w.WriteHeader(http.StatusNoContent)
	})
}

// QueryJSON is a stored query as ConsumerStatus.Query shows it: as it is
// when it is JSON (queries are stored as their canonical JSON), else as a
// JSON string of it (a row an operator edited by hand).
func QueryJSON(query string) json.RawMessage {
	if json.Valid([]byte(query)) {
		return json.RawMessage(strings.TrimSpace(query))
	}
	b, _ := json.Marshal(query)
	return b
}
