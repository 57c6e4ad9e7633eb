package gateway

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// persistChunk is how many events of a persist task go to the batcher at
// a time: each chunk commits on its own and reports progress.
const persistChunk = 100

// Messages of tasks; none goes on the wire.
type (
	// taskReq starts a task: a fetch (pager; follow goes on with the rows
	// of table that commit later) or a persist (its events' inserts,
	// persistChunk events each). Answered with taskReply.
	taskReq struct {
		kind    string
		pager   *cursor.Cursor
		follow  bool
		table   string
		inserts []*sqlbuild.Insert
		events  int
	}
	taskReply struct {
		id  string
		err error
	}
	// cancelReq cancels a task; answered with an error or nil.
	cancelReq struct{ id string }
	// fetchPage is one page a fetch task read; for a follow, done says
	// that the rows that matched when it started are all read.
	fetchPage struct {
		task string
		rows []messages.Row
		done bool
		err  error
	}
	// persistStep is a persist task's progress: a chunk committed (done
	// of total events), or the end (finished, with every id, or err).
	// duplicate, at the end, says that every chunk was a retry of events
	// stored already: nothing was stored.
	persistStep struct {
		task        string
		done, total int
		ids         []int64
		duplicate   bool
		finished    bool
		err         error
	}
)

// task is the session's record of one running task.
type task struct {
	id     string
	kind   string
	cancel context.CancelFunc
	// Fetch: next asks the reader for one more page; buf holds rows read
	// and not yet sent.
	next   chan struct{}
	buf    []messages.Row
	asked  bool
	drawn  bool // the reader read its last page (a follow: its history)
	rows   int64
	paging bool // a page was sent since the last progress
	// follow: the task goes on with new rows; following: its history is
	// out, and said so.
	follow, following bool
}

func (s *session) startTask(req taskReq) taskReply {
	if s.closed {
		return taskReply{err: notFound("no session %q", s.ref.id)}
	}
	if len(s.tasks) >= s.g.cfg.MaxTasks {
		return taskReply{err: tooMany("a session runs at most %d tasks at once", s.g.cfg.MaxTasks)}
	}
	s.taskSeq++
	id := "t" + strconv.Itoa(s.taskSeq)
	ctx, cancel := context.WithCancel(s.ref.ctx)
	t := &task{id: id, kind: req.kind, cancel: cancel, follow: req.follow}
	s.tasks[id] = t
	s.taskOrder = append(s.taskOrder, id)
	self, root := s.self, s.root
	send := func(msg any) { root.Send(self, msg) }
	switch req.kind {
	case "fetch":
		t.next = make(chan struct{}, 1)
		if req.follow {
			go followPages(ctx, s.g.frontier, req.table, req.pager, id, t.next, send)
		} else {
			go readPages(ctx, req.pager, id, t.next, send)
		}
	case "persist":
		go s.g.persistTask(ctx, id, req.inserts, req.events, send)
	}
	return taskReply{id: id}
}

// readPages reads one page each time it is asked, until the last.
func readPages(ctx context.Context, pager *cursor.Cursor, id string, next <-chan struct{}, send func(any)) {
	for {
		select {
		case <-next:
		case <-ctx.Done():
			return
		}
		page, done, err := pager.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		send(fetchPage{task: id, rows: page.Rows, done: done, err: err})
		if done || err != nil {
			return
		}
	}
}

// persistTask commits a task's inserts, a chunk of events each, through
// the batcher. A cancelled task stops between chunks; what committed
// stays.
func (g *Gateway) persistTask(ctx context.Context, id string, inserts []*sqlbuild.Insert, events int, send func(any)) {
	ids := make([]int64, 0, events)
	duplicate := true
	for _, ins := range inserts {
		if ctx.Err() != nil {
			return
		}
		// The chunk commits whatever happens to the task; wait for it.
		got, err := g.commit(context.WithoutCancel(ctx), ins)
		if err != nil {
			send(persistStep{task: id, finished: true, err: err})
			return
		}
		ids = append(ids, got.ids...)
		duplicate = duplicate && got.duplicate
		send(persistStep{task: id, done: len(ids), total: events})
	}
	send(persistStep{task: id, finished: true, ids: ids, duplicate: duplicate})
}

func (s *session) cancelTask(ctx actor.Context, id string) error {
	t := s.tasks[id]
	if t == nil {
		return notFound("no running task %q in this session", id)
	}
	s.endTask(t)
	data, _ := jsonMarshal(map[string]string{"task": id})
	s.emit(ctx, "cancelled", data)
	return nil
}

