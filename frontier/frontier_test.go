package frontier

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The frontier's rules, step by step: announcements advance it over
// contiguous ids; a gap holds it for GapWait, then counts as rolled back;
// polled ids nobody announced are reached the same way.
func TestFrontierSteps(t *testing.T) {
	var highest atomic.Int64
	highest.Store(10)
	f := New(Config{GapWait: 100 * time.Millisecond, PollEvery: 20 * time.Millisecond,
		Highest: func(context.Context, string) (int64, error) { return highest.Load(), nil }})
	go f.Run()
	defer f.Close()
	safe := func() int64 {
		s, err := f.Safe(context.Background(), "t")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := safe(); got != 10 {
		t.Fatalf("start: %d, want what is stored (10)", got)
	}
	steps := []struct {
		name   string
		ranges [][2]int64
		want   int64
	}{
		{"contiguous", [][2]int64{{11, 12}}, 12},
		{"already settled", [][2]int64{{5, 12}}, 12},
		{"above a gap", [][2]int64{{15, 20}}, 12},
		{"part of the gap", [][2]int64{{13, 13}}, 13},
		{"the rest of it", [][2]int64{{14, 14}}, 20},
		{"out of order, merged", [][2]int64{{23, 25}, {21, 22}}, 25},
	}
	for _, st := range steps {
		f.Committed("t", st.ranges)
		if got := safe(); got != st.want {
			t.Fatalf("%s: frontier %d, want %d", st.name, got, st.want)
		}
	}

	// A gap nobody fills is given up on after GapWait; a watcher hears it.
	heard := make(chan int64, 1)
	f.Watch("t", 25, func(s int64) { heard <- s })
	start := time.Now()
	f.Committed("t", [][2]int64{{27, 30}})
	select {
	case s := <-heard:
		if s != 30 || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("heard %d after %s: want 30 after the gap wait", s, time.Since(start))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the gap at 26 held the frontier for ever")
	}

	// Rows nobody announced (written by other means) are found by polling.
	f.Watch("t", 30, func(s int64) { heard <- s })
	highest.Store(33)
	select {
	case s := <-heard:
		if s != 33 {
			t.Fatalf("heard %d, want the polled 33", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("polled rows never reached")
	}
	if n := f.Watchers(); n != 0 {
		t.Fatalf("%d watchers left after they were notified", n)
	}
}

func TestInsertRange(t *testing.T) {
	for _, tt := range []struct {
		in   [][2]int64
		add  [2]int64
		want [][2]int64
	}{
		{nil, [2]int64{3, 4}, [][2]int64{{3, 4}}},
		{[][2]int64{{1, 2}}, [2]int64{3, 4}, [][2]int64{{1, 4}}},
		{[][2]int64{{1, 2}, {10, 12}}, [2]int64{5, 6}, [][2]int64{{1, 2}, {5, 6}, {10, 12}}},
		{[][2]int64{{1, 2}, {10, 12}}, [2]int64{2, 11}, [][2]int64{{1, 12}}},
		{[][2]int64{{5, 6}}, [2]int64{1, 2}, [][2]int64{{1, 2}, {5, 6}}},
	} {
		got := insertRange(append([][2]int64(nil), tt.in...), tt.add)
		if len(got) != len(tt.want) {
			t.Fatalf("insert %v into %v = %v, want %v", tt.add, tt.in, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("insert %v into %v = %v, want %v", tt.add, tt.in, got, tt.want)
			}
		}
	}
}
