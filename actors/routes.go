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
	streams sync.Map // channel → *actor.PID
}

// Deliver sends a control message heard on channel to its stream, if one
// is running, and reports whether it did.
func (r *Routes) Deliver(sender actor.SenderContext, channel string, kind messages.Control) bool {
	if r == nil || kind == messages.ControlNone {
		return false
	}
	pid, ok := r.streams.Load(channel)
	if !ok {
		return false
	}
	sender.Send(pid.(*actor.PID), control{kind: kind})
	return true
}

func (r *Routes) add(channel string, pid *actor.PID) {
	if r != nil {
		r.streams.Store(channel, pid)
	}
}

func (r *Routes) remove(channel string) {
	if r != nil {
		r.streams.Delete(channel)
	}
}
