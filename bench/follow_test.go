package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The follow scenario delivers every event to every follower once, in
// order, and lets every follower go with "end".
func TestFollowScenarioDeliversEveryEventOnceInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := Spec{Name: "follow", Kind: KindFollow, Streams: 20, Window: 8, Events: 3, EventRate: 20, MaxP99: time.Minute}
	r, err := Run(ctx, tinyConfig(DriverClient, spec))
	if err != nil {
		t.Fatal(err)
	}
	s := scenario(t, r, "follow")
	f := s.Follow
	if f == nil || f.Events != 3 || f.Deliveries != 20*3 || f.Missing != 0 || f.Repeated != 0 || f.OutOfOrder != 0 ||
		f.Unexpected != 0 || f.Errors != 0 || f.Exact != 20 || f.Released != 20 || f.Connections != followConns {
		t.Fatalf("summary %+v, want 60 deliveries, each follower's three once and in order, all 20 released", f)
	}
	if f.RSSBefore <= 0 || f.RSSIdle <= 0 || f.MySQLOpenIdle < 0 {
		t.Errorf("idle measures %+v", f)
	}
	if s.Server == nil || s.Server.Persists != 3 || s.Server.Latency == nil || s.Server.Latency.Count != 60 {
		t.Fatalf("measure %+v", s.Server)
	}
	var names []string
	for _, fig := range r.Figures {
		if fig.Scenario == "follow" {
			names = append(names, fig.Name)
			if fig.Name == "commit→delivery p99" && (fig.Met == nil || !*fig.Met) {
				t.Errorf("p99 figure %+v: want met against a one-minute target", fig)
			}
		}
	}
	want := "commit→delivery p99,commit→delivery p50,deliveries,MySQL connections in use while idle,RSS per idle follower"
	if strings.Join(names, ",") != want {
		t.Errorf("figures %v, want %s", names, want)
	}
}

// summarize counts what is wrong with each follower's deliveries.
func TestFollowSummaryCountsRepeatsAndDisorder(t *testing.T) {
	commits := map[int64]int64{10: 1000, 11: 2000, 12: 3000}
	order := []int64{10, 11, 12}
	good := &follower{channel: "a", recv: []delivery{{10, 1500}, {11, 2500}, {12, 3500}}}
	twice := &follower{channel: "b", recv: []delivery{{10, 1500}, {10, 1600}, {11, 2500}, {12, 3500}}}
	swapped := &follower{channel: "c", recv: []delivery{{11, 2500}, {10, 2600}, {99, 2700}}}
	failed := &follower{channel: "d", err: "d: the server ended the follow: \"timeout\""}
	p := &followerPool{channels: []string{"a", "b", "c", "d"}, conns: []*followConn{
		{followers: map[string]*follower{"a": good, "b": twice}},
		{followers: map[string]*follower{"c": swapped, "d": failed}},
	}}
	var sum FollowSummary
	p.summarize(&sum, commits, order)
	if sum.Deliveries != 3+3+2 || sum.Repeated != 1 || sum.OutOfOrder != 1 || sum.Unexpected != 1 || sum.Missing != 12-8 ||
		sum.Errors != 1 || sum.Exact != 1 || sum.FirstError == "" {
		t.Fatalf("summary %+v", sum)
	}
}

func TestRowID(t *testing.T) {
	for row, want := range map[string]int64{
		`{"timestamp":"2024-01-01 00:00:00.000000","pid":"p","domain":"d","name":"n","data":{"id":5},"id":42}`: 42,
		`{"id":7}`: 7,
	} {
		if got, ok := rowID(row); !ok || got != want {
			t.Errorf("rowID(%s) = %d, %v; want %d", row, got, ok, want)
		}
	}
	if _, ok := rowID(`{"pid":"p"}`); ok {
		t.Error("a row without an id has one")
	}
}

func TestFollowSpecValidation(t *testing.T) {
	cfg := tinyConfig(DriverClient, Spec{Name: "follow", Kind: KindFollow, Streams: 1, Events: 1, EventRate: 1})
	if err := (&cfg).validate(); err != nil {
		t.Fatal(err)
	}
	bad := tinyConfig(DriverClient, Spec{Name: "follow", Kind: KindFollow, Streams: 0, Events: 1, EventRate: 1})
	if err := (&bad).validate(); err == nil || !strings.Contains(err.Error(), "streams, events and event rate must be positive") {
		t.Fatalf("validate: %v", err)
	}
}
