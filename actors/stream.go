package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// Messages of the stream actor; none goes on the wire.
type (
	// control is an "accepted" or "end" heard on the stream's channel,
	// forwarded by the router, or delivered by Routes (routed: counted in
	// the stream's queued controls).
	control struct {
		kind   messages.Control
		routed bool
	}
	// publishRetry tries again the rows a full publish queue refused.
	publishRetry struct{}
	// pageRead carries the result of a cursor read back to the stream: each
	// row already as its JSON payload.
	pageRead struct {
		rows [][]byte
		keys []int64 // the rows' keys, for a durable consumer
		done bool
		err  error
	}
	// acceptTimeout fires when the oldest unaccepted row waited too long;
	// seq tells a stale timer from the current one.
	acceptTimeout struct{ seq uint64 }
	// publishFailed reports that Redis refused a row.
	publishFailed struct{ err error }
	// abort ends the stream with "error" for a reason outside it (shutdown,
	// Redis interruption, an operator), or without a word when silent (its
	// claim is gone).
	abort struct {
		reason messages.Reason
		silent bool
	}
	// leaseCheck retries publishing rows held while the claim's lease could
	// not be vouched for.
	leaseCheck struct{}
	// streamEnded tells the router that a child published its terminal (or
	// heard the client's "end") and is stopping.
	streamEnded struct {
		channel string
		ending  messages.Ending
	}
)

// streamSettings are the per-server settings of streams.
type streamSettings struct {
	store         cursor.Store
	readers       *Readers // nil: a goroutine per read
	publisher     Publisher
	claims        Claims
	logger        *slog.Logger
	metrics       *metrics.Metrics
	acceptTimeout time.Duration
	pageSize      int
	maxBuffered   int
	readTimeout   time.Duration
	// frontier and consumers serve followed streams and durable
	// consumers (nil: they are refused before a stream starts); server
	// names this server to the consumers' holders.
	frontier  Frontier
	consumers Consumers
	server    string
}

// stream is one fetch: it reads pages, publishes rows while it has credit,
// and ends with exactly one terminal.
type stream struct {
	streamSettings
	channel string
	req     messages.ReceivedRequest
	window  int
	live    *supervision.Live // the registry entry; nil without a registry
	claim   Claim
	// held: rows wait because the claim's lease may have run out (the
	// server was paused, or Redis did not answer the renewals).
	held bool
	// paused: the publisher's queue was full; rows wait for publishRetry,
	// since pausedAt, waiting pauseWait more each time.
	paused    bool
	pausedAt  time.Time
	pauseWait time.Duration
	// queued counts the controls Routes delivered that this stream has not
	// received yet: past a bound, Routes drops extra "accepted"s.
	queued *atomic.Int32

	self    *actor.PID
	root    *actor.RootContext
	started time.Time
	// published hears Redis's answer to a row; made once, not per row.
	published func(error)

	sel *sqlbuild.Select
	// cursor is nil until a followed or consuming stream knows where it
	// starts (streamReady).
	cursor *cursor.Cursor
	// follow and consumer are set for followed streams and durable
	// consumers.
	follow   *following
	consumer *consuming
	// final is the terminal a consumer's stream publishes once the
	// consumer is released.
	final   *finale
	buffer  [][]byte // payloads of rows read and not yet published
	reading bool
	drained bool // the cursor has nothing more
	// ioCtx is the context of the stream's reads: stopping the stream
	// cancels the read in flight.
	ioCtx  context.Context
	cancel context.CancelFunc

	inflight  []time.Time // publish times of unaccepted rows, oldest first
	timerSeq  uint64
	stopTimer scheduler.CancelFunc
	sent      int
	finished  bool
}

func newStream(settings streamSettings, channel string, req messages.ReceivedRequest, sel *sqlbuild.Select, live *supervision.Live, claim Claim, queued *atomic.Int32) *stream {
	window := req.Window
	if window <= 0 {
		window = 1
	}
	s := &stream{
		streamSettings: settings,
		channel:        channel,
		req:            req,
		window:         window,
		live:           live,
		claim:          claim,
		queued:         queued,
		sel:            sel,
	}
	if req.Follow {
		s.follow = &following{frontier: settings.frontier, table: sel.Table.QualifiedName()}
	}
	if req.Consumer != "" {
		s.consumer = &consuming{store: settings.consumers, name: req.Consumer, query: string(req.Query.AppendJSON(nil)),
			server: settings.server, holder: fmt.Sprintf("%s/%s/%d", settings.server, channel, time.Now().UnixNano()), reset: req.Reset}
	}
	if s.follow == nil && s.consumer == nil {
		s.cursor = cursor.New(sel, settings.store, s.cursorOptions())
	}
	return s
}

