package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/sqlbuild"
	"github.com/eventsource/eventsource/supervision"
)

// tailWindow is how far below the replay's snapshot a live event may still
// be a duplicate of a replayed one: a commit announced after the stream
// subscribed but read by the replay. Replayed ids within it are kept, to
// drop those duplicates exactly.
const tailWindow = 65536

// streamActor is the actor of one GET /events stream. It owns the
// stream's lifecycle (operator stop, shutdown, failure); the handler
// goroutine writes, and the hub feeds it through a bounded channel without
// an actor hop, since one event may go to thousands of streams.
type streamActor struct {
	conn *conn
}

func (a *streamActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case endChild:
		a.conn.end(ending{reason: msg.reason, frame: "reconnect"})
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		a.conn.end(ending{reason: "stopped"})
	}
}

// eventListener is a stream's subscription: a bounded buffer the hub fills
// without blocking, and lost, closed once the buffer overflowed or the
// feed had a hole.
type eventListener struct {
	*listener
	ch     chan *Event
	lostCh chan struct{}
	once   sync.Once
	why    string
}

func newEventListener(f filter, buffer int, m *metrics.Metrics) *eventListener {
	el := &eventListener{ch: make(chan *Event, buffer), lostCh: make(chan struct{})}
	el.listener = &listener{
		key: listenKey{kind: keyDomain, f: f},
		event: func(_ *listener, ev *Event) {
			select {
			case el.ch <- ev:
			default:
				if !el.overflowed() {
					m.FeedLost(metrics.FeedSlowReader)
				}
				el.lose("slow reader: more than " + strconv.Itoa(buffer) + " events waiting")
			}
		},
		lost: el.lose,
	}
	return el
}

func (el *eventListener) lose(reason string) {
	el.once.Do(func() {
		el.why = reason
		close(el.lostCh)
	})
}

func (el *eventListener) overflowed() bool {
	select {
	case <-el.lostCh:
		return true
	default:
		return false
	}
}

// getEvents is GET /events: the stored events after the start point, then
// the live ones.
func (g *Gateway) getEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filter{domain: q.Get("domain"), name: q.Get("name"), pid: q.Get("pid")}
	if f.domain == "" {
		writeError(w, g.logger, badRequest("the domain parameter is required"))
		return
	}
	if !principal(r).CanRead(f.domain) {
		writeError(w, g.logger, forbidden("the token may not read domain %q", f.domain))
		return
	}
	start, hasStart, err := startPoint(r, "since")
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	c := newConn()
	name := "sse:" + strconv.FormatUint(g.connSeq.Add(1), 10)
	pid, live, err := g.spawn(name, "sse", filterChannel(f), func() actor.Actor { return &streamActor{conn: c} },
		func(reason string) { c.end(ending{reason: reason, frame: "reconnect"}) }, nil)
	if err != nil {
		writeError(w, g.logger, unavailable("cannot open a stream now"))
		g.logger.Warn("open event stream", "err", err)
		return
	}
	defer g.deps.System.Root.Stop(pid)
	s := &eventStream{g: g, f: f, conn: c, live: live, ctx: r.Context()}
	if err := s.run(w, start, hasStart); err != nil && !errors.Is(err, context.Canceled) {
		if s.sw == nil {
			// Failed before the response began: the client can still be
			// told so.
			writeError(w, g.logger, unavailable("cannot start the stream now"))
			g.logger.Warn("open event stream", "actor", name, "err", err)
			return
		}
		g.logger.Debug("event stream ended", "actor", name, "err", err)
	}
}

// startPoint reads where a stream resumes: the Last-Event-ID header, else
// the lastEventId parameter, else the parameter named alt (none if empty).
func startPoint(r *http.Request, alt string) (int64, bool, error) {
	sources := []struct{ from, value string }{
		{"Last-Event-ID header", r.Header.Get("Last-Event-ID")},
		{"lastEventId parameter", r.URL.Query().Get("lastEventId")},
	}
	if alt != "" {
		sources = append(sources, struct{ from, value string }{alt + " parameter", r.URL.Query().Get(alt)})
	}
	for _, src := range sources {
		if src.value == "" {
			continue
		}
		n, err := strconv.ParseInt(src.value, 10, 64)
		if err != nil || n < 0 {
			return 0, false, badRequest("%s %q: want a non-negative integer", src.from, src.value)
		}
		return n, true, nil
	}
	return 0, false, nil
}

func filterChannel(f filter) string {
	v := url.Values{"domain": {f.domain}}
	if f.name != "" {
		v.Set("name", f.name)
	}
	if f.pid != "" {
		v.Set("pid", f.pid)
	}
	return v.Encode()
}

// eventStream is one GET /events response, run by its handler goroutine.
type eventStream struct {
	g    *Gateway
	f    filter
	conn *conn
	live *supervision.Live
	ctx  context.Context

	sw   *sseWriter
	last int64 // id of the last event written (or the start point)
}

