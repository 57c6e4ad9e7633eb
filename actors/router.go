package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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

// Config is what the router needs to know of the server's configuration.
type Config struct {
	// Channels are the request channels the router hears, and the commit
	// channel, reserved like them so that no client may answer there.
	Channels      messages.Channels
	AcceptTimeout time.Duration
	// MaxStreams bounds fetch streams and persists together (0: no limit).
	MaxStreams      int
	PageSize        int
	MaxBufferedRows int
	// ReadTimeout bounds each read of a stream's rows (0: none).
	ReadTimeout time.Duration
	// SubscribeTimeout bounds the wait for Redis to confirm a subscription.
	SubscribeTimeout time.Duration
	// AdmissionDelay is how long a full server leaves a request to the
	// others (0: AdmissionDelay).
	AdmissionDelay time.Duration
	Request        messages.RequestLimits
	// ChildMiddleware wraps the Receive of every stream actor
	// (instrumentation, and fault injection in tests). Persists have no
	// actor of their own.
	ChildMiddleware []actor.ReceiverMiddleware
	// RouterMiddleware wraps the router's own Receive.
	RouterMiddleware []actor.ReceiverMiddleware
	// FollowIdle ends a followed stream whose channel has had no
	// subscriber that long (0: 30 s).
	FollowIdle time.Duration
	// ServerID names this server to durable consumers' holders.
	ServerID string
}

// Deps are the router's connections to the outside.
type Deps struct {
	Builder       *sqlbuild.Builder
	Store         cursor.Store
	Persister     Persister
	Subscriptions Subscriptions
	Publisher     Publisher
	// Claims decides which server answers on a channel; Finished, if not
	// nil, tells which channels' ends were announced (fed by the
	// subscriber's filter).
	Claims   Claims
	Finished *Finished
	Logger   *slog.Logger
	// Registry, if not nil, lists every actor for operators.
	Registry *supervision.Registry
	// Metrics, if not nil, counts requests, streams and rows.
	Metrics *metrics.Metrics
	// Routes, if not nil, is kept up to date with the running streams, for
	// the subscriber to deliver controls to them directly.
	Routes *Routes
	// Readers, if not nil, runs the streams' page reads; otherwise each
	// read has a goroutine of its own.
	Readers *Readers
	// Dispatcher runs the streams (a Pool); nil: a Pool of the router's
	// own, for as long as the process lives.
	Dispatcher actor.Dispatcher
	// Frontier, Consumers and Listeners serve followed streams and
	// durable consumers; without them such fetches are refused.
	Frontier  Frontier
	Consumers Consumers
	Listeners Listeners
}

// Drain asks the router to stop admitting and to end every fetch stream
// with "error"; persists in flight finish. Done is closed once no child is
// left. Sent by the server on shutdown; not on the wire.
type Drain struct {
	Done chan struct{}
}

// Abort ends every fetch stream with "error" for reason, as a Redis
// interruption does. Sent by operators and tests; not on the wire.
type Abort struct {
	Reason messages.Reason
}

// ChildCount asks the router how many children it holds; it replies with
// an int. For tests and operators.
type ChildCount struct{}

// StopChild asks the router to end one child, named as the registry names
// it ("stream:<channel>", "persist:<channel>"), with "error" on its channel.
// The router replies true if it found the child. Sent by operators; not on
// the wire.
type StopChild struct {
	Name string
}

// subscribeTimedOut fires when Redis did not confirm a subscription.
type subscribeTimedOut struct {
	channel string
	seq     uint64
}

type childKind int

const (
	fetchChild childKind = iota
	persistChild
)

// child is the router's record of one response channel in use.
type child struct {
	kind childKind
	pid  *actor.PID // nil while the subscription is pending, and for a persist
	req  messages.ReceivedRequest
	sel  *sqlbuild.Select
	// ending: the child published its terminal; its channel is already
	// unsubscribed and the name is freed when it has stopped. ended says
	// how, for the metrics.
	ending     bool
	ended      messages.Ending
	live       *supervision.Live
	pendingSeq uint64
	stopTimer  scheduler.CancelFunc
	// claim is the channel's claim, won before anything was published.
	claim Claim
	// seen is when the channel last had a subscriber, as far as the
	// router checked (followed streams).
	seen time.Time
}

