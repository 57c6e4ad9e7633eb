package actors

import (
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
	routes.add("c", pid)
	if routes.Deliver(system.Root, []byte("c"), messages.ControlNone) {
		t.Fatal("delivered something that is not a control")
	}
	if !routes.Deliver(system.Root, []byte("c"), messages.ControlAccepted) {
		t.Fatal("did not deliver to a running stream")
	}
	select {
	case c := <-heard:
		if c.kind != messages.ControlAccepted {
			t.Fatalf("stream heard %v", c.kind)
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
