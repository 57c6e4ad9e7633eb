package actors

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
)

func TestRoutesDeliver(t *testing.T) {
	system := actor.NewActorSystem()
	heard := make(chan control, 4)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(control); ok {
			heard <- c
		}
	}))
	defer system.Root.Stop(pid)

	var routes Routes
	if routes.Deliver(system.Root, []byte("c"), messages.ControlAccepted) {
		t.Fatal("delivered to a channel without a stream")
	}
	routes.add("c", pid, new(atomic.Int32), 1)
	if routes.Deliver(system.Root, []byte("c"), messages.ControlNone) {
		t.Fatal("delivered something that is not a control")
	}
	if !routes.Deliver(system.Root, []byte("c"), messages.ControlAccepted) {
		t.Fatal("did not deliver to a running stream")
	}
	select {
	case c := <-heard:
		if c.kind != messages.ControlAccepted || !c.routed {
			t.Fatalf("stream heard %+v, want a routed accepted", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream heard nothing")
	}
	routes.remove("c")
	if routes.Deliver(system.Root, []byte("c"), messages.ControlEnd) {
		t.Fatal("delivered after the route was removed")
	}
	var none *Routes
	if none.Deliver(system.Root, []byte("c"), messages.ControlAccepted) {
		t.Fatal("a nil Routes delivered")
	}
}

// A client flooding its channel with "accepted" fills its stream's mailbox
// only up to its window and a slack; "end" always goes through.
func TestRoutesBoundAStreamsControls(t *testing.T) {
	system := actor.NewActorSystem()
	release := make(chan struct{})
	var heard atomic.Int32
	var ends atomic.Int32
	queued := new(atomic.Int32)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if c, ok := ctx.Message().(control); ok {
			<-release // a stream busy elsewhere: its mailbox fills
			queued.Add(-1)
			heard.Add(1)
			if c.kind == messages.ControlEnd {
				ends.Add(1)
			}
		}
	}))
	defer system.Root.Stop(pid)
	var routes Routes
	const window = 4
	routes.add("c", pid, queued, window)
	for range 10_000 {
		routes.Deliver(system.Root, []byte("c"), messages.ControlAccepted)
	}
	routes.Deliver(system.Root, []byte("c"), messages.ControlEnd)
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for ends.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ends.Load() != 1 {
		t.Fatal("the \"end\" after the flood was not delivered")
	}
	if got, most := heard.Load(), int32(window+controlSlack+1); got > most {
		t.Fatalf("the stream received %d controls, want at most %d (window %d + slack %d + end)", got, most, window, controlSlack)
	}
}
