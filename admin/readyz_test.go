package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/internal/buildinfo"
	"github.com/eventsource/eventsource/supervision"
)

// unready is a backend whose Ready fails.
type unready struct{ backend }

func (unready) Ready(context.Context) error { return errors.New("redis subscriber down") }

// /readyz keeps its status codes and names the build, ready or not.
func TestReadyzVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		backend admin.Backend
		want    admin.Readiness
		code    int
	}{
		{"ready", backend{supervision.NewRegistry()}, admin.Readiness{Status: "ready"}, http.StatusOK},
		{"not ready", unready{backend{supervision.NewRegistry()}}, admin.Readiness{Status: "not ready", Error: "redis subscriber down"}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// With a token: /readyz is probed without one.
			ts := httptest.NewServer(admin.Handler(tt.backend, nil, "s3cret", slog.New(slog.NewTextHandler(io.Discard, nil))))
			t.Cleanup(ts.Close)
			res, err := http.Get(ts.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.code {
				t.Errorf("status %d, want %d", res.StatusCode, tt.code)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got admin.Readiness
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			tt.want.Version = buildinfo.Read().String()
			if got != tt.want || got.Version == "" {
				t.Errorf("body %+v, want %+v", got, tt.want)
			}
		})
	}
}