func (s *session) endTask(t *task) {
	t.cancel()
	delete(s.tasks, t.id)
	if i := indexOf(s.taskOrder, t.id); i >= 0 {
		s.taskOrder = append(s.taskOrder[:i], s.taskOrder[i+1:]...)
	}
}

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func (s *session) fetched(ctx actor.Context, msg fetchPage) {
	t := s.tasks[msg.task]
	if t == nil {
		return // cancelled meanwhile
	}
	t.asked = false
	if msg.err != nil {
		// The database's own text may describe the schema: log it only.
		s.g.logger.Warn("fetch task failed", slog.String("actor", "session:"+s.ref.id), slog.String("task", t.id), slog.Any("err", msg.err))
		s.fail(ctx, t, "the database failed to run the query")
		return
	}
	t.buf = append(t.buf, msg.rows...)
	t.drawn = t.drawn || msg.done
	s.pump(ctx)
}

func (s *session) persisted(ctx actor.Context, msg persistStep) {
	t := s.tasks[msg.task]
	if t == nil {
		return
	}
	switch {
	case msg.err != nil:
		s.failWith(ctx, t, errorText(msg.err), failReason(msg.err))
	case msg.finished:
		s.endTask(t)
		data, _ := jsonMarshal(struct {
			Task      string  `json:"task"`
			IDs       []int64 `json:"ids"`
			Duplicate bool    `json:"duplicate,omitempty"`
		}{t.id, msg.ids, msg.duplicate})
		s.emit(ctx, "completed", data)
	default:
		data, _ := jsonMarshal(struct {
			Task  string `json:"task"`
			Done  int    `json:"done"`
			Total int    `json:"total"`
		}{t.id, msg.done, msg.total})
		s.emit(ctx, "progress", data)
	}
}

func (s *session) fail(ctx actor.Context, t *task, message string) {
	s.failWith(ctx, t, message, "")
}

// failWith ends t with a failed message: {"task": T, "error": message},
// and "reason" when there is one ("conflict": a persist met what is
// stored; the chunks before it stay committed).
func (s *session) failWith(ctx actor.Context, t *task, message, reason string) {
	s.endTask(t)
	data, _ := jsonMarshal(struct {
		Task   string `json:"task"`
		Error  string `json:"error"`
		Reason string `json:"reason,omitempty"`
	}{t.id, message, reason})
	s.emit(ctx, "failed", data)
}

// errorText is the client's view of an error: an *apiError's message, or
// a generic one.
func errorText(err error) string {
	if ae, ok := err.(*apiError); ok {
		return ae.msg
	}
	return "internal error"
}

// failReason is the reason a failed task reports for err: "conflict" for
// a conflict with what is stored, else none.
func failReason(err error) string {
	if ae, ok := err.(*apiError); ok && ae.code == "conflict" {
		return string(messages.ReasonConflict)
	}
	return ""
}

// pump sends the fetch tasks' rows while the stream has room, reports
// progress per page, asks for the next page once a task's rows are out,
// and completes the tasks that are done. A follow task is never done: once
// its history is out it says so with a progress that has "following":
// true, and from then on sends only rows, as they commit. Rows wait while
// no stream is attached: that is the connection's backpressure.
func (s *session) pump(ctx actor.Context) {
	for i := 0; i < len(s.taskOrder); i++ {
		t := s.tasks[s.taskOrder[i]]
		if t.kind != "fetch" {
			continue
		}
		for len(t.buf) > 0 && s.room() {
			row := compactJSON(t.buf[0])
			t.buf[0] = messages.Row{}
			t.buf = t.buf[1:]
			data := append([]byte(`{"task":`), ordjson.AppendString(nil, t.id)...)
			data = append(row.AppendJSON(append(data, `,"row":`...)), '}')
			s.emit(ctx, "row", data)
			t.rows++
			t.paging = true
			if s.closed {
				return
			}
		}
		if len(t.buf) > 0 || t.asked {
			continue
		}
		switch {
		case t.follow && t.drawn && !t.following:
			t.following, t.paging = true, false
			data, _ := jsonMarshal(struct {
				Task      string `json:"task"`
				Rows      int64  `json:"rows"`
				Following bool   `json:"following"`
			}{t.id, t.rows, true})
			s.emit(ctx, "progress", data)
		case t.paging && t.following:
			t.paging = false // live rows come without progress
		case t.paging:
			t.paging = false
			data, _ := jsonMarshal(struct {
				Task string `json:"task"`
				Rows int64  `json:"rows"`
			}{t.id, t.rows})
			s.emit(ctx, "progress", data)
		}
		if t.drawn && !t.follow {
			s.endTask(t)
			i--
			data, _ := jsonMarshal(struct {
				Task string `json:"task"`
				Rows int64  `json:"rows"`
			}{t.id, t.rows})
			s.emit(ctx, "completed", data)
			continue
		}
		if s.room() {
			t.asked = true
			t.next <- struct{}{}
		}
	}
}
