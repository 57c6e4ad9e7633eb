package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReaders(t *testing.T) {
	t.Run("runs every read on its readers", func(t *testing.T) {
		r := NewReaders(3)
		var running, most atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			r.Run(func() {
				defer wg.Done()
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				running.Add(-1)
			})
		}
		wg.Wait()
		r.Close()
		if m := most.Load(); m != 3 {
			t.Fatalf("%d reads ran at once, want the 3 readers", m)
		}
	})
	t.Run("a full queue does not block", func(t *testing.T) {
		r := NewReaders(1)
		release := make(chan struct{})
		var done sync.WaitGroup
		for range readersQueue + 10 { // one running, a full queue, ten more
			done.Add(1)
			r.Run(func() { <-release; done.Done() })
		}
		close(release)
		done.Wait()
		r.Close()
	})
	t.Run("after Close", func(t *testing.T) {
		r := NewReaders(2)
		r.Close()
		r.Close()
		ran := make(chan struct{})
		r.Run(func() { close(ran) })
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("a read run after Close never ran")
		}
	})
}
