package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Messages of followed streams and durable consumers; none on the wire.
type (
	// streamReady carries where a followed or consuming stream starts:
	// after its consumer's position, up to the table's frontier.
	streamReady struct {
		position, safe int64
		err            error
	}
	// frontierMoved: the followed table's commits are settled up to safe.
	frontierMoved struct{ safe int64 }
	// recordDue: accepted rows have waited long enough to be recorded.
	recordDue struct{}
	// positionRecorded carries the outcome of recording a position.
	positionRecorded struct {
		position int64
		err      error
	}
	// consumerReleased: the consumer's position is recorded and it is
	// free; the stream may publish its terminal.
	consumerReleased struct{ err error }
	// clientGone: the followed stream's channel has had no subscriber for
	// the follow idle time.
	clientGone struct{}
)

// following is what a followed stream adds to a fetch.
type following struct {
	frontier Frontier
	table    string
	// cancel forgets the watch on the frontier, while the stream waits
	// for commits (nil otherwise).
	cancel func()
}

// consuming is what a durable consumer adds to a fetch.
type consuming struct {
	store               Consumers
	name, query, holder string
	server              string
	reset               bool
	// held: Acquire succeeded, so the consumer must be released.
	held bool
	// keys are the keys of the buffered rows, inflight those of the rows
	// published and not accepted, in order.
	keys, inflight []int64
	// accepted is the key of the last row accepted, recorded the position
	// stored; unrecorded counts acceptances since the last record began.
	accepted, recorded int64
	unrecorded         int
	recording, armed   bool
}

// busyWait is how long a fetch waits for a consumer another stream holds
// before it is refused busy.
const busyWait = 2 * time.Second

// Durable consumers record their position after this many accepted rows,
// or this long after the first unrecorded one, whichever comes first: a
// crash sends again at most that many rows.
const (
	recordEvery = 100
	recordAfter = time.Second
)

// prepare acquires the consumer and reads the frontier off the actor, and
// sends where the stream starts.
func (s *stream) prepare() {
	self, root, consumer, follow := s.self, s.root, s.consumer, s.follow
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var ready streamReady
		if consumer != nil {
			// A consumer whose stream the client just ended is released a
			// moment later, maybe on another server: a fetch right after
			// the end waits for it rather than hear busy.
			for start := time.Now(); ; {
				ready.position, ready.err = consumer.store.Acquire(ctx, consumer.name, consumer.query, consumer.server, consumer.holder, consumer.reset)
				if !errors.Is(ready.err, messages.ErrBusy) || time.Since(start) >= busyWait {
					break
				}
				time.Sleep(busyWait / 20)
			}
		}
		if ready.err == nil && follow != nil {
			if ready.safe, ready.err = follow.frontier.Safe(ctx, follow.table); ready.err != nil {
				ready.err = fmt.Errorf("read the frontier of %s: %w", follow.table, ready.err)
			}
		}
		root.Send(self, ready)
	}()
}

// begin starts reading once prepare said where.
func (s *stream) begin(ctx actor.Context, msg streamReady) {
	if s.finished {
		return
	}
	if msg.err != nil {
		reason := messages.ReasonDB
		switch {
		case errors.Is(msg.err, messages.ErrBusy):
			reason = messages.ReasonBusy
		case errors.Is(msg.err, messages.ErrBadRequest):
			reason = messages.ReasonBadRequest
		}
		s.fail(ctx, reason, msg.err)
		return
	}
	opts := s.cursorOptions()
	if s.consumer != nil {
		s.consumer.held = true
		s.consumer.accepted, s.consumer.recorded = msg.position, msg.position
		opts.After, opts.Keys = msg.position, true
	}
	if s.follow != nil {
		opts.Snapshot = msg.safe
	}
	s.cursor = cursor.New(s.sel, s.store, opts)
	if s.follow != nil && msg.safe <= msg.position {
		// Nothing settled after the position yet: wait for commits.
		s.drained = true
		s.pump(ctx)
		return
	}
	s.read()
	s.report()
}

// watchFrontier waits for the followed table's frontier to pass what the
// cursor read up to; the stream holds no MySQL connection meanwhile.
func (s *stream) watchFrontier() {
	if s.follow.cancel != nil {
		return
	}
	self, root := s.self, s.root
	s.follow.cancel = s.follow.frontier.Watch(s.follow.table, max(s.cursor.Snapshot(), s.cursor.After()), func(safe int64) {
		root.Send(self, frontierMoved{safe: safe})
	})
}

// frontierMoved reads on, up to the new frontier.
func (s *stream) moved(ctx actor.Context, safe int64) {
	s.follow.cancel = nil
	if s.finished {
		return
	}
	s.cursor.Follow(safe)
	s.drained = false
	s.pump(ctx)
	s.report()
}

// rowAccepted moves the consumer's position to the row accepted.
func (c *consuming) rowAccepted() {
	if len(c.inflight) == 0 {
		return
	}
	c.accepted = c.inflight[0]
	c.inflight = c.inflight[1:]
	c.unrecorded++
}

