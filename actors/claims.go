package actors

import (
	"hash/maphash"
	"log/slog"
	"sync"
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

// pendingRequest is a request whose claim is being asked for. It is
// decoded only once claimed: the servers that lose the claim never spend
// the decode.
type pendingRequest struct {
	kind    childKind
	payload []byte
	reason  bool // the request asked for reasons
	seq     uint64
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
	if !r.draining && p.waits < 2 && r.full() {
		p.waits++
		scheduler.NewTimerScheduler(root).SendOnce(r.cfg.AdmissionDelay, self, claimLater{channel: channel, seq: p.seq})
		return
	}
	if p.waits == 0 {
		r.asking++
	}
	seq := p.seq
	r.deps.Claims.Claim(channel, p.reason, p.takeover, func(c Claim, err error) {
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

// Finished remembers, for a while, the response channels whose end was
// announced on the finished channel, each with the subscriber's count of
// messages heard when the announcement came (messages.Inbound.Seq): a
// request heard after it is a new one, which may take the channel's
// tombstone over. The subscriber's reader goroutine adds, the router asks;
// safe for concurrent use.
//
// Channels are kept as 64-bit hashes in two generations: an entry lives
// between one and two ttl. A collision would let one request take over a
// tombstone that is not its channel's: at 2^-64, never.
type Finished struct {
	ttl  time.Duration
	seed maphash.Seed

	mu      sync.Mutex
	turned  time.Time
	current map[uint64]uint64 // channel hash to the Seq it was announced at
	last    map[uint64]uint64
}

// NewFinished remembers announcements for ttl, the claims' tombstone time.
func NewFinished(ttl time.Duration) *Finished {
	return &Finished{ttl: ttl, seed: maphash.MakeSeed(), turned: time.Now(), current: map[uint64]uint64{}, last: map[uint64]uint64{}}
}

// Add records that channel's end was announced at seq.
func (f *Finished) Add(channel []byte, seq uint64) {
	h := maphash.Bytes(f.seed, channel)
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.turned) > f.ttl {
		f.last, f.current, f.turned = f.current, make(map[uint64]uint64, len(f.current)), now
	}
	f.current[h] = seq
}

// Before reports whether channel's end was announced before the message
// heard at seq.
func (f *Finished) Before(channel string, seq uint64) bool {
	if f == nil {
		return false
	}
	h := maphash.String(f.seed, channel)
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.current[h]
	if !ok {
		at, ok = f.last[h]
	}
	return ok && at < seq
}
