package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// askTimeout bounds a request to a session actor.
const askTimeout = 5 * time.Second

// createSession is POST /sessions: a new session, owned by the token's
// subject, with a server-issued id nobody can guess.
func (g *Gateway) createSession(w http.ResponseWriter, r *http.Request) {
	if g.nSession.Add(1) > int64(g.cfg.MaxSessions) {
		g.nSession.Add(-1)
		writeError(w, g.logger, tooMany("more than %d sessions", g.cfg.MaxSessions))
		return
	}
	p := principal(r)
	if !p.anonymous && p.Subject == "" {
		g.nSession.Add(-1)
		writeError(w, g.logger, forbidden("the token has no subject (sub): a session belongs to one"))
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	ref := &sessionRef{id: hex.EncodeToString(b[:]), owner: p.owner()}
	ref.ctx, ref.cancel = context.WithCancel(context.Background())
	g.hub.sessionOpened()
	pid, _, err := g.spawn("session:"+ref.id, "session", ref.id, func() actor.Actor { return newSession(g, ref, p) },
		func(reason string) {
			if st := ref.stream.Load(); st != nil {
				st.conn.end(ending{reason: reason, frame: "closed", drain: true})
			}
		},
		func() { g.release(ref) })
	if err != nil {
		g.release(ref)
		g.logger.Warn("create session", "err", err)
		writeError(w, g.logger, unavailable("cannot create a session now"))
		return
	}
	ref.pid = pid
	g.sessions.Store(ref.id, ref)
	if ref.ctx.Err() != nil {
		g.sessions.Delete(ref.id) // it ended already
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": ref.id})
}

// lookup finds the request's session; another subject's is not found.
func (g *Gateway) lookup(w http.ResponseWriter, r *http.Request) *sessionRef {
	id := r.PathValue("id")
	v, ok := g.sessions.Load(id)
	ref, _ := v.(*sessionRef)
	if !ok || ref.pid == nil || ref.owner != principal(r).owner() {
		writeError(w, g.logger, notFound("no session %q", id))
		return nil
	}
	return ref
}

// ask sends msg to the session and waits for its answer.
func (g *Gateway) ask(ref *sessionRef, msg any) (any, error) {
	res, err := g.deps.System.Root.RequestFuture(ref.pid, msg, askTimeout).Result()
	if errors.Is(err, actor.ErrDeadLetter) {
		return nil, notFound("no session %q", ref.id)
	}
	if errors.Is(err, actor.ErrTimeout) {
		return nil, unavailable("the session did not answer in time")
	}
	return res, err
}

// sessionStream is GET /sessions/{id}/stream.
func (g *Gateway) sessionStream(w http.ResponseWriter, r *http.Request) {
	ref := g.lookup(w, r)
	if ref == nil {
		return
	}
	after, hasAfter, err := startPoint(r, "")
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	st := &sessionStream{out: make(chan outFrame, g.cfg.Buffer+1), conn: newConn()}
	// However the handler ends, the session learns it (a stale notice is
	// ignored).
	defer g.deps.System.Root.Send(ref.pid, streamGone{s: st})
	res, err := g.ask(ref, attachStream{s: st, after: after, hasAfter: hasAfter})
	at, _ := res.(attached)
	if err == nil {
		err = at.err
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	after = at.after
	sw, err := openSSE(w, g.cfg.Retry, g.cfg.WriteTimeout, g.deps.Metrics.SSEMessagesSent("session"))
	if err != nil {
		return
	}
	g.deps.Metrics.SSEStreamOpened("session")
	defer g.deps.Metrics.SSEStreamClosed("session")
	// registered is the first message of every connection. Its id is the
	// resumption point, which leaves the client's Last-Event-ID as it is.
	data, _ := jsonMarshal(map[string]string{"id": ref.id})
	sw.event(strconv.FormatInt(after, 10), "registered", data)
	if sw.flush() != nil {
		return
	}
	heartbeat := time.NewTicker(g.cfg.Heartbeat)
	defer heartbeat.Stop()
	last := after
	write := func(f outFrame) {
		sw.frame(f.frame)
		last = f.seq
	}
	for {
		select {
		case f := <-st.out:
			write(f)
			n := 1
			for more := true; more; {
				select {
				case f := <-st.out:
					write(f)
					n++
				default:
					more = false
				}
			}
			if sw.flush() != nil {
				return
			}
			g.deps.System.Root.Send(ref.pid, streamFlushed{s: st, n: n})
		case <-st.conn.done:
			how := st.conn.how
			for more := how.drain; more; {
				select {
				case f := <-st.out:
					write(f)
				default:
					more = false
				}
			}
			sw.frame(how.lastFrame(strconv.FormatInt(last, 10)))
			_ = sw.flush()
			return
		case <-heartbeat.C:
			sw.comment("heartbeat")
			if sw.flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// keyRequest is the body of listen and unlisten.
type keyRequest struct {
	Key string `json:"key"`
}

func (g *Gateway) listen(w http.ResponseWriter, r *http.Request) {
	g.changeKeys(w, r, true)
}

func (g *Gateway) unlisten(w http.ResponseWriter, r *http.Request) {
	g.changeKeys(w, r, false)
}

func (g *Gateway) changeKeys(w http.ResponseWriter, r *http.Request, add bool) {
	ref := g.lookup(w, r)
	if ref == nil {
		return
	}
	var req keyRequest
	body, err := g.readBody(w, r)
	if err == nil {
		err = decodeStrict(body, &req, "body")
	}
	var msg any = unlistenReq{key: req.Key}
	if err == nil && add {
		var k listenKey
		if k, err = parseKey(req.Key); err == nil {
			if k.kind == keyDomain && !principal(r).CanRead(k.f.domain) {
				err = forbidden("the token may not read domain %q", k.f.domain)
			}
			msg = listenReq{key: k}
		}
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	res, err := g.ask(ref, msg)
	reply, _ := res.(keysReply)
	if err == nil {
		err = reply.err
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"keys": reply.keys})
}

func (g *Gateway) submitTask(w http.ResponseWriter, r *http.Request) {
	ref := g.lookup(w, r)
	if ref == nil {
		return
	}
	req, err := g.taskFromRequest(w, r)
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	res, err := g.ask(ref, req)
	reply, _ := res.(taskReply)
	if err == nil {
		err = reply.err
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"task": reply.id})
}

// taskFromRequest validates a task before it reaches the session: the
// query or the events, inside the token's scope. The body, {"type":
// "fetch", "query": {...}} (with "follow": true, a fetch goes on with the
// rows that commit later) or {"type": "persist", "events": [...]}, is
// decoded once.
func (g *Gateway) taskFromRequest(w http.ResponseWriter, r *http.Request) (taskReq, error) {
	body, err := g.readBody(w, r)
	if err != nil {
		return taskReq{}, err
	}
	req, err := g.decodeBody(body, "task")
	if err != nil {
		return taskReq{}, err
	}
	if err := objectMembers(req, "task", "type", "query", "events", "follow"); err != nil {
		return taskReq{}, err
	}
	kind, err := stringMember(req, "type", "task")
	if err != nil {
		return taskReq{}, err
	}
	follow := false
	if f := req.Get("follow"); f != nil {
		if f.Kind != ordjson.Bool {
			return taskReq{}, badRequest("task: \"follow\" must be true or false, got %s", f.Kind)
		}
		if follow = f.Bool; follow && kind != "fetch" {
			return taskReq{}, badRequest("task: only a fetch can follow")
		}
	}
	p := principal(r)
	switch kind {
	case "fetch":
		query := req.Get("query")
		if query == nil {
			return taskReq{}, badRequest("task: a fetch needs a \"query\" with a $select")
		}
		sel, err := g.deps.Builder.Select(query, p.scope(g.table))
		if err != nil {
			return taskReq{}, queryError(err)
		}
		if follow {
			// Read in key order up to the frontier, as a followed Redis
			// fetch is.
			if err := sqlbuild.Followable(query, sel); err != nil {
				return taskReq{}, queryError(err)
			}
		}
		// Pages grow from 128 rows, like a stream's.
		pager := cursor.New(sel, g.deps.Store, cursor.Options{DecodeJSON: true,
			FirstPage: cursor.FirstPage(1, g.cfg.PageSize), PageSize: g.cfg.PageSize, MaxBuffered: g.cfg.MaxBufferedRows,
			ReadTimeout: g.cfg.ReadTimeout})
		return taskReq{kind: "fetch", pager: pager, follow: follow, table: sel.Table.QualifiedName()}, nil
	case "persist":
		list := req.Get("events")
		if list == nil {
			return taskReq{}, badRequest("task: a persist needs \"events\"")
		}
		events, err := decodeEvents(list)
		if err != nil {
			return taskReq{}, err
		}
		// Every chunk is translated now: a task outside the token's scope
		// is refused before any of it commits.
		t := taskReq{kind: "persist", events: len(events)}
		for start := 0; start < len(events); start += persistChunk {
			ins, err := g.insertEvents(p, events[start:min(start+persistChunk, len(events))], nil)
			if err != nil {
				return taskReq{}, err
			}
			t.inserts = append(t.inserts, ins)
		}
		return t, nil
	}
	return taskReq{}, badRequest("task: \"type\" must be \"fetch\" or \"persist\", got %q", kind)
}

func (g *Gateway) cancelTask(w http.ResponseWriter, r *http.Request) {
	ref := g.lookup(w, r)
	if ref == nil {
		return
	}
	res, err := g.ask(ref, cancelReq{id: r.PathValue("task")})
	if err == nil {
		err, _ = res.(error)
	}
	if err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
}

// disconnect is POST /sessions/{id}/disconnect and DELETE /sessions/{id}.
func (g *Gateway) disconnect(w http.ResponseWriter, r *http.Request) {
	ref := g.lookup(w, r)
	if ref == nil {
		return
	}
	if _, err := g.ask(ref, disconnectReq{}); err != nil {
		writeError(w, g.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
