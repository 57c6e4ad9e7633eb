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

// FailureHandler is implemented by supervisors that must act on a child's
// failure (publish "error" to its client, release its channel). The
// strategy calls it on the supervisor's own goroutine, between two of its
// messages, and before the child's Terminated can arrive.
type FailureHandler interface {
	ChildFailed(child *actor.PID, reason any)
}

// StopAndReport is the strategy for children that must not restart: each
// failure stops the failing child alone, after telling the supervisor
// (when it is a FailureHandler).
func StopAndReport(logger *slog.Logger) actor.SupervisorStrategy {
	return stopAndReport{logger: logger}
}

type stopAndReport struct{ logger *slog.Logger }

func (s stopAndReport) HandleFailure(system *actor.ActorSystem, supervisor actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason any, _ any) {
	s.logger.Error("actor failed; stopping it", slog.String("actor", child.Id), slog.Any("reason", reason))
	system.EventStream.Publish(&actor.SupervisorEvent{Child: child, Reason: reason, Directive: actor.StopDirective})
	// The supervisor is the parent's context; its actor is the parent.
	if ctx, ok := supervisor.(actor.Context); ok {
		if h, ok := ctx.Actor().(FailureHandler); ok {
			h.ChildFailed(child, reason)
		}
	}
	supervisor.StopChildren(child)
}

// RestartRouter restarts the router on failure, at most maxRestarts times
// within window; past that it stops, which the server reports as fatal.
func RestartRouter(maxRestarts int, window time.Duration) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(maxRestarts, window, func(any) actor.Directive { return actor.RestartDirective })
}
