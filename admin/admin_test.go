package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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

// GET /actors filters on a known kind; an unknown one is a 400 that names
// the kinds there are, not an empty list.
func TestActorsRefusesAnUnknownKind(t *testing.T) {
	t.Parallel()
	reg := supervision.NewRegistry()
	reg.Add("router", "", "router", "", "running")
	reg.Add("session:s1", "http", "session", "s1", "streaming")
	ts := httptest.NewServer(admin.Handler(backend{reg}, nil, "", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	get := func(t *testing.T, query string) (int, map[string]any) {
		t.Helper()
		res, err := http.Get(ts.URL + "/actors?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("the answer is not JSON: %v", err)
		}
		return res.StatusCode, body
	}
	for _, tc := range []struct {
		name, query string
		status      int
		total       float64 // when 200
		errHas      []string
	}{
		{"any kind", "", 200, 2, nil},
		{"router", "kind=router", 200, 1, nil},
		{"session", "kind=session", 200, 1, nil},
		{"a known kind with none running", "kind=sse", 200, 0, nil},
		{"unknown", "kind=bogus", 400, 0, []string{`"bogus"`, "router, stream, persist, http, session, sse"}},
		{"case matters", "kind=Stream", 400, 0, []string{`"Stream"`}},
		{"bad offset", "offset=-1", 400, 0, []string{"non-negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, tc.query)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if status == 200 {
				if body["total"] != tc.total {
					t.Errorf("total %v, want %v", body["total"], tc.total)
				}
				return
			}
			msg, _ := body["error"].(string)
			for _, want := range tc.errHas {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %s", msg, want)
				}
			}
			if strings.HasPrefix(tc.query, "kind=") && !slices.Equal(toStrings(body["kinds"]), admin.Kinds) {
				t.Errorf("kinds %v, want %v", body["kinds"], admin.Kinds)
			}
		})
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
