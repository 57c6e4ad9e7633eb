package actors

import (
	"bytes"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
)

func TestEncodePage(t *testing.T) {
	cols := []string{"pid", "n"}
	tests := []struct {
		name string
		rows []messages.Row
	}{
		{"no rows", nil},
		{"one row", []messages.Row{{Columns: cols, Values: []any{"a", int64(1)}}}},
		// Rows longer than the first one grow the buffer past its estimate.
		{"rows of growing size", []messages.Row{
			{Columns: cols, Values: []any{"a", int64(1)}},
			{Columns: cols, Values: []any{"a much longer pid than the first row's", int64(22)}},
			{Columns: cols, Values: []any{string(bytes.Repeat([]byte("x"), 4096)), int64(333)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodePage(tt.rows)
			if len(got) != len(tt.rows) {
				t.Fatalf("%d payloads for %d rows", len(got), len(tt.rows))
			}
			for i, row := range tt.rows {
				if want := row.AppendJSON(nil); !bytes.Equal(got[i], want) {
					t.Errorf("row %d: %s, want %s", i, got[i], want)
				}
			}
			// A payload is capped: appending to it must not reach the next.
			for i := range got {
				_ = append(got[i], "garbage"...)
			}
			for i, row := range tt.rows {
				if want := row.AppendJSON(nil); !bytes.Equal(got[i], want) {
					t.Errorf("row %d changed by an append to another: %s", i, got[i])
				}
			}
		})
	}
}

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
	if routes.Deliver(system.Root, "c", messages.ControlAccepted) {
		t.Fatal("delivered to a channel without a stream")
	}
	routes.add("c", pid)
	if routes.Deliver(system.Root, "c", messages.ControlNone) {
		t.Fatal("delivered something that is not a control")
	}
	if !routes.Deliver(system.Root, "c", messages.ControlAccepted) {
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
	if routes.Deliver(system.Root, "c", messages.ControlEnd) {
		t.Fatal("delivered after the route was removed")
	}
	var none *Routes
	if none.Deliver(system.Root, "c", messages.ControlAccepted) {
		t.Fatal("a nil Routes delivered")
	}
}
