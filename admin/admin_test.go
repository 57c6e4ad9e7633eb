package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/supervision"
)

type backend struct{ reg *supervision.Registry }

func (b backend) Actors(f supervision.Filter, offset, limit int) ([]supervision.Entry, int) {
	return b.reg.List(f, offset, limit)
}
func (backend) StopActor(context.Context, string) (bool, error)      { return false, nil }
func (backend) Ready(context.Context) error                          { return nil }
func (backend) ServerID() string                                     { return "test" }
func (backend) Replicas(context.Context) ([]replicas.Replica, error) { return nil, nil }

// With a token set, every endpoint but /healthz and /readyz wants it: as a
// bearer token, as the password of Basic authentication, or as the
// access_token parameter.
func TestEveryEndpointWantsTheToken(t *testing.T) {
	t.Parallel()
	reg := supervision.NewRegistry()
	reg.Add("router", "", "router", "", "running")
	ts := httptest.NewServer(admin.Handler(backend{reg}, prometheus.NewRegistry(), "s3cret", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	endpoints := []struct {
		method, path string
		open         int // status with the token
	}{
		{"GET", "/actors", 200},
		{"GET", "/admin/actors", 200},
		{"GET", "/metrics", 200},
		{"POST", "/actors/stream:x/stop", 404},
		{"GET", "/nothing-here", 404},
	}
	credentials := []struct {
		name string
		set  func(*http.Request)
		ok   bool
	}{
		{"none", func(*http.Request) {}, false},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, true},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cre") }, false},
		{"basic", func(r *http.Request) { r.SetBasicAuth("anyone", "s3cret") }, true},
		{"wrong basic", func(r *http.Request) { r.SetBasicAuth("s3cret", "") }, false},
		{"parameter", func(r *http.Request) { r.URL.RawQuery = "access_token=s3cret" }, true},
	}
	for _, e := range endpoints {
		for _, c := range credentials {
			t.Run(e.method+" "+e.path+" "+c.name, func(t *testing.T) {
				req, _ := http.NewRequest(e.method, ts.URL+e.path, nil)
				c.set(req)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				want := http.StatusUnauthorized
				if c.ok {
					want = e.open
				}
				if res.StatusCode != want {
					t.Fatalf("status %d, want %d", res.StatusCode, want)
				}
			})
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s without the token: %d, want 200", path, res.StatusCode)
		}
	}
}