// cursorOptions are how the stream's cursor reads.
func (s *stream) cursorOptions() cursor.Options {
	return cursor.Options{DecodeJSON: s.req.Decode, Encode: true,
		FirstPage: cursor.FirstPage(s.window, s.pageSize), PageSize: s.pageSize,
		MaxBuffered: s.maxBuffered, ReadTimeout: s.readTimeout, Logger: s.logger, Channel: s.channel}
}

// finale is a terminal held until the consumer is released.
type finale struct {
	ending   messages.Ending
	terminal []byte
	owned    bool
}

func (s *stream) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.root, s.started = ctx.Self(), ctx.ActorSystem().Root, time.Now()
		self, root := s.self, s.root
		s.published = func(err error) {
			if err != nil {
				root.Send(self, publishFailed{err: err})
			}
		}
		s.ioCtx, s.cancel = context.WithCancel(context.Background())
		if s.cursor == nil {
			s.prepare()
		} else {
			s.read()
		}
		s.report()
		s.logger.Debug("stream started", slog.String("channel", s.channel))
	case pageRead:
		s.reading = false
		if msg.err != nil {
			reason := messages.ReasonDB
			switch {
			case errors.Is(msg.err, cursor.ErrTooLarge):
				reason = messages.ReasonBadRequest
			case errors.Is(msg.err, cursor.ErrDeadline):
				s.metrics.ReadDeadline()
			}
			s.fail(ctx, reason, msg.err)
			return
		}
		if len(s.buffer) == 0 {
			s.buffer = msg.rows // the page's own slice: no copy
		} else {
			s.buffer = append(s.buffer, msg.rows...)
		}
		if s.consumer != nil {
			s.consumer.keys = append(s.consumer.keys, msg.keys...)
		}
		s.drained = msg.done
		s.pump(ctx)
		s.report()
	case control:
		if msg.routed && s.queued != nil {
			s.queued.Add(-1)
		}
		switch msg.kind {
		case messages.ControlAccepted:
			if len(s.inflight) == 0 || s.finished {
				return // an extra "accepted" grants nothing
			}
			s.metrics.Accepted(time.Since(s.inflight[0]))
			s.inflight = s.inflight[1:]
			if s.consumer != nil {
				s.consumer.rowAccepted()
				s.maybeRecord()
			}
			s.pump(ctx)
			s.report()
		case messages.ControlEnd:
			s.finish(ctx, messages.EndingClientEnd, nil, true)
		}
	case acceptTimeout:
		if msg.seq != s.timerSeq || s.finished {
			return
		}
		// The timer is not moved on every "accepted" (that would cost a
		// timer per row): it fires for the row that was oldest when it was
		// set, and checks the row that is oldest now.
		s.stopTimer = nil
		if len(s.inflight) == 0 {
			return
		}
		if time.Since(s.inflight[0]) < s.acceptTimeout {
			s.armTimer()
			return
		}
		s.finish(ctx, messages.EndingTimeout, messages.TimeoutJSON, true)
	case publishFailed:
		s.fail(ctx, messages.ReasonUnavailable, msg.err)
	case abort:
		if msg.silent {
			s.finish(ctx, messages.EndingError, nil, false)
			return
		}
		s.fail(ctx, msg.reason, nil)
	case leaseCheck:
		s.held = false
		s.pump(ctx)
	case publishRetry:
		s.paused = false
		s.pump(ctx)
		s.report()
	case streamReady:
		s.begin(ctx, msg)
	case frontierMoved:
		s.moved(ctx, msg.safe)
	case recordDue:
		s.consumer.armed = false
		if s.consumer.accepted > s.consumer.recorded && !s.consumer.recording {
			s.record()
		}
	case positionRecorded:
		s.positionRecorded(ctx, msg)
	case consumerReleased:
		if msg.err != nil {
			s.logger.Warn("release consumer", slog.String("consumer", s.consumer.name), slog.Any("err", msg.err))
		}
		s.conclude(ctx)
	case clientGone:
		s.logger.Info("followed stream ended: its channel has no subscriber", slog.String("channel", s.channel))
		s.finish(ctx, messages.EndingTimeout, messages.ErrorPayload(s.req.Reason, messages.ReasonTimeout, "the response channel has had no subscriber"), true)
	case *actor.Stopping:
		// However the stream ends (its terminal, a failure, a restart of the
		// router), its read and its timer go with it.
		if s.cancel != nil {
			s.cancel()
		}
		s.cancelTimer()
		if s.follow != nil && s.follow.cancel != nil {
			s.follow.cancel()
		}
	}
}

