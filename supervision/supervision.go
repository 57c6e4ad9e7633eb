// Package supervision holds the supervisor strategies of the actor tree:
// how a failure of one actor is contained.
//
// Stream and persist actors own a client's cursor and channel: restarting
// one with an empty state would resend or lose rows, so a failed one is
// stopped and its parent is told, to publish "error" and free what it held.
// The router holds nothing that a restart loses (the subscriptions live on
// the Redis connection), so it is restarted.
package supervision

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Failure reports that a child failed and was stopped. Sent by the strategy
// to the supervisor itself, so the supervisor handles it in its own
// Receive, in order with its other messages; not on the wire.
type Failure struct {
	Child  *actor.PID
	Reason any
}

// StopAndReport is the strategy for children that must not restart: each
// failure stops the failing child alone and sends the supervisor a Failure.
func StopAndReport(logger *slog.Logger) actor.SupervisorStrategy {
	return stopAndReport{logger: logger}
}

type stopAndReport struct{ logger *slog.Logger }

func (s stopAndReport) HandleFailure(system *actor.ActorSystem, supervisor actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	s.logger.Error("actor failed; stopping it", slog.String("actor", child.Id), slog.Any("reason", reason))
	system.EventStream.Publish(&actor.SupervisorEvent{Child: child, Reason: reason, Directive: actor.StopDirective})
	// The supervisor is the parent's context: its Self is the parent.
	if ctx, ok := supervisor.(actor.Context); ok {
		ctx.Send(ctx.Self(), &Failure{Child: child, Reason: reason})
	}
	supervisor.StopChildren(child)
}

// RestartRouter restarts the router on failure, at most maxRestarts times
// within window; past that it stops, which the server reports as fatal.
func RestartRouter(maxRestarts int, window time.Duration) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(maxRestarts, window, func(any) actor.Directive { return actor.RestartDirective })
}