// router owns the request channels' traffic and the channel-to-child map.
type router struct {
	cfg  Config
	deps Deps

	children map[string]*child // by response channel
	byPID    map[string]string // child PID id to channel
	// pending are the requests whose claims are being asked for; asking
	// counts those asked for at once (not after an admission delay).
	pending map[string]*pendingRequest
	asking  int
	seq     uint64
	// followCheck: a count of followers' subscribers is scheduled.
	followCheck bool
	// draining is set by Drain: nothing new is admitted. drainDone is
	// closed once the last child is gone.
	draining  bool
	drainDone chan struct{}
}

// NewRouterProps returns the props of the router. Its children are stopped,
// never restarted, when they fail (supervision.StopAndReport).
func NewRouterProps(cfg Config, deps Deps) *actor.Props {
	if cfg.SubscribeTimeout <= 0 {
		cfg.SubscribeTimeout = 5 * time.Second
	}
	if cfg.AdmissionDelay <= 0 {
		cfg.AdmissionDelay = AdmissionDelay
	}
	if deps.Dispatcher == nil {
		deps.Dispatcher = NewStreamPool()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &router{cfg: cfg, deps: deps, children: map[string]*child{}, byPID: map[string]string{},
			pending: map[string]*pendingRequest{}}
	}, actor.WithSupervisor(supervision.StopAndReport(deps.Logger)), actor.WithReceiverMiddleware(cfg.RouterMiddleware...))
}

func (r *router) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case messages.Inbound:
		switch msg.Channel {
		case r.cfg.Channels.Fetch:
			r.request(ctx, fetchChild, msg)
		case r.cfg.Channels.Persist:
			r.request(ctx, persistChild, msg)
		case r.cfg.Channels.FetchNext:
			r.legacyNext(ctx, msg.Payload)
		default:
			r.control(ctx, msg.Channel, msg.Payload)
		}
	case messages.Subscribed:
		r.subscribed(ctx, msg.Channel)
	case claimed:
		r.claimAnswered(ctx, msg)
	case claimLater:
		if p := r.pending[msg.channel]; p != nil && p.seq == msg.seq {
			r.ask(ctx, msg.channel, p)
		}
	case ClaimLost:
		r.claimLost(ctx, msg.Channel)
	case checkFollowers:
		r.checkFollowers(ctx)
	case followersHeard:
		r.followersHeard(ctx, msg)
	case subscribeTimedOut:
		if c := r.children[msg.channel]; c != nil && c.kind == fetchChild && c.pid == nil && c.pendingSeq == msg.seq {
			r.refusePending(ctx, msg.channel, messages.ReasonUnavailable, "Redis did not confirm the subscription")
		}
	case streamEnded:
		// The child stops itself only through here, so that how it ended is
		// recorded before its Terminated (a system message, which would
		// overtake this one) arrives.
		if c := r.children[msg.channel]; c != nil && !c.ending {
			c.ending, c.ended = true, msg.ending
			r.deps.Routes.remove(msg.channel)
			if c.kind == fetchChild {
				r.unsubscribe(msg.channel)
			}
			ctx.Stop(c.pid)
		}
	case persistEnded:
		r.persistDone(msg)
	case *actor.Terminated:
		r.terminated(ctx, msg.Who)
	case messages.BusInterrupted:
		r.abortAll(ctx, messages.ReasonUnavailable)
	case Abort:
		r.abortAll(ctx, msg.Reason)
	case *Drain:
		r.draining, r.drainDone = true, msg.Done
		r.abortAll(ctx, messages.ReasonShutdown)
		r.checkDrained()
	case ChildCount:
		ctx.Respond(len(r.children))
	case StopChild:
		ctx.Respond(r.stopChild(ctx, msg.Name))
	case *actor.Restarting:
		// The children are about to be stopped with this instance: their
		// clients hear "error", and their channels are released, since the
		// next instance starts with an empty map.
		for channel, c := range r.children {
			if !c.ending {
				r.publishError(c, messages.ReasonInternal, "")
				if c.kind == fetchChild {
					r.unsubscribe(channel)
				}
			}
			c.ended = messages.EndingError
			r.release(channel, c)
		}
	}
}

