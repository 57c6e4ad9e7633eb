package redisbus

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrClosed is reported for publishes after Close.
var ErrClosed = errors.New("publisher closed")

// ErrFull is returned when a worker's queue has no room: nothing was
// queued. Publishing never blocks its caller (an actor); what to do with a
// full queue is the caller's policy.
var ErrFull = errors.New("redis publish queue full")

// ErrAfterFailure answers a PUBLISH dropped because an earlier publication
// of its channel failed on the same connection: sending it would put it
// after a hole, or before a message that may yet be counted as sent. The
// channel's terminal (a script) or a new claim (a command) lifts it.
var ErrAfterFailure = errors.New("redis publish dropped: an earlier message of its channel failed")

// Publisher sends PUBLISH commands through a few workers, each sending
// everything queued for it as one pipeline: one round trip for many rows
// instead of one each, which is where throughput under concurrency comes
// from. A channel always maps to the same worker, so the messages of one
// channel keep their order. On a Redis Cluster each node has its workers,
// and a channel's messages go to the node that serves its route key (the
// key of its claim), where the scripts that end the channel run too: one
// connection to one node, in order.
type Publisher struct {
	opt      *redis.Options
	topo     Topology
	routeKey func(channel string) string
	workers  int
	queueLen int
	logger   *slog.Logger
	wg       sync.WaitGroup

	ob observed
	// eager has a worker write what it found at once, without letting
	// other goroutines queue more first (see lane.work), for the
	// benchmark that weighs the wait.
	eager bool

	mu     sync.RWMutex // held for reading while queueing; for writing by Close and to add a node
	closed bool
	// lanes are the workers of each node, by address; fixed are those of
	// the one node of a single Redis, looked up without a map.
	lanes map[string][]*lane
	fixed []*lane
}

// PublisherOption changes a Publisher.
type PublisherOption func(*Publisher)

// PublisherObservedBy has o hear the workers' connections open and close.
func PublisherObservedBy(o Observer) PublisherOption {
	return func(p *Publisher) { p.ob.o = o }
}

// OnTopology has the publisher follow t, routing each channel by the key
// route gives it (nil: the channel itself), instead of the one Redis of its
// options.
func OnTopology(t Topology, route func(channel string) string) PublisherOption {
	return func(p *Publisher) { p.topo, p.routeKey = t, route }
}

type publication struct {
	channel string
	payload []byte
	done    func(error)
	// counted, when set, hears the PUBLISH's integer reply (how many
	// subscribers got the message) instead of done.
	counted func(int64, error)
	// eval, when set, makes this an EVALSHA (EVAL of the text when
	// evalText) instead of a PUBLISH; cmd, a command of its own.
	eval     *evalCall
	evalText bool
	cmd      *command
}

// evalCall is a script run on a channel's connection: EVALSHA of its sha,
// and EVAL of its text when Redis does not know the script (it restarted).
type evalCall struct {
	script Script
	keys   []string
	args   [][]byte
	done   func(int64, error)
}

// command is any command on a channel's connection; done hears whether the
// reply was null.
type command struct {
	args []string
	done func(null bool, err error)
}

// Script is a Lua script and its SHA-1, which EVALSHA names it by.
type Script struct {
	Text, SHA string
}

// NewScript computes text's SHA-1.
func NewScript(text string) Script {
	sum := sha1.Sum([]byte(text))
	return Script{Text: text, SHA: hex.EncodeToString(sum[:])}
}

// MaxBatch bounds one pipeline.
const MaxBatch = 512

// NewPublisher starts workers workers, per node, with queue slots each;
// its connections are dialed as opt says (address, credentials, client
// name, timeouts). A full queue refuses a publication (ErrFull) rather
// than block: its caller holds on to it.
func NewPublisher(opt *redis.Options, workers, queue int, logger *slog.Logger, opts ...PublisherOption) *Publisher {
	if workers <= 0 {
		workers = 4
	}
	if queue <= 0 {
		queue = 4096
	}
	p := &Publisher{opt: withDefaults(opt), logger: logger, workers: workers, queueLen: queue, ob: observed{role: "publisher"},
		lanes: map[string][]*lane{}}
	for _, o := range opts {
		o(p)
	}
	if p.topo == nil {
		p.topo = SingleNode(p.opt.Addr)
		p.fixed = p.startNode(p.opt.Addr)
	}
	return p
}

// startNode starts the workers of the node at addr; p.mu is held for
// writing, or p is not shared yet.
func (p *Publisher) startNode(addr string) []*lane {
	lanes := make([]*lane, p.workers)
	nodeOpt := *p.opt
	nodeOpt.Addr = addr
	for i := range lanes {
		lanes[i] = &lane{p: p, opt: &nodeOpt, queue: make(chan publication, p.queueLen), retry: make(chan publication, MaxBatch)}
		p.wg.Add(1)
		go lanes[i].work()
	}
	p.lanes[addr] = lanes
	return lanes
}

