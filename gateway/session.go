package gateway

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/supervision"
)

// sessionRef is how handlers find a session, and what outlives its actor:
// releasing it frees everything the session held, however it ended.
type sessionRef struct {
	id     string
	pid    *actor.PID
	owner  string
	ctx    context.Context // of the session's tasks
	cancel context.CancelFunc
	// stream is the attached stream, for a failure that ends the actor
	// before it can say goodbye itself.
	stream atomic.Pointer[sessionStream]
	once   sync.Once
}

// release frees the session: its tasks, its keys, its place in the count.
// Safe from any goroutine, any number of times.
func (g *Gateway) release(ref *sessionRef) {
	ref.once.Do(func() {
		ref.cancel()
		g.hub.removeSession(ref.id)
		g.hub.sessionClosed()
		g.sessions.Delete(ref.id)
		g.nSession.Add(-1)
	})
}

// sessionStream is one GET /sessions/{id}/stream response: the actor
// queues frames on out, the handler goroutine writes them.
type sessionStream struct {
	out  chan outFrame
	conn *conn
}

// outFrame is one message with its sequence number.
type outFrame struct {
	seq   int64
	frame []byte
}

// Messages of a session actor; none goes on the wire.
type (
	// attachStream makes s the session's stream, resuming after seq after
	// (or after what the last stream wrote); answered with attached.
	attachStream struct {
		s        *sessionStream
		after    int64
		hasAfter bool
	}
	// attached says where the stream resumes, or why it cannot.
	attached struct {
		after int64
		err   error
	}
	// streamFlushed says the writer wrote n more frames of s.
	streamFlushed struct {
		s *sessionStream
		n int
	}
	// streamGone says s's client left.
	streamGone  struct{ s *sessionStream }
	listenReq   struct{ key listenKey }
	unlistenReq struct{ key string }
	// keysReply answers listen and unlisten.
	keysReply struct {
		keys []string
		err  error
	}
	// disconnectReq ends the session with "closed"; answered with nil.
	disconnectReq struct{}
	// notifyMsg is an event for key, from the hub.
	notifyMsg struct {
		key string
		ev  *Event
	}
	// serverMsg is a server key's payload, from the hub.
	serverMsg struct {
		key     string
		payload []byte
	}
	// lostMsg says that key's notifications may have a hole (commit
	// notifications lost), from the hub.
	lostMsg struct {
		key, reason string
	}
	// graceExpired drops a session left without a stream; gen tells a
	// stale timer from the current one.
	graceExpired struct{ gen uint64 }
)

// session is the actor of one session. It owns the keys, the tasks, the
// sequence numbers and the history that lets a stream resume; its stream
// is written by the handler goroutine, fed through a bounded channel with
// credit: at most Buffer frames are queued or being written.
type session struct {
	g    *Gateway
	ref  *sessionRef
	p    *Principal
	self *actor.PID
	root *actor.RootContext
	live *supervision.Live

	keys map[string]*listener

	tasks     map[string]*task
	taskOrder []string
	taskSeq   int

	seq  int64 // last sequence number given
	hist history

	stream   *sessionStream
	pushed   int64 // last sequence number handed to the stream
	inflight int   // frames handed to the stream and not yet written
	kickAt   int64 // backlog past which the stream is told to reconnect

	graceGen  uint64
	stopGrace scheduler.CancelFunc
	closed    bool
}

func newSession(g *Gateway, ref *sessionRef, p *Principal) *session {
	return &session{g: g, ref: ref, p: p, keys: map[string]*listener{}, tasks: map[string]*task{},
		hist: newHistory(g.cfg.SessionHistory)}
}