// ChildFailed is called by the supervision strategy, on the router's own
// goroutine, when a child panicked: its client must hear "error" rather than
// wait for a timeout (supervision.FailureHandler).
func (r *router) ChildFailed(child *actor.PID, reason any) {
	channel, ok := r.byPID[child.Id]
	if !ok {
		return
	}
	c := r.children[channel]
	if c == nil || c.ending {
		return
	}
	r.deps.Logger.Error("stream actor failed", slog.String("channel", channel), slog.String("reason", string(messages.ReasonInternal)), slog.Any("panic", reason))
	r.publishError(c, messages.ReasonInternal, "")
	c.ending, c.ended = true, messages.EndingError
	r.deps.Routes.remove(channel)
	c.live.SetError(fmt.Sprint(reason))
	if c.kind == fetchChild {
		r.unsubscribe(channel)
	}
}

func (k childKind) String() string {
	if k == persistChild {
		return "persist"
	}
	return "stream"
}

// admit records a child for channel: in the router's map, the registry and
// the metrics. release undoes it, whichever way the child ended.
func (r *router) admit(channel string, c *child, state string) {
	r.children[channel] = c
	c.live = r.deps.Registry.Add(c.kind.String()+":"+channel, "router", c.kind.String(), channel, state)
	r.deps.Metrics.StreamOpened(c.kind.String())
}

func (r *router) release(channel string, c *child) {
	delete(r.children, channel)
	r.deps.Routes.remove(channel)
	r.deps.Registry.Remove(c.kind.String() + ":" + channel)
	ended := c.ended
	if ended == "" {
		ended = messages.EndingError
	}
	r.deps.Metrics.StreamEnded(c.kind.String(), string(ended))
}

// endingStopped is how a child an operator stopped ended: "error" on the
// wire (reason stopped), but "stopped" in the metrics, so that stops are
// not counted as failures.
const endingStopped messages.Ending = "stopped"

// endingFor is how a child ended with "error" for reason.
func endingFor(reason messages.Reason) messages.Ending {
	if reason == messages.ReasonStopped {
		return endingStopped
	}
	return messages.EndingError
}

// stopChild ends the named child with "error" (reason stopped).
func (r *router) stopChild(ctx actor.Context, name string) bool {
	kind, channel, _ := strings.Cut(name, ":")
	c := r.children[channel]
	if c == nil || c.kind.String() != kind || c.ending {
		return false
	}
	r.deps.Logger.Info("stopping actor on request", slog.String("actor", name), slog.String("channel", channel))
	switch {
	case c.kind == persistChild:
		// A persist's insert is already with the batcher: it commits and
		// replies; stopping it would only hide the outcome.
		return false
	case c.pid == nil:
		r.refusePending(ctx, channel, messages.ReasonStopped, "stopped by an operator")
	default:
		ctx.Send(c.pid, abort{reason: messages.ReasonStopped})
	}
	return true
}

// request takes a fetch or persist request in: once its channel's claim is
// won (see serve), this server answers it; a request no server can answer
// (no usable channel, a request channel, a channel in use here) is logged
// and dropped.
func (r *router) request(ctx actor.Context, kind childKind, msg messages.Inbound) {
	requestKind := "fetch"
	if kind == persistChild {
		requestKind = "persist"
	}
	r.deps.Metrics.RequestReceived(requestKind)
	channel, reason, ok := messages.PeekRequest(msg.Payload, r.cfg.Request)
	if !ok {
		// No channel at a glance: the full decode says why, or finds it
		// (in a request too long to read whole).
		req, err := messages.DecodeRequest(msg.Payload, r.cfg.Request)
		if errors.Is(err, messages.ErrNoChannel) {
			r.deps.Logger.Warn("request refused", slog.String("reason", string(messages.ReasonBadRequest)), slog.Any("err", err))
			r.deps.Metrics.RequestRefused(string(messages.ReasonBadRequest))
			return
		}
		channel, reason = req.Channel, req.Reason
	}
	if r.cfg.Channels.Reserved(channel) {
		// Answering there would be read as a request: log only.
		r.deps.Logger.Warn("request refused: response channel is a request channel", slog.String("channel", channel), slog.String("reason", string(messages.ReasonRefused)))
		r.deps.Metrics.RequestRefused(string(messages.ReasonRefused))
		return
	}
	if r.children[channel] != nil || r.pending[channel] != nil {
		// Publishing "error" there would end the other client's stream.
		r.deps.Logger.Warn("request refused: response channel is in use", slog.String("channel", channel), slog.String("reason", string(messages.ReasonRefused)))
		r.deps.Metrics.RequestRefused(string(messages.ReasonRefused))
		return
	}
	r.seq++
	p := &pendingRequest{kind: kind, payload: msg.Payload, reason: reason, seq: r.seq, takeover: r.deps.Finished.Before(channel, msg.Seq)}
	r.pending[channel] = p
	r.ask(ctx, channel, p)
}

