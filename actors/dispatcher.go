package actors

import (
	"runtime"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// Pool is the streams' dispatcher: their mailboxes run on a fixed set of
// goroutines. A message never runs its stream on the goroutine that sent
// it (the subscriber's, a publisher's, a reader's), so no sender waits on
// a stream and no stream runs inside another's completion; and no
// goroutine starts per message (a new goroutine per message grew its
// stack through the stream's work every time).
//
// Schedule never blocks: when every worker is busy and the queue is full,
// the mailbox runs on a goroutine of its own, as with protoactor's default
// dispatcher.
type Pool struct {
	jobs       chan func()
	quit       chan struct{}
	once       sync.Once
	throughput int
}

var _ actor.Dispatcher = (*Pool)(nil)

// poolQueue is how many mailboxes may wait for a worker.
const poolQueue = 8192

// NewPool starts workers goroutines (at least 1), which run until Close.
func NewPool(workers, throughput int) *Pool {
	p := &Pool{jobs: make(chan func(), poolQueue), quit: make(chan struct{}), throughput: throughput}
	for range max(workers, 1) {
		go func() {
			for {
				select {
				case job := <-p.jobs:
					job()
				case <-p.quit:
					return
				}
			}
		}()
	}
	return p
}

// NewStreamPool is the dispatcher of a server's streams: four workers per
// CPU, since a stream's Receive, short as it is, may wait on a log write
// or the registry's lock.
func NewStreamPool() *Pool {
	return NewPool(4*runtime.GOMAXPROCS(0), streamThroughput)
}

func (p *Pool) Schedule(fn func()) {
	select {
	case p.jobs <- fn:
	default:
		go fn()
	}
}

func (p *Pool) Throughput() int { return p.throughput }

// Close stops the workers once the actors are stopped; what is scheduled
// later runs on goroutines of its own.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.quit) })
}