// maybeRecord records the position once recordEvery rows were accepted
// since the last record, or recordAfter after the first of them.
func (s *stream) maybeRecord() {
	c := s.consumer
	if c == nil || !c.held || c.recording || c.accepted <= c.recorded || s.finished {
		return
	}
	if c.unrecorded >= recordEvery {
		s.record()
		return
	}
	if !c.armed {
		c.armed = true
		scheduler.NewTimerScheduler(s.root).SendOnce(recordAfter, s.self, recordDue{})
	}
}

// record stores the position off the actor.
func (s *stream) record() {
	c := s.consumer
	c.recording, c.unrecorded = true, 0
	position, self, root := c.accepted, s.self, s.root
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.store.Record(ctx, c.name, c.holder, position)
		root.Send(self, positionRecorded{position: position, err: err})
	}()
}

// recorded hears a record's outcome.
func (s *stream) positionRecorded(ctx actor.Context, msg positionRecorded) {
	c := s.consumer
	c.recording = false
	switch {
	case errors.Is(msg.err, messages.ErrConsumerLost):
		c.held = false // another stream holds it: nothing to release
		s.fail(ctx, messages.ReasonBusy, msg.err)
		return
	case msg.err != nil:
		// The position stays where it was; the next record tries again.
		s.logger.Warn("record consumer position", slog.String("consumer", c.name), slog.Any("err", msg.err))
		c.unrecorded = recordEvery
	default:
		c.recorded = max(c.recorded, msg.position)
	}
	s.maybeRecord()
}

// release records the position and frees the consumer off the actor;
// consumerReleased then lets the stream publish its terminal.
func (s *stream) release() {
	c := s.consumer
	c.held = false
	position, self, root := c.accepted, s.self, s.root
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		root.Send(self, consumerReleased{err: c.store.Release(ctx, c.name, c.holder, position)})
	}()
}

// Messages of the router's check on followed streams' clients.
type (
	// checkFollowers: time to count the subscribers of followed streams'
	// channels.
	checkFollowers struct{}
	// followersHeard carries the counts, as of at.
	followersHeard struct {
		counts map[string]int64
		at     time.Time
		err    error
	}
)

// followIdle is how long a followed stream's channel may have no
// subscriber before the stream ends (Config.FollowIdle); the router looks
// a fifteenth of it apart.
const followIdle = 30 * time.Second

// followable refuses, before any row, what cannot be followed or
// consumed: a query that is not a $select of one table in key order, and
// a server without what followers need.
func (r *router) followable(req messages.ReceivedRequest, sel *sqlbuild.Select) error {
	switch {
	case req.Reset && req.Consumer == "":
		return fmt.Errorf("reset needs a consumer")
	case !req.Follow && req.Consumer == "":
		return nil
	case req.Follow && (r.deps.Frontier == nil || r.deps.Listeners == nil):
		return fmt.Errorf("this server cannot follow queries")
	case req.Consumer != "" && r.deps.Consumers == nil:
		return fmt.Errorf("this server keeps no durable consumers")
	}
	return sqlbuild.Followable(req.Query, sel)
}

// armFollowCheck schedules the next count of followers' subscribers,
// while followed streams run.
func (r *router) armFollowCheck(ctx actor.Context) {
	if r.followCheck {
		return
	}
	r.followCheck = true
	scheduler.NewTimerScheduler(ctx.ActorSystem().Root).SendOnce(r.followIdle()/15, ctx.Self(), checkFollowers{})
}

func (r *router) followIdle() time.Duration {
	if r.cfg.FollowIdle > 0 {
		return r.cfg.FollowIdle
	}
	return followIdle
}

// checkFollowers counts, off the router, the subscribers of every
// followed stream's channel.
func (r *router) checkFollowers(ctx actor.Context) {
	r.followCheck = false
	var channels []string
	for channel, c := range r.children {
		if c.kind == fetchChild && c.req.Follow && !c.ending {
			channels = append(channels, channel)
		}
	}
	if len(channels) == 0 {
		return // the next followed stream arms it again
	}
	self, root, listeners := ctx.Self(), ctx.ActorSystem().Root, r.deps.Listeners
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		at := time.Now()
		counts, err := listeners.Listeners(ctx, channels)
		root.Send(self, followersHeard{counts: counts, at: at, err: err})
	}()
}

// followersHeard ends the followed streams whose channel has had no
// subscriber for the follow idle time.
func (r *router) followersHeard(ctx actor.Context, msg followersHeard) {
	defer r.armFollowCheck(ctx)
	if msg.err != nil {
		// Nothing is known: nobody is ended for it.
		r.deps.Logger.Warn("count the subscribers of followed streams", slog.Any("err", msg.err))
		return
	}
	for channel, n := range msg.counts {
		c := r.children[channel]
		switch {
		case c == nil || c.ending || !c.req.Follow:
		case n > 1:
			// The server's own subscription to hear "accepted" counts
			// one; more is the client.
			c.seen = msg.at
		case msg.at.Sub(c.seen) >= r.followIdle() && c.pid != nil:
			ctx.Send(c.pid, clientGone{})
		}
	}
}