// full reports whether the server is at its admission limit, counting the
// claims it asks for at once (a burst of requests must not all get in).
func (r *router) full() bool {
	return r.cfg.MaxStreams > 0 && len(r.children)+r.asking >= r.cfg.MaxStreams
}

// serve answers a request whose channel this server claimed: a refusal
// ("error"), or a child that streams or persists.
func (r *router) serve(ctx actor.Context, channel string, p *pendingRequest, claim Claim) {
	req, err := messages.DecodeRequest(p.payload, r.cfg.Request)
	if req.Channel == "" {
		req.Channel, req.Reason = channel, p.reason
	}
	switch {
	case err != nil:
		r.refuse(channel, claim, req, messages.ReasonBadRequest, err.Error())
		return
	case r.draining:
		r.refuse(channel, claim, req, messages.ReasonShutdown, "the server is shutting down")
		return
	case p.waits == 2 && len(r.children) >= r.cfg.MaxStreams:
		// Claimed after two admission delays: no server with room took it.
		r.deps.Metrics.ClusterRefused()
		r.refuse(channel, claim, req, messages.ReasonRefused, "too many concurrent streams")
		return
	}
	switch p.kind {
	case fetchChild:
		sel, err := r.deps.Builder.Select(req.Query, sqlbuild.Scope{})
		if err == nil {
			err = r.followable(req, sel)
		}
		if err != nil {
			r.refuse(channel, claim, req, messages.ReasonBadRequest, err.Error())
			return
		}
		r.seq++
		c := &child{kind: fetchChild, req: req, sel: sel, pendingSeq: r.seq, claim: claim, seen: time.Now()}
		if req.Follow {
			r.armFollowCheck(ctx)
		}
		r.admit(channel, c, "subscribing")
		// Rows may be published only once Redis confirms the subscription,
		// or a fast "accepted" would be lost: the stream starts on
		// messages.Subscribed.
		subCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = r.deps.Subscriptions.Subscribe(subCtx, channel)
		cancel()
		if err != nil {
			r.deps.Logger.Warn("subscribe failed", slog.String("channel", channel), slog.Any("err", err))
			r.refusePending(ctx, channel, messages.ReasonUnavailable, "could not subscribe the response channel")
			return
		}
		c.stopTimer = scheduler.NewTimerScheduler(ctx.ActorSystem().Root).
			SendOnce(r.cfg.SubscribeTimeout, ctx.Self(), subscribeTimedOut{channel: channel, seq: c.pendingSeq})
	case persistChild:
		// A persist hears nothing from its client, so it needs no
		// subscription and goes to the batcher at once.
		r.persist(ctx, channel, req, claim)
	}
}

// subscribed starts the stream whose subscription Redis just confirmed.
// Confirmations of other channels (request channels, resubscriptions after
// a reconnect) are ignored.
func (r *router) subscribed(ctx actor.Context, channel string) {
	c := r.children[channel]
	if c == nil || c.pid != nil || c.kind != fetchChild {
		return
	}
	if c.stopTimer != nil {
		c.stopTimer()
		c.stopTimer = nil
	}
	settings := streamSettings{
		store: r.deps.Store, readers: r.deps.Readers, publisher: r.deps.Publisher, claims: r.deps.Claims, logger: r.deps.Logger, metrics: r.deps.Metrics,
		acceptTimeout: r.cfg.AcceptTimeout, pageSize: r.cfg.PageSize, maxBuffered: r.cfg.MaxBufferedRows, readTimeout: r.cfg.ReadTimeout,
		frontier: r.deps.Frontier, consumers: r.deps.Consumers, server: r.cfg.ServerID,
	}
	req, sel, live, claim := c.req, c.sel, c.live, c.claim
	queued := new(atomic.Int32)
	// Streams run on the server's pool of goroutines (Pool): never on the
	// goroutine of whoever sends them a message, and without a goroutine
	// started per message.
	props := r.childProps(func() actor.Actor { return newStream(settings, channel, req, sel, live, claim, queued) },
		actor.WithDispatcher(r.deps.Dispatcher))
	pid, err := ctx.SpawnNamed(props, "stream:"+channel)
	if err != nil {
		r.deps.Logger.Error("could not start stream", slog.String("channel", channel), slog.Any("err", err))
		r.refusePending(ctx, channel, messages.ReasonInternal, "could not start the stream")
		return
	}
	c.pid, c.sel = pid, nil
	r.byPID[pid.Id] = channel
	r.deps.Routes.add(channel, pid, queued, req.Window)
}

