package actors

import (
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// inserted carries the result of the INSERT back to the persist actor.
type inserted struct {
	ok  messages.OK
	err error
}

// persist is one persist request: it translates its query and hands the
// INSERT to the batcher, whose commit publishes the OK reply and "end", or
// "error" (a query that does not translate commits nothing and gets "error"
// at once, as a refused request). The
// insert is not tied to the server's shutdown: a persist in flight commits
// and replies even while the server stops.
type persist struct {
	builder   *sqlbuild.Builder
	persister Persister
	claims    Claims
	claim     Claim
	logger    *slog.Logger
	metrics   *metrics.Metrics
	live      *supervision.Live
	channel   string
	req       messages.ReceivedRequest
	ins       *sqlbuild.Insert
	started   time.Time
}

func (p *persist) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.started = time.Now()
		ins, err := p.builder.Insert(p.req.Query, sqlbuild.Scope{})
		if e := p.req.Expect; err == nil && e != nil {
			ins, err = ins.Expect(e.Domain, e.PID, e.Version)
		}
		if err != nil {
			p.metrics.RequestRefused(string(messages.ReasonBadRequest))
			p.live.SetError(err.Error())
			p.logger.Warn("request refused", slog.String("channel", p.channel), slog.String("reason", string(messages.ReasonBadRequest)), slog.String("err", err.Error()))
			p.claims.Finish(p.claim, [][]byte{messages.ErrorPayload(p.req.Reason, messages.ReasonBadRequest, err.Error())}, nil)
			ctx.Send(ctx.Parent(), streamEnded{channel: p.channel, ending: messages.EndingError})
			return
		}
		p.ins = ins
		self, root := ctx.Self(), ctx.ActorSystem().Root
		p.persister.Submit(p.ins, func(ok messages.OK, err error) {
			// The reply goes out from here, the batcher's goroutine: a trip
			// through this actor's mailbox first would add a goroutine
			// wake-up to every persist's latency. The actor keeps the books.
			root.Send(self, inserted{ok: ok, err: err})
			p.reply(ok, err)
		})
	case inserted:
		p.metrics.Persisted(time.Since(p.started))
		p.live.SetState("ending")
		ending := messages.EndingComplete
		if msg.err != nil {
			ending = messages.EndingError
			p.live.SetError(msg.err.Error())
			reason := persistFailure(msg.err)
			p.metrics.PersistFailed(string(reason))
			p.logger.Warn("persist failed", slog.String("channel", p.channel), slog.String("reason", string(reason)), slog.Any("err", msg.err))
		} else if msg.ok.Duplicate {
			p.metrics.PersistDuplicate()
		}
		p.logger.Info("persist ended", slog.String("channel", p.channel), slog.String("ending", string(ending)),
			slog.Int("rows", p.ins.Rows), slog.Duration("elapsed", time.Since(p.started)))
		// The router stops this actor once it recorded the ending.
		ctx.Send(ctx.Parent(), streamEnded{channel: p.channel, ending: ending})
	}
}

// reply publishes the outcome of the INSERT: the OK packet and "end", or
// "error". It runs on the batcher's goroutine and reads only what Started
// set before the INSERT was submitted.
func (p *persist) reply(ok messages.OK, err error) {
	if err != nil {
		reason := persistFailure(err)
		message := safeMessage(reason, err)
		var conflict *messages.ConflictError
		if errors.As(err, &conflict) {
			message = conflict.Message
		}
		p.claims.Finish(p.claim, [][]byte{messages.ErrorPayload(p.req.Reason, reason, message)}, nil)
		return
	}
	// A retry looks like the original's reply, unless the client asked
	// for reasons.
	ok.Duplicate = ok.Duplicate && p.req.Reason
	p.claims.Finish(p.claim, [][]byte{ok.Encode(), messages.EndJSON}, nil)
}

// persistFailure is the reason a failed persist reports.
func persistFailure(err error) messages.Reason {
	if errors.Is(err, messages.ErrConflict) {
		return messages.ReasonConflict
	}
	return messages.ReasonDB
}
