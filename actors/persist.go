package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// inserted carries the result of the INSERT back to the persist actor.
type inserted struct {
	ok  messages.OK
	err error
}

// persistTimeout bounds one INSERT. It is not tied to the server's shutdown:
// a persist in flight commits and replies even while the server stops.
const persistTimeout = 30 * time.Second

// persist is one persist request: it runs the INSERT off the actor, then
// publishes the OK reply and "end", or "error".
type persist struct {
	store     Store
	publisher Publisher
	logger    *slog.Logger
	channel   string
	req       messages.Request
	ins       *sqlbuild.Insert
	started   time.Time
}

func (p *persist) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.started = time.Now()
		self, root, store, ins := ctx.Self(), ctx.ActorSystem().Root, p.store, p.ins
		go func() {
			dbCtx, cancel := context.WithTimeout(context.Background(), persistTimeout)
			defer cancel()
			ok, err := store.Insert(dbCtx, ins)
			root.Send(self, inserted{ok: ok, err: err})
		}()
	case inserted:
		ending := messages.EndingComplete
		if msg.err != nil {
			ending = messages.EndingError
			p.logger.Warn("persist failed", slog.String("channel", p.channel), slog.String("reason", string(messages.ReasonDB)), slog.Any("err", msg.err))
			p.publisher.Publish(p.channel, messages.ErrorPayload(p.req.Reason, messages.ReasonDB, safeMessage(messages.ReasonDB, msg.err)), nil)
		} else {
			p.publisher.Publish(p.channel, msg.ok.Encode(), nil)
			p.publisher.Publish(p.channel, messages.EndJSON, nil)
		}
		p.logger.Info("persist ended", slog.String("channel", p.channel), slog.String("ending", string(ending)),
			slog.Int("rows", p.ins.Rows), slog.Duration("elapsed", time.Since(p.started)))
		ctx.Send(ctx.Parent(), streamEnded{channel: p.channel, ending: ending})
		ctx.Stop(ctx.Self())
	}
}