// streamThroughput is how many messages a stream handles in a row before it
// yields its goroutine.
const streamThroughput = 300

func (r *router) childProps(producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	return actor.PropsFromProducer(producer, append([]actor.PropsOption{actor.WithReceiverMiddleware(r.cfg.ChildMiddleware...)}, opts...)...)
}

// control forwards what a client says on its response channel to its stream.
func (r *router) control(ctx actor.Context, channel string, payload []byte) {
	c := r.children[channel]
	if c == nil || c.pid == nil || c.ending || c.kind != fetchChild {
		return
	}
	if kind := messages.ParseControl(payload); kind != messages.ControlNone {
		ctx.Send(c.pid, control{kind: kind})
	}
}

// legacyNext is the original's acceptance: {"channel": C} on fetch-next.
func (r *router) legacyNext(ctx actor.Context, payload []byte) {
	r.deps.Metrics.RequestReceived("fetch_next")
	var next messages.NextRequest
	if len(payload) > r.cfg.Request.MaxBytes && r.cfg.Request.MaxBytes > 0 {
		return
	}
	if err := json.Unmarshal(payload, &next); err != nil || next.Channel == "" {
		r.deps.Logger.Warn("fetch-next ignored: no channel", slog.String("reason", string(messages.ReasonBadRequest)))
		return
	}
	r.control(ctx, next.Channel, messages.AcceptedJSON)
}

func (r *router) terminated(ctx actor.Context, who *actor.PID) {
	channel, ok := r.byPID[who.Id]
	if !ok {
		return
	}
	delete(r.byPID, who.Id)
	if c := r.children[channel]; c != nil && c.pid != nil && c.pid.Id == who.Id {
		if !c.ending && c.kind == fetchChild {
			r.unsubscribe(channel)
		}
		r.release(channel, c)
	}
	r.checkDrained()
}

// abortAll ends every fetch stream with "error" and refuses pending ones.
// Persists are left to commit and reply.
func (r *router) abortAll(ctx actor.Context, reason messages.Reason) {
	for channel, c := range r.children {
		switch {
		case c.ending || c.kind != fetchChild:
		case c.pid == nil:
			r.refusePending(ctx, channel, reason, safeMessage(reason, nil))
		default:
			ctx.Send(c.pid, abort{reason: reason})
		}
	}
}

func (r *router) refusePending(_ actor.Context, channel string, reason messages.Reason, message string) {
	c := r.children[channel]
	if c == nil {
		return
	}
	if c.stopTimer != nil {
		c.stopTimer()
	}
	c.ended = endingFor(reason)
	r.release(channel, c)
	r.unsubscribe(channel)
	r.refuse(channel, c.claim, c.req, reason, message)
	r.checkDrained()
}

// refuse answers a request that gets no child with "error", and ends its
// claim.
func (r *router) refuse(channel string, claim Claim, req messages.ReceivedRequest, reason messages.Reason, message string) {
	r.deps.Metrics.RequestRefused(string(reason))
	r.deps.Logger.Warn("request refused", slog.String("channel", channel), slog.String("reason", string(reason)), slog.String("err", message))
	if message == "" {
		message = safeMessage(reason, nil)
	}
	r.deps.Claims.Finish(claim, [][]byte{messages.ErrorPayload(req.Reason, reason, message)}, nil)
}

// publishError ends a child's channel with "error" for reason, on the
// child's behalf (it failed, or the router restarts).
func (r *router) publishError(c *child, reason messages.Reason, message string) {
	if message == "" {
		message = safeMessage(reason, nil)
	}
	r.deps.Claims.Finish(c.claim, [][]byte{messages.ErrorPayload(c.req.Reason, reason, message)}, nil)
}

func (r *router) unsubscribe(channel string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.deps.Subscriptions.Unsubscribe(ctx, channel); err != nil {
		r.deps.Logger.Warn("unsubscribe failed", slog.String("channel", channel), slog.Any("err", err))
	}
}

func (r *router) checkDrained() {
	if r.drainDone != nil && len(r.children) == 0 && len(r.pending) == 0 {
		close(r.drainDone)
		r.drainDone = nil
	}
}
