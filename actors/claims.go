package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/eventsource/eventsource/messages"
)

// Claims decides, across every server on the same Redis, which one answers
// on a response channel (replicas.Keeper, through the server). Nothing is
// published on a channel before its claim is won, and a child's last
// messages go out with the claim's end, in one step that checks the claim
// is still this server's.
type Claims interface {
	// Claim asks for channel's claim for a request (reason: its "error"
	// from a survivor carries the reason; takeover: the request came after
	// the channel's last end, so that end's tombstone does not stop it).
	// done runs on another goroutine with the claim, or nil when another
	// server or a live stream holds the channel.
	Claim(channel string, reason, takeover bool, done func(Claim, error))
	// Finish publishes payloads on the claim's channel after everything
	// published there before, and ends the claim, only while this server
	// holds it; done, if not nil, runs on another goroutine.
	Finish(c Claim, payloads [][]byte, done func(held bool, err error))
}

// Claim is a response channel this server may answer on.
type Claim interface {
	// Valid reports whether the claim surely still holds, so that a row
	// may be published.
	Valid() bool
}

// ClaimLost says that the claim of a channel this server answers on is
// gone: a survivor ended the stream while this server was silent, or
// another server holds the channel now. Its child ends without publishing
// anything more. Sent by the server (from replicas.Keeper); not on the wire.
type ClaimLost struct {
	Channel string
}

// Messages of claiming; none goes on the wire.
type (
	// claimed carries the answer to a claim back to the router; seq tells
	// it which request it was for.
	claimed struct {
		channel string
		seq     uint64
		claim   Claim
		err     error
	}
	// claimLater asks for the claim of a request that came while the
	// server was full, once the others had a moment to take it.
	claimLater struct {
		channel string
		seq     uint64
	}
)

// AdmissionDelay is how long a full server leaves a request to the others.
// A request that comes while the server is full (counting the claims it is
// asking for) waits one delay; then a server with room claims it, and a
// server still full waits one more before it claims it to refuse it: every
// server was full, or one with room would have claimed it by then.
const AdmissionDelay = 250 * time.Millisecond

// pendingRequest is a request whose claim is being asked for.
type pendingRequest struct {
	kind childKind
	req  messages.ReceivedRequest
	err  error // the request's decoding error, answered once claimed
	seq  uint64
	// takeover: the channel's last end was heard before this request.
	takeover bool
	// waits counts the admission delays it went through: 0 when claimed at
	// once, 2 when claimed to be refused if the server is still full.
	waits int
}

// ask sends the claim of a pending request, or sends it later when the
// server is full (see AdmissionDelay).
func (r *router) ask(ctx actor.Context, channel string, p *pendingRequest) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	if p.err == nil && !r.draining && p.waits < 2 && r.full() {
		p.waits++
		scheduler.NewTimerScheduler(root).SendOnce(r.cfg.AdmissionDelay, self, claimLater{channel: channel, seq: p.seq})
		return
	}
	if p.waits == 0 {
		r.asking++
	}
	seq := p.seq
	r.deps.Claims.Claim(channel, p.req.Reason, p.takeover, func(c Claim, err error) {
		root.Send(self, claimed{channel: channel, seq: seq, claim: c, err: err})
	})
}

// claimAnswered serves a request whose claim was won; a lost claim means
// another server answers, and this one says nothing.
func (r *router) claimAnswered(ctx actor.Context, msg claimed) {
	p := r.pending[msg.channel]
	if p == nil || p.seq != msg.seq {
		if msg.claim != nil {
			r.deps.Claims.Finish(msg.claim, nil, nil)
		}
		return
	}
	delete(r.pending, msg.channel)
	if p.waits == 0 {
		r.asking--
	}
	switch {
	case msg.err != nil:
		r.deps.Logger.Warn("request dropped: its channel could not be claimed", slog.String("channel", msg.channel),
			slog.String("reason", string(messages.ReasonUnavailable)), slog.Any("err", msg.err))
		r.deps.Metrics.RequestRefused(string(messages.ReasonUnavailable))
	case msg.claim == nil:
		r.deps.Logger.Debug("request answered by another server", slog.String("channel", msg.channel))
	default:
		r.serve(ctx, msg.channel, p, msg.claim)
	}
	r.checkDrained()
}

// claimLost ends a child whose claim is gone, without a word on its
// channel: what it would publish is not its own to publish any more.
func (r *router) claimLost(ctx actor.Context, channel string) {
	c := r.children[channel]
	if c == nil || c.ending {
		return
	}
	r.deps.Logger.Warn("claim lost: the stream ends without a word", slog.String("channel", channel))
	switch {
	case c.kind == persistChild:
		// Its insert is with the batcher; its reply's script finds the
		// claim gone and publishes nothing.
	case c.pid == nil:
		if c.stopTimer != nil {
			c.stopTimer()
		}
		c.ended = messages.EndingError
		r.release(channel, c)
		r.unsubscribe(channel)
		r.checkDrained()
	default:
		ctx.Send(c.pid, abort{reason: messages.ReasonUnavailable, silent: true})
	}
}

// finishedChannels remembers, for a while, the channels whose end was
// announced: a request heard after that announcement is a new one, which
// may take the channel's tombstone over.
type finishedChannels struct {
	ttl   time.Duration
	at    map[string]time.Time
	order []finishedAt // oldest first
}

type finishedAt struct {
	channel string
	at      time.Time
}

func (f *finishedChannels) add(channel string, now time.Time) {
	for len(f.order) > 0 && now.Sub(f.order[0].at) > f.ttl {
		old := f.order[0]
		if f.at[old.channel] == old.at {
			delete(f.at, old.channel)
		}
		f.order = f.order[1:]
	}
	if f.at == nil {
		f.at = map[string]time.Time{}
	}
	f.at[channel] = now
	f.order = append(f.order, finishedAt{channel, now})
}

func (f *finishedChannels) has(channel string, now time.Time) bool {
	at, ok := f.at[channel]
	return ok && now.Sub(at) <= f.ttl
}