// queue queues pub for its channel's worker, or returns ErrClosed or
// ErrFull without queueing it (pub is not answered then).
func (p *Publisher) queue(pub publication) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	lanes := p.fixed
	if lanes == nil {
		key := pub.channel
		if p.routeKey != nil {
			key = p.routeKey(pub.channel)
		}
		addr := p.topo.NodeFor(key)
		if lanes = p.lanes[addr]; lanes == nil {
			p.mu.RUnlock()
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				return ErrClosed
			}
			if lanes = p.lanes[addr]; lanes == nil {
				lanes = p.startNode(addr)
			}
			p.mu.Unlock()
			p.mu.RLock()
			if p.closed {
				p.mu.RUnlock()
				return ErrClosed
			}
		}
	}
	defer p.mu.RUnlock()
	select {
	case lanes[Shard(pub.channel, len(lanes))].queue <- pub:
		return nil
	default:
		return ErrFull
	}
}

// Publish queues payload for channel, or returns ErrFull or ErrClosed at
// once. done, if not nil, is called from a worker goroutine with the
// result once Redis answered (a queued publication is always answered).
func (p *Publisher) Publish(channel string, payload []byte, done func(error)) error {
	return p.queue(publication{channel: channel, payload: payload, done: done})
}

// PublishCounted is Publish whose done hears PUBLISH's reply: how many
// subscribers got the message (on a Redis Cluster, those of the node that
// ran it).
func (p *Publisher) PublishCounted(channel string, payload []byte, done func(receivers int64, err error)) error {
	return p.queue(publication{channel: channel, payload: payload, counted: done})
}

// Eval runs script (a Lua script that returns an integer) with keys and
// args on channel's connection, after everything queued for channel before
// it: a terminal published by a script leaves in order with the rows
// before it. It returns ErrFull or ErrClosed at once, or done, if not nil,
// is called from a worker goroutine with the script's integer reply.
func (p *Publisher) Eval(channel string, script Script, keys []string, args [][]byte, done func(int64, error)) error {
	return p.queue(publication{channel: channel, eval: &evalCall{script: script, keys: keys, args: args, done: done}})
}

// Do sends a command on channel's connection, in order with what is
// queued for channel. It returns ErrFull or ErrClosed at once, or done, if
// not nil, hears from a worker goroutine whether the reply was null (SET
// NX on a key that exists).
func (p *Publisher) Do(channel string, args []string, done func(null bool, err error)) error {
	return p.queue(publication{channel: channel, cmd: &command{args: args, done: done}})
}

// WhenRoom runs queue (a Publish, Eval or Do) until the publisher has room
// for it, pausing between tries, or ctx ends: for callers that may wait
// their turn behind a burst, such as a client, unlike the server's actors.
func WhenRoom(ctx context.Context, queue func() error) error {
	for {
		err := queue()
		if !errors.Is(err, ErrFull) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish queue full: %w", ctx.Err())
		case <-time.After(100 * time.Microsecond):
		}
	}
}

// Shard picks one of n publishing queues for channel: always the same one,
// so that the channel's messages keep their order.
func Shard(channel string, n int) int {
	if n <= 1 {
		return 0 // the default: no hash to compute per message
	}
	// FNV-1a, written out: the hash.Hash32 of hash/fnv and the []byte of
	// the name would cost two allocations per message.
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Close sends what is queued, then stops the workers.
func (p *Publisher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	for _, lanes := range p.lanes {
		for _, l := range lanes {
			close(l.queue)
		}
	}
	p.wg.Wait()
}

// appendEval appends verb (EVAL or EVALSHA) script numkeys keys... args...
func appendEval(dst []byte, verb, script string, e *evalCall) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(3+len(e.keys)+len(e.args)), 10)
	dst = append(dst, '\r', '\n')
	dst = appendBulk(dst, verb)
	dst = appendBulk(dst, script)
	dst = appendBulk(dst, strconv.Itoa(len(e.keys)))
	for _, k := range e.keys {
		dst = appendBulk(dst, k)
	}
	for _, a := range e.args {
		dst = appendBulk(dst, a)
	}
	return dst
}

// appendPublish appends PUBLISH channel payload.
func appendPublish(dst []byte, channel string, payload []byte) []byte {
	dst = append(dst, "*3\r\n$7\r\nPUBLISH\r\n"...)
	dst = appendBulk(dst, channel)
	return appendBulk(dst, payload)
}