// pump publishes rows while the client has credit, keeps a page read ahead,
// and ends the stream once every row was sent and accepted.
func (s *stream) pump(ctx actor.Context) {
	if s.finished || s.cursor == nil {
		return
	}
	for len(s.inflight) < s.window && len(s.buffer) > 0 && !s.held && !s.paused {
		if !s.claim.Valid() {
			// Not a row on a lease that may have run out: a survivor may
			// have ended the stream already. The claim's next renewal
			// tells (ClaimLost ends the stream); until then, look again.
			s.held = true
			scheduler.NewTimerScheduler(s.root).SendOnce(leaseRecheck, s.self, leaseCheck{})
			break
		}
		if err := s.publisher.Publish(s.channel, s.buffer[0], s.published); err != nil {
			s.pause(ctx, err)
			return
		}
		s.buffer[0] = nil
		s.buffer = s.buffer[1:]
		if c := s.consumer; c != nil && len(c.keys) > 0 {
			c.inflight = append(c.inflight, c.keys[0])
			c.keys = c.keys[1:]
		}
		s.rowPublished()
	}
	s.pauseWait = 0
	// Read ahead once the buffer runs low, so the next page is there
	// before the client asks for it: "low" grows with the window, since a
	// wide window drains the buffer faster than a page read takes. (The
	// cursor is ours to read while no read runs.)
	if !s.drained && !s.reading && len(s.buffer) <= max(4*s.window, s.cursor.NextSize()/4) {
		s.read()
	}
	switch {
	case !s.drained || len(s.buffer) > 0 || s.reading:
	case s.follow != nil:
		// A followed stream never ends on its own: it waits for commits.
		s.watchFrontier()
	case len(s.inflight) == 0:
		s.finish(ctx, messages.EndingComplete, messages.EndJSON, true)
	}
}

// pause holds the rows while the publisher refuses them (its queue is
// full: Redis is slow or away): the buffer stays full, so no page is read
// either, and the rows go again on publishRetry, each wait twice the last,
// up to maxPauseWait. A stream held up longer than its accept timeout ends
// with "error". (A publisher closed for shutdown refuses too; the drain
// ends the stream.)
func (s *stream) pause(ctx actor.Context, err error) {
	switch {
	case s.pauseWait == 0:
		s.pausedAt, s.pauseWait = time.Now(), minPauseWait
	case time.Since(s.pausedAt) > s.acceptTimeout:
		s.fail(ctx, messages.ReasonUnavailable, fmt.Errorf("rows held for %s: %w", time.Since(s.pausedAt).Round(time.Millisecond), err))
		return
	default:
		s.pauseWait = min(2*s.pauseWait, maxPauseWait)
	}
	s.paused = true
	s.metrics.PublishPaused()
	s.live.SetState("paused")
	scheduler.NewTimerScheduler(s.root).SendOnce(s.pauseWait, s.self, publishRetry{})
}

// The waits of a stream whose rows the publisher's queue refused.
const (
	minPauseWait = 5 * time.Millisecond
	maxPauseWait = 500 * time.Millisecond
)

// rowPublished counts a row the publisher took.
func (s *stream) rowPublished() {
	s.sent++
	s.inflight = append(s.inflight, time.Now())
	if s.stopTimer == nil {
		s.armTimer()
	}
	s.metrics.RowSent()
	if s.follow != nil {
		s.metrics.FollowRowSent()
	}
	s.live.AddRows(1)
}