func (s *session) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.self, s.root = ctx.Self(), ctx.ActorSystem().Root
		s.startGrace()
	case *supervision.Live:
		s.live = msg
		s.live.SetState("waiting for stream")
	case attachStream:
		ctx.Respond(s.attach(ctx, msg))
	case streamFlushed:
		if msg.s == s.stream {
			s.inflight -= msg.n
			s.push(ctx)
			s.pump(ctx)
			s.report()
		}
	case streamGone:
		if msg.s == s.stream {
			s.detach()
		}
	case listenReq:
		ctx.Respond(s.listen(msg.key))
	case unlistenReq:
		if l := s.keys[msg.key]; l != nil {
			s.g.hub.remove(l)
			delete(s.keys, msg.key)
		}
		ctx.Respond(keysReply{keys: s.keyList()})
	case notifyMsg:
		if s.keys[msg.key] != nil {
			data := append([]byte(`{"key":`), ordjson.AppendString(nil, msg.key)...)
			data = append(append(append(data, `,"event":`...), msg.ev.JSON...), '}')
			s.emit(ctx, "notify", data)
		}
	case serverMsg:
		if s.keys[msg.key] != nil {
			s.emit(ctx, "notify", msg.payload)
		}
	case lostMsg:
		// The client hears it, in order with its notifies, and can read
		// what it missed (a fetch task); the key goes on listening.
		if s.keys[msg.key] != nil {
			data := append([]byte(`{"key":`), ordjson.AppendString(nil, msg.key)...)
			data = append(append(data, `,"reason":`...), ordjson.AppendString(nil, msg.reason)...)
			s.emit(ctx, "lost", append(data, '}'))
		}
	case taskReq:
		ctx.Respond(s.startTask(msg))
		s.pump(ctx) // a fetch asks for its first page
	case cancelReq:
		ctx.Respond(s.cancelTask(ctx, msg.id))
	case fetchPage:
		s.fetched(ctx, msg)
	case persistStep:
		s.persisted(ctx, msg)
	case disconnectReq:
		s.close(ctx, "disconnected")
		ctx.Respond(nil)
	case endChild:
		s.close(ctx, msg.reason)
	case graceExpired:
		if msg.gen == s.graceGen && s.stream == nil && !s.closed {
			s.g.logger.Info("session dropped: no stream within the grace period",
				slog.String("actor", "session:"+s.ref.id), slog.Duration("grace", s.g.cfg.SessionGrace))
			s.closed = true
			s.g.release(s.ref)
			ctx.Stop(s.self)
		}
	case *actor.Stopping:
		s.cancelGrace()
		for _, t := range s.tasks {
			t.cancel()
		}
		if s.stream != nil {
			s.stream.conn.end(ending{reason: "stopped", frame: "closed", drain: true})
		}
		s.g.release(s.ref)
	}
}

// attach makes a new stream the session's, resuming after its
// Last-Event-ID (or after what the previous stream wrote).
func (s *session) attach(ctx actor.Context, msg attachStream) attached {
	if s.closed {
		return attached{err: notFound("no session %q", s.ref.id)}
	}
	after := msg.after
	if !msg.hasAfter {
		after = s.pushed - int64(s.inflight)
	}
	if after > s.seq {
		return attached{err: badRequest("Last-Event-ID %d is ahead of the session, which is at %d", after, s.seq)}
	}
	if s.stream != nil {
		// One stream per session: the newer one wins (the older is most
		// likely a connection whose client already left).
		s.stream.conn.end(ending{reason: "replaced by a newer stream"})
	}
	s.cancelGrace()
	s.stream, s.pushed, s.inflight = msg.s, after, 0
	s.ref.stream.Store(msg.s)
	if after+1 < s.hist.oldest() {
		s.close(ctx, "history lost: the messages after "+strconv.FormatInt(after, 10)+" are no longer kept")
		return attached{after: after}
	}
	s.push(ctx)
	s.kickAt = max(int64(s.g.cfg.Buffer), s.seq-s.pushed)
	s.report()
	s.pump(ctx)
	return attached{after: after}
}

// detach forgets the stream; the session waits for another one for the
// grace period. What the stream had not confirmed written is sent again.
func (s *session) detach() {
	s.stream = nil
	s.ref.stream.Store(nil)
	s.pushed -= int64(s.inflight)
	s.inflight = 0
	s.report()
	s.startGrace()
}

// emit gives a message the next sequence number, keeps it for resumption
// and queues it for the stream.
func (s *session) emit(ctx actor.Context, event string, data []byte) {
	if s.closed {
		return
	}
	s.seq++
	s.hist.put(s.seq, appendFrame(nil, strconv.FormatInt(s.seq, 10), event, data))
	s.live.AddRows(1)
	s.push(ctx)
	if s.stream != nil && s.seq-s.pushed > s.kickAt {
		backlog := s.seq - s.pushed
		s.g.deps.Metrics.FeedLost(metrics.FeedSlowReader)
		s.stream.conn.end(ending{reason: "slow reader: " + strconv.FormatInt(backlog, 10) + " messages waiting", frame: "reconnect"})
		s.detach()
	}
}

