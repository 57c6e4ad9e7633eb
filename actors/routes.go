package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
)

// Routes maps response channels to their running stream actors, so that the
// subscriber hands a client's "accepted" straight to its stream: one actor
// hop per row instead of two through the router. The router alone adds and
// removes entries; anything without an entry (a stream still subscribing,
// a channel nobody owns) still goes through the router. Safe for
// concurrent use.
type Routes struct {
	// A plain map, not a sync.Map: Deliver looks a channel up by its bytes
	// without making a string of them.
	mu      sync.RWMutex
	streams map[string]*actor.PID
}

// Deliver sends a control message heard on channel to its stream, if one
// is running, and reports whether it did.
func (r *Routes) Deliver(sender actor.SenderContext, channel []byte, kind messages.Control) bool {
	if r == nil || kind == messages.ControlNone {
		return false
	}
	r.mu.RLock()
	pid := r.streams[string(channel)]
	r.mu.RUnlock()
	if pid == nil {
		return false
	}
	sender.Send(pid, control{kind: kind})
	return true
}

func (r *Routes) add(channel string, pid *actor.PID) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams == nil {
		r.streams = map[string]*actor.PID{}
	}
	r.streams[channel] = pid
}

func (r *Routes) remove(channel string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.streams, channel)
}
