package actors

import "sync"

// Readers runs the streams' page reads on a fixed set of goroutines, as
// many as the MySQL pool has connections: no more reads can run at once
// anyway. A goroutine per read started from a small stack and grew it
// through the driver and the encoder every time (at 1,000 streams, copying
// and allocating stacks took 2.8% and 4.8% of the bench process's CPU; 0.7%
// and 1.1% with readers, which keep theirs).
//
// Run never blocks the actor that calls it: a read that finds the queue
// full runs on a goroutine of its own, as before.
type Readers struct {
	jobs chan func()
	// whole are the reads of results that cannot be paged: long ones,
	// run by half the readers at most, so that pages always find one.
	whole chan func()
	wg    sync.WaitGroup

	mu      sync.RWMutex // held for reading while queueing; for writing by Close
	closed  bool
	waiting sync.WaitGroup // goroutines waiting for room in whole
}

// readersQueue is how many reads may wait for a reader before Run starts
// goroutines for the rest.
const readersQueue = 4096

// NewReaders starts n reader goroutines (at least 1) for pages, and n/2
// (at least 1) for whole results.
func NewReaders(n int) *Readers {
	r := &Readers{jobs: make(chan func(), readersQueue), whole: make(chan func(), readersQueue)}
	for range max(n, 1) {
		r.wg.Go(func() {
			for job := range r.jobs {
				job()
			}
		})
	}
	for range max(n/2, 1) {
		r.wg.Go(func() {
			for job := range r.whole {
				job()
			}
		})
	}
	return r
}

// RunWhole queues the read of a whole result. It never blocks: when the
// queue is full, a goroutine waits for room in it. After Close, read runs
// on a goroutine of its own.
func (r *Readers) RunWhole(read func()) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		go read()
		return
	}
	select {
	case r.whole <- read:
	default:
		r.waiting.Add(1)
		go func() {
			defer r.waiting.Done()
			r.whole <- read
		}()
	}
}

// Run queues read. After Close, or when the queue is full, it runs read on
// a goroutine of its own.
func (r *Readers) Run(read func()) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.closed {
		select {
		case r.jobs <- read:
			return
		default:
		}
	}
	go read()
}

// Close lets the readers finish what is queued and waits for them.
func (r *Readers) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.waiting.Wait() // whole reads waiting for room are in the queue
	close(r.jobs)
	close(r.whole)
	r.wg.Wait()
}
