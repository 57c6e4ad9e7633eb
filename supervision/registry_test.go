package supervision

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRegistryListFiltersAndPages(t *testing.T) {
	r := NewRegistry()
	r.Add("router", "", "router", "", "running")
	for i := range 5 {
		l := r.Add(fmt.Sprintf("stream:c%d", i), "router", "stream", fmt.Sprintf("c%d", i), "waiting")
		l.AddRows(int64(i))
	}
	r.Add("persist:p", "router", "persist", "p", "committing")
	tests := []struct {
		name          string
		filter        Filter
		offset, limit int
		names         string
		total         int
	}{
		{"all sorted", Filter{}, 0, 0, "[persist:p router stream:c0 stream:c1 stream:c2 stream:c3 stream:c4]", 7},
		{"by kind, paged", Filter{Kind: "stream"}, 1, 2, "[stream:c1 stream:c2]", 5},
		{"by state", Filter{State: "committing"}, 0, 0, "[persist:p]", 1},
		{"by channel prefix", Filter{ChannelPrefix: "c3"}, 0, 0, "[stream:c3]", 1},
		{"offset past the end", Filter{}, 10, 5, "[]", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, total := r.List(tt.filter, tt.offset, tt.limit)
			names := make([]string, len(entries))
			for i, e := range entries {
				names[i] = e.Name
			}
			if fmt.Sprint(names) != tt.names || total != tt.total {
				t.Fatalf("got %v of %d, want %s of %d", names, total, tt.names, tt.total)
			}
		})
	}
}

func TestLiveSnapshot(t *testing.T) {
	r := NewRegistry()
	l := r.Add("stream:x", "router", "stream", "x", "reading")
	deadline := time.Now().Add(time.Second)
	l.SetState("waiting")
	l.SetFlow(3, 2, deadline)
	l.AddRows(7)
	l.SetError("boom")
	entries, _ := r.List(Filter{}, 0, 0)
	e := entries[0]
	if e.State != "waiting" || e.Credit != 3 || e.Unaccepted != 2 || e.RowsSent != 7 || e.LastError != "boom" ||
		e.Deadline == nil || e.Deadline.UnixNano() != deadline.UnixNano() {
		t.Fatalf("entry %+v", e)
	}
	r.Remove("stream:x")
	if r.Len() != 0 {
		t.Fatal("removed entry still listed")
	}
}

func TestNilRegistryAndLiveAreSafe(t *testing.T) {
	var r *Registry
	l := r.Add("a", "", "stream", "", "x")
	l.SetState("y")
	l.AddRows(1)
	l.SetFlow(1, 1, time.Now())
	l.SetError("e")
	r.Remove("a")
	if entries, total := r.List(Filter{}, 0, 0); entries != nil || total != 0 || r.Len() != 0 {
		t.Fatal("nil registry listed something")
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				name := fmt.Sprintf("stream:%d-%d", i, j)
				l := r.Add(name, "router", "stream", name, "waiting")
				l.AddRows(1)
				l.SetState("streaming")
				r.List(Filter{Kind: "stream"}, 0, 10)
				r.Remove(name)
			}
		}()
	}
	wg.Wait()
	if r.Len() != 0 {
		t.Fatalf("%d entries left", r.Len())
	}
}
