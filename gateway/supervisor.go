package gateway

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/supervision"
)

// Messages of the "http" supervisor; none goes on the wire.
type (
	// spawnChild asks the supervisor for a child; it answers spawned.
	spawnChild struct {
		name, kind, channel string
		props               *actor.Props
		// fail ends the child's connection when the child failed.
		fail func(reason string)
		// gone, if not nil, frees what the child held once it stopped,
		// however it stopped.
		gone func()
	}
	spawned struct {
		pid  *actor.PID
		live *supervision.Live
		err  error
	}
	// stopChild asks a child, by registry name, to end; the answer is
	// whether there was one.
	stopChild struct{ name string }
	// drainChildren ends every child with reason; done is closed once
	// none is left.
	drainChildren struct {
		reason string
		done   chan struct{}
	}
	// endChild tells a child to end its connection with reason and stop.
	endChild struct{ reason string }
)

// child is the supervisor's record of one child.
type child struct {
	name string
	pid  *actor.PID
	live *supervision.Live
	fail func(reason string)
	gone func()
}

// supervisor is the "http" actor: the parent of one actor per session and
// per SSE stream. A failing child is stopped and its connection closed
// (supervision.StopAndReport); the others go on.
type supervisor struct {
	registry *supervision.Registry
	logger   *slog.Logger
	children map[string]*child // by PID id
	byName   map[string]*child
	drained  chan struct{}
}

func newSupervisorProps(registry *supervision.Registry, logger *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{registry: registry, logger: logger, children: map[string]*child{}, byName: map[string]*child{}}
	}, actor.WithSupervisor(supervision.StopAndReport(logger)))
}

func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case spawnChild:
		if s.drained != nil {
			ctx.Respond(spawned{err: fmt.Errorf("the gateway is shutting down")})
			return
		}
		pid, err := ctx.SpawnNamed(msg.props, msg.name)
		if err != nil {
			ctx.Respond(spawned{err: fmt.Errorf("start %s: %w", msg.name, err)})
			return
		}
		c := &child{name: msg.name, pid: pid, fail: msg.fail, gone: msg.gone,
			live: s.registry.Add(msg.name, "http", msg.kind, msg.channel, "starting")}
		s.children[pid.Id], s.byName[msg.name] = c, c
		ctx.Send(pid, c.live)
		ctx.Respond(spawned{pid: pid, live: c.live})
	case stopChild:
		c := s.byName[msg.name]
		if c != nil {
			ctx.Send(c.pid, endChild{reason: "stopped by an operator"})
		}
		ctx.Respond(c != nil)
	case *drainChildren:
		s.drained = msg.done
		for _, c := range s.children {
			ctx.Send(c.pid, endChild{reason: msg.reason})
		}
		s.checkDrained()
	case *actor.Terminated:
		if c := s.children[msg.Who.Id]; c != nil {
			s.forget(c)
		}
		s.checkDrained()
	case *actor.Restarting:
		// The children stop with this instance, and the next one starts
		// with an empty map: end their connections now.
		for _, c := range s.children {
			c.fail("internal error")
			s.forget(c)
		}
	}
}

// ChildFailed closes the failed child's connection before it is stopped
// (supervision.FailureHandler).
func (s *supervisor) ChildFailed(pid *actor.PID, reason any) {
	if c := s.children[pid.Id]; c != nil {
		c.live.SetError(fmt.Sprint(reason))
		c.fail("internal error")
	}
}

func (s *supervisor) forget(c *child) {
	if c.gone != nil {
		c.gone()
	}
	delete(s.children, c.pid.Id)
	delete(s.byName, c.name)
	s.registry.Remove(c.name)
}

func (s *supervisor) checkDrained() {
	if s.drained != nil && len(s.children) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}
