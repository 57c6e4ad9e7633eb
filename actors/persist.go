package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// persistEnded tells the router that a persist replied (or failed), so that
// it frees the channel. c tells the record it was for from a later one.
type persistEnded struct {
	channel string
	c       *child
	ending  messages.Ending
}

// persist serves a persist request whose channel this server claimed: it
// translates the query and hands the INSERT to the batcher, whose commit
// publishes the OK reply and "end", or "error" (a query that does not
// translate commits nothing and is refused at once). A persist has no
// actor of its own: spawning one cost every persist a goroutine hand-off
// on its way to the batcher, and a spawn, a Started and a Terminated. The
// router keeps the books (the child record, "persist:<channel>" in the
// registry, the metrics) and hears persistEnded once the reply is out.
// The insert is not tied to the server's shutdown: a persist in flight
// commits and replies even while the server stops.
func (r *router) persist(ctx actor.Context, channel string, req messages.ReceivedRequest, claim Claim) {
	ins, err := r.deps.Builder.Insert(req.Query, sqlbuild.Scope{})
	if e := req.Expect; err == nil && e != nil {
		ins, err = ins.Expect(e.Domain, e.PID, e.Version)
	}
	if err != nil {
		r.refuse(channel, claim, req, messages.ReasonBadRequest, err.Error())
		return
	}
	c := &child{kind: persistChild, req: req, claim: claim}
	r.admit(channel, c, "committing")
	p := &committing{claims: r.deps.Claims, claim: claim, logger: r.deps.Logger, metrics: r.deps.Metrics, live: c.live,
		channel: channel, reason: req.Reason, rows: ins.Rows, started: time.Now()}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	r.deps.Persister.Submit(ins, func(ok messages.OK, err error) {
		// On the batcher's goroutine: the reply goes out first, the
		// router hears of it after.
		root.Send(self, persistEnded{channel: channel, c: c, ending: p.reply(ok, err)})
	})
}

// persistDone frees the channel of a persist that replied.
func (r *router) persistDone(msg persistEnded) {
	c := r.children[msg.channel]
	if c != msg.c {
		return // released already, as by a restart
	}
	c.ending, c.ended = true, msg.ending
	r.release(msg.channel, c)
	r.checkDrained()
}

// committing is what a persist's reply needs, on the batcher's goroutine.
type committing struct {
	claims  Claims
	claim   Claim
	logger  *slog.Logger
	metrics *metrics.Metrics
	live    *supervision.Live
	channel string
	reason  bool // the request asked for reasons
	rows    int
	started time.Time
}

// reply publishes the outcome of the INSERT: the OK packet and "end", or
// "error"; then it counts it, and returns how the persist ended.
func (p *committing) reply(ok messages.OK, err error) messages.Ending {
	elapsed := time.Since(p.started)
	if err != nil {
		reason := persistFailure(err)
		message := safeMessage(reason, err)
		var conflict *messages.ConflictError
		if errors.As(err, &conflict) {
			message = conflict.Message
		}
		p.claims.Finish(p.claim, [][]byte{messages.ErrorPayload(p.reason, reason, message)}, nil)
		p.metrics.Persisted(elapsed)
		p.metrics.PersistFailed(string(reason))
		p.live.SetError(err.Error())
		p.logger.Warn("persist failed", slog.String("channel", p.channel), slog.String("reason", string(reason)), slog.Any("err", err))
		return messages.EndingError
	}
	duplicate := ok.Duplicate
	// A retry looks like the original's reply, unless the client asked
	// for reasons.
	ok.Duplicate = ok.Duplicate && p.reason
	p.claims.Finish(p.claim, [][]byte{ok.Encode(), messages.EndJSON}, nil)
	p.metrics.Persisted(elapsed)
	if duplicate {
		p.metrics.PersistDuplicate()
	}
	p.live.SetState("ending")
	// Debug, not Info: a line per persist would be most of a busy
	// server's log. The guard spares building the attributes.
	if p.logger.Enabled(context.Background(), slog.LevelDebug) {
		p.logger.Debug("persist ended", slog.String("channel", p.channel), slog.String("ending", string(messages.EndingComplete)),
			slog.Int("rows", p.rows), slog.Duration("elapsed", elapsed))
	}
	return messages.EndingComplete
}

// persistFailure is the reason a failed persist reports.
func persistFailure(err error) messages.Reason {
	if errors.Is(err, messages.ErrConflict) {
		return messages.ReasonConflict
	}
	return messages.ReasonDB
}
