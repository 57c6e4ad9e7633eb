package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The sse scenario counts every event at every subscriber, and says when
// some are missing.
func TestSSEScenarioCountsEveryDelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := Spec{Name: "sse", Kind: KindSSE, Subscribers: 20, Events: 6, EventRate: 50, MaxP99: time.Minute}
	r, err := Run(ctx, tinyConfig(DriverClient, spec))
	if err != nil {
		t.Fatal(err)
	}
	s := scenario(t, r, "sse")
	if s.SSE == nil || s.SSE.Deliveries != 20*6 || s.SSE.Missing != 0 || s.SSE.Errors != 0 || s.SSE.Events != 6 {
		t.Fatalf("summary %+v, want 120 deliveries and none missing", s.SSE)
	}
	if s.Server == nil || s.Server.Persists != 6 || s.Server.Latency == nil || s.Server.Latency.Count != 120 {
		t.Fatalf("measure %+v", s.Server)
	}
	var names []string
	for _, f := range r.Figures {
		if f.Scenario == "sse" {
			names = append(names, f.Name)
			if f.Name == "commit→delivery p99" && (f.Met == nil || !*f.Met) {
				t.Errorf("p99 figure %+v: want met against a one-minute target", f)
			}
		}
	}
	if strings.Join(names, ",") != "commit→delivery p99,commit→delivery p50,deliveries" {
		t.Errorf("figures %v", names)
	}
}

func TestSSESpecValidation(t *testing.T) {
	cfg := tinyConfig(DriverClient, Spec{Name: "sse", Kind: KindSSE, Subscribers: 1, Events: 1, EventRate: 1})
	if err := (&cfg).validate(); err != nil {
		t.Fatal(err)
	}
	bad := tinyConfig(DriverClient, Spec{Name: "sse", Kind: KindSSE, Subscribers: 0, Events: 1, EventRate: 1})
	if err := (&bad).validate(); err == nil || !strings.Contains(err.Error(), "subscribers, events and event rate must be positive") {
		t.Fatalf("validate: %v", err)
	}
}
