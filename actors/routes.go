package actors

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
)

// Routes maps response channels to their running stream actors, so that the
// subscriber hands a client's "accepted" straight to its stream: one actor
// hop per row instead of two through the router. The router alone adds and
// removes entries; anything without an entry (a stream still subscribing,
// a channel nobody owns) still goes through the router. Safe for
// concurrent use.
//
// It also bounds what a client can pile into its stream's mailbox: an
// "accepted" beyond its window grants nothing, so past window+slack
// controls waiting, more are dropped (and counted). "end" always goes.
type Routes struct {
	// A plain map, not a sync.Map: Deliver looks a channel up by its bytes
	// without making a string of them.
	mu      sync.RWMutex
	streams map[string]route
	// Metrics, if not nil, counts the dropped controls.
	Metrics *metrics.Metrics
}

type route struct {
	pid    *actor.PID
	queued *atomic.Int32 // controls delivered, not yet received
	bound  int32
}

// controlSlack is how many controls past its window a stream may have
// waiting before more "accepted"s are dropped.
const controlSlack = 64

// Deliver sends a control message heard on channel to its stream, if one
// is running, and reports whether it did (or dropped it as surplus).
func (r *Routes) Deliver(sender actor.SenderContext, channel []byte, kind messages.Control) bool {
	if r == nil || kind == messages.ControlNone {
		return false
	}
	r.mu.RLock()
	rt, ok := r.streams[string(channel)]
	r.mu.RUnlock()
	if !ok {
		return false
	}
	if rt.queued.Add(1) > rt.bound && kind == messages.ControlAccepted {
		rt.queued.Add(-1)
		r.Metrics.ControlDropped()
		return true
	}
	sender.Send(rt.pid, control{kind: kind, routed: true})
	return true
}

func (r *Routes) add(channel string, pid *actor.PID, queued *atomic.Int32, window int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams == nil {
		r.streams = map[string]route{}
	}
	r.streams[channel] = route{pid: pid, queued: queued, bound: int32(min(window, 1<<20) + controlSlack)}
}

func (r *Routes) remove(channel string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.streams, channel)
}