// report tells the registry where the stream stands.
func (s *stream) report() {
	if s.live == nil || s.finished {
		return
	}
	var deadline time.Time
	switch {
	case len(s.inflight) > 0:
		deadline = s.inflight[0].Add(s.acceptTimeout)
		s.live.SetState("waiting")
	case s.reading:
		s.live.SetState("reading")
	default:
		s.live.SetState("streaming")
	}
	s.live.SetFlow(s.window-len(s.inflight), len(s.inflight), deadline)
}

// armTimer starts the acceptance timer for the oldest unaccepted row.
func (s *stream) armTimer() {
	s.cancelTimer()
	if len(s.inflight) == 0 {
		return
	}
	s.timerSeq++
	wait := s.acceptTimeout - time.Since(s.inflight[0])
	s.stopTimer = scheduler.NewTimerScheduler(s.root).SendOnce(wait, s.self, acceptTimeout{seq: s.timerSeq})
}

func (s *stream) cancelTimer() {
	if s.stopTimer != nil {
		s.stopTimer()
		s.stopTimer = nil
	}
}

// read starts one cursor read off the actor.
func (s *stream) read() {
	s.reading = true
	cur, self, root, ioCtx := s.cursor, s.self, s.root, s.ioCtx
	read := func() {
		page, done, err := cur.Next(ioCtx)
		root.Send(self, pageRead{rows: page.Payloads, keys: page.Keys, done: done, err: err})
	}
	switch {
	case s.readers == nil:
		go read()
	case cur.Whole():
		s.readers.RunWhole(read)
	default:
		s.readers.Run(read)
	}
}

func (s *stream) fail(ctx actor.Context, reason messages.Reason, err error) {
	if s.finished {
		return
	}
	attrs := []any{slog.String("channel", s.channel), slog.String("reason", string(reason))}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
		s.live.SetError(err.Error())
	}
	s.logger.Warn("stream failed", attrs...)
	s.finish(ctx, endingFor(reason), messages.ErrorPayload(s.req.Reason, reason, safeMessage(reason, err)), true)
}

// finish publishes the terminal (none when the client ended) with the end
// of the claim, when it still owns the claim (owned), and tells the
// router, which stops the actor.
func (s *stream) finish(ctx actor.Context, ending messages.Ending, terminal []byte, owned bool) {
	if s.finished {
		return
	}
	s.finished = true
	s.cancelTimer()
	s.live.SetState("ending")
	s.live.SetFlow(0, 0, time.Time{})
	s.final = &finale{ending: ending, terminal: terminal, owned: owned}
	if s.consumer != nil && s.consumer.held {
		// The position is recorded and the consumer freed before the
		// client hears the terminal: a fetch right after it is served.
		s.release()
		return
	}
	s.conclude(ctx)
}

// conclude publishes the terminal finish decided on, and tells the router.
func (s *stream) conclude(ctx actor.Context) {
	ending, terminal, owned := s.final.ending, s.final.terminal, s.final.owned
	if owned {
		var last [][]byte
		if terminal != nil {
			last = [][]byte{terminal}
		}
		s.claims.Finish(s.claim, last, nil)
	}
	s.logger.Info("stream ended", slog.String("channel", s.channel), slog.String("ending", string(ending)),
		slog.Int("rows", s.sent), slog.Duration("elapsed", time.Since(s.started)))
	// The router stops this actor once it recorded the ending.
	ctx.Send(ctx.Parent(), streamEnded{channel: s.channel, ending: ending})
}

// leaseRecheck is how long rows wait before the stream looks again whether
// its claim's lease holds.
const leaseRecheck = 200 * time.Millisecond

// safeMessage is what a client that opted in to reasons reads: never the
// database's own text, which may describe the schema.
func safeMessage(reason messages.Reason, err error) string {
	switch reason {
	case messages.ReasonDB:
		return "the database failed to run the query"
	case messages.ReasonUnavailable:
		return "the server lost its Redis connection"
	case messages.ReasonShutdown:
		return "the server is shutting down"
	case messages.ReasonInternal:
		return "internal error"
	case messages.ReasonStopped:
		return "stopped by an operator"
	}
	if err != nil {
		return err.Error()
	}
	return string(reason)
}