// push hands the stream what it has room for. The channel holds Buffer+1
// frames and inflight never exceeds that, so the send never blocks.
func (s *session) push(ctx actor.Context) {
	for s.stream != nil && s.inflight <= s.g.cfg.Buffer && s.pushed < s.seq {
		frame, ok := s.hist.get(s.pushed + 1)
		if !ok {
			s.close(ctx, "history lost: the reader fell more than "+strconv.Itoa(s.g.cfg.SessionHistory)+" messages behind")
			return
		}
		s.pushed++
		s.inflight++
		s.stream.out <- outFrame{seq: s.pushed, frame: frame}
	}
}

// room reports whether rows may go out: a stream is attached and less
// than half its buffer waits.
func (s *session) room() bool {
	return s.stream != nil && s.seq-(s.pushed-int64(s.inflight)) < int64(s.g.cfg.Buffer/2+1)
}

// close ends the session with "closed" after what is queued, and stops
// the actor, which frees the rest.
func (s *session) close(ctx actor.Context, reason string) {
	if s.closed {
		return
	}
	s.closed = true
	if s.stream != nil {
		s.stream.conn.end(ending{reason: reason, frame: "closed", drain: true})
		s.stream = nil
		s.ref.stream.Store(nil)
	}
	s.g.logger.Info("session closed", slog.String("actor", "session:"+s.ref.id), slog.String("reason", reason))
	// Freed now, not when the actor has stopped: from here on the session
	// is not found.
	s.g.release(s.ref)
	ctx.Stop(s.self)
}

func (s *session) listen(k listenKey) keysReply {
	if s.keys[k.raw] != nil {
		return keysReply{keys: s.keyList()}
	}
	if len(s.keys) >= s.g.cfg.MaxKeys {
		return keysReply{err: tooMany("a session listens to at most %d keys", s.g.cfg.MaxKeys)}
	}
	self, root := s.self, s.root
	l := &listener{key: k, session: s.ref.id,
		event:  func(l *listener, ev *Event) { root.Send(self, notifyMsg{key: l.key.raw, ev: ev}) },
		server: func(l *listener, payload []byte) { root.Send(self, serverMsg{key: l.key.raw, payload: payload}) },
	}
	l.lost = func(reason string) { root.Send(self, lostMsg{key: l.key.raw, reason: reason}) }
	if !s.p.readsAll() {
		l.canRead = s.p.CanRead
	}
	s.keys[k.raw] = l
	s.g.hub.add(l)
	return keysReply{keys: s.keyList()}
}

func (s *session) keyList() []string {
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *session) startGrace() {
	s.cancelGrace()
	s.graceGen++
	s.stopGrace = scheduler.NewTimerScheduler(s.root).SendOnce(s.g.cfg.SessionGrace, s.self, graceExpired{gen: s.graceGen})
}

func (s *session) cancelGrace() {
	if s.stopGrace != nil {
		s.stopGrace()
		s.stopGrace = nil
	}
}

// report tells the registry where the session stands.
func (s *session) report() {
	if s.live == nil {
		return
	}
	if s.stream == nil {
		s.live.SetState("detached")
	} else {
		s.live.SetState("streaming")
	}
	s.live.SetFlow(s.g.cfg.Buffer-s.inflight, int(s.seq-(s.pushed-int64(s.inflight))), time.Time{})
}

// history keeps the last frames by sequence number.
type history struct {
	frames [][]byte
	last   int64
}

func newHistory(size int) history { return history{frames: make([][]byte, size)} }

func (h *history) put(seq int64, frame []byte) {
	h.frames[seq%int64(len(h.frames))] = frame
	h.last = seq
}

// oldest is the first sequence number still kept.
func (h *history) oldest() int64 { return max(1, h.last-int64(len(h.frames))+1) }

func (h *history) get(seq int64) ([]byte, bool) {
	if seq < h.oldest() || seq > h.last {
		return nil, false
	}
	return h.frames[seq%int64(len(h.frames))], true
}