func (s *eventStream) run(w http.ResponseWriter, start int64, hasStart bool) error {
	// The stream listens, and knows where "new" starts, before the client
	// hears it is connected: an event committed after the response began
	// is the client's to see, even one its own POST made a moment later.
	el := newEventListener(s.f, s.g.cfg.Buffer, s.g.deps.Metrics)
	s.g.hub.add(el.listener)
	defer func() { s.g.hub.remove(el.listener) }()
	var err error
	if !hasStart {
		if start, err = s.g.headID(s.ctx); err != nil {
			return err
		}
	}
	sw, err := openSSE(w, s.g.cfg.Retry, s.g.cfg.WriteTimeout, s.g.deps.Metrics.SSEMessagesSent("events"))
	if err != nil {
		return err
	}
	s.sw = sw
	s.g.deps.Metrics.SSEStreamOpened("events")
	defer s.g.deps.Metrics.SSEStreamClosed("events")
	if !hasStart {
		// Only new events: start at the newest id, and say so, so that a
		// reconnection resumes there.
		s.last = start
		sw.setID(strconv.FormatInt(start, 10))
		if err := sw.flush(); err != nil {
			return err
		}
		s.live.SetState("live")
		return s.follow(el, dedup{start: start})
	}
	s.last = start
	s.live.SetState("replaying")
	for {
		d, err := s.replay()
		if err != nil {
			return err
		}
		if !el.overflowed() {
			s.live.SetState("live")
			return s.follow(el, d)
		}
		// The live buffer filled while the replay ran: start a fresh one
		// and replay again from where this one got.
		s.g.hub.remove(el.listener)
		el = newEventListener(s.f, s.g.cfg.Buffer, s.g.deps.Metrics)
		s.g.hub.add(el.listener)
	}
}

// dedup drops the live events a replay has sent already.
type dedup struct {
	start    int64   // nothing at or below it is sent
	snapshot int64   // the replay's bound (0: it read nothing)
	tail     []int64 // replayed ids above snapshot-tailWindow, ascending
}

func (d dedup) seen(id int64) bool {
	if id <= d.start {
		return true
	}
	if d.snapshot == 0 || id > d.snapshot {
		return false
	}
	if id <= d.snapshot-tailWindow {
		return true
	}
	_, found := slices.BinarySearch(d.tail, id)
	return found
}

// replay writes the stored events after s.last, page by page, up to the
// snapshot bound its first page takes; the writes pace the reads.
func (s *eventStream) replay() (dedup, error) {
	d := dedup{start: s.last}
	sel, err := s.g.selectEvents(nil, filterScope(s.g.table, s.f))
	if err != nil {
		return d, err
	}
	size := uint64(s.g.cfg.PageSize)
	page := sqlbuild.Page{After: s.last, Size: size}
	for {
		if s.conn.ended() {
			return d, s.endByActor()
		}
		got, err := s.g.deps.Store.ReadPage(s.ctx, sel, page, true)
		if err != nil {
			return d, err
		}
		if page.Snapshot == 0 {
			if got.Snapshot == 0 {
				return d, nil // nothing stored after the start point
			}
			page.Snapshot, d.snapshot = got.Snapshot, got.Snapshot
		}
		for _, row := range got.Rows {
			ev, err := eventFromRow(row)
			if err != nil {
				return d, err
			}
			s.sw.frame(ev.Frame)
			s.last = ev.ID
			if ev.ID > d.snapshot-tailWindow {
				d.tail = append(d.tail, ev.ID)
			}
		}
		s.live.AddRows(int64(len(got.Rows)))
		if err := s.sw.flush(); err != nil {
			return d, err
		}
		if uint64(len(got.Rows)) < size {
			return d, nil
		}
		page.After = got.LastKey
	}
}

// follow writes live events until the client leaves, the buffer overflows
// (then "reconnect"), or the actor ends the stream.
func (s *eventStream) follow(el *eventListener, d dedup) error {
	heartbeat := time.NewTicker(s.g.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev := <-el.ch:
			n := s.write(ev, d)
			for more := true; more && s.sw.pending() < 64<<10; {
				select {
				case ev := <-el.ch:
					n += s.write(ev, d)
				default:
					more = false
				}
			}
			s.live.AddRows(int64(n))
			if err := s.sw.flush(); err != nil {
				return err
			}
		case <-el.lostCh:
			s.sw.frame(ending{reason: el.why, frame: "reconnect"}.lastFrame(strconv.FormatInt(s.last, 10)))
			return s.sw.flush()
		case <-heartbeat.C:
			s.sw.comment("heartbeat")
			if err := s.sw.flush(); err != nil {
				return err
			}
		case <-s.conn.done:
			return s.endByActor()
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

func (s *eventStream) write(ev *Event, d dedup) int {
	if d.seen(ev.ID) {
		return 0
	}
	s.sw.frame(ev.Frame)
	s.last = ev.ID
	return 1
}

// endByActor writes the actor's last word; its id resumes after what
// was sent.
func (s *eventStream) endByActor() error {
	s.sw.frame(s.conn.how.lastFrame(strconv.FormatInt(s.last, 10)))
	return s.sw.flush()
}

// headID is the newest event id now: where a stream without a start point
// begins.
func (g *Gateway) headID(ctx context.Context) (int64, error) {
	query, err := g.deps.Builder.Parse([]byte(`{"$select": {"$columns": ["id"], "$from": "` + g.table.QualifiedName() + `", "$orderBy": {"id": -1}, "$limit": 1}}`))
	if err != nil {
		return 0, err
	}
	sel, err := g.deps.Builder.Select(query, sqlbuild.Scope{})
	if err != nil {
		return 0, err
	}
	got, err := g.deps.Store.ReadPage(ctx, sel, sqlbuild.Page{Size: 1}, false)
	if err != nil {
		return 0, err
	}
	return got.LastKey, nil
}
