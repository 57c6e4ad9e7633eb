package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnknown marks a publication whose outcome is unknown: it was written,
// and its connection died before the reply came. Redis may have run it,
// so it is never sent again (a message is published at most once).
var ErrUnknown = errors.New("redis: outcome unknown, the connection died after the command was written")

// lane is one worker's connection to one node. The worker writes each
// batch as it comes, without waiting for the replies of the ones before,
// and a reader goroutine hands each reply to its publication, in order: a
// publication waits one round trip, not the round trips of the batches
// queued before it.
//
// A connection found dead before anything was written on it (Redis closed
// it while it sat idle, and the reader heard so) is redialed and the batch
// sent on the new one; a batch written on a connection that then dies
// fails with ErrUnknown.
type lane struct {
	p     *Publisher
	opt   *redis.Options
	queue chan publication
	out   []byte

	mu      sync.Mutex
	conn    net.Conn
	pending []publication // written, their replies awaited, in order
	head    int           // of pending: the next reply's publication
	dead    bool          // the reader found conn dead
	read    chan struct{} // closed when conn's reader has returned

	// retry are the scripts Redis did not know (it restarted): the reader
	// hands them back to be sent again as EVAL of their text.
	retry chan publication

	// failed are the channels one of whose PUBLISHes failed, with when:
	// their later PUBLISHes are dropped (ErrAfterFailure) until a script
	// or a command of the channel (its terminal, a new claim) comes. Held
	// under mu: the reader fails publications, the worker sends them.
	failed map[string]time.Time
}

// failedKept bounds how long a channel stays in lane.failed without its
// terminal coming (a stream that ended without one); swept when the map
// grows.
const failedKept = 10 * time.Minute

// markFailed records the channels of the PUBLISHes of pubs; l.mu is held.
func (l *lane) markFailed(pubs []publication) {
	now := time.Now()
	for _, pub := range pubs {
		if pub.eval != nil || pub.cmd != nil {
			continue
		}
		if l.failed == nil {
			l.failed = map[string]time.Time{}
		}
		l.failed[pub.channel] = now
	}
	if len(l.failed) > 1024 {
		for ch, at := range l.failed {
			if now.Sub(at) > failedKept {
				delete(l.failed, ch)
			}
		}
	}
}

// admit drops, from batch, the PUBLISHes of channels that failed, and
// lifts the mark of a channel whose script or command comes; l.mu is held.
// It returns what is to be sent and what was dropped, to be answered
// outside the lock.
func (l *lane) admit(batch []publication) (send, dropped []publication) {
	if len(l.failed) == 0 {
		return batch, nil
	}
	send = batch[:0]
	for _, pub := range batch {
		if _, failed := l.failed[pub.channel]; failed {
			if pub.eval == nil && pub.cmd == nil {
				dropped = append(dropped, pub)
				continue
			}
			delete(l.failed, pub.channel)
		}
		send = append(send, pub)
	}
	return send, dropped
}

// work is a worker: it sends what its queue holds, in batches, until the
// queue is closed, then waits for the last replies.
func (l *lane) work() {
	defer l.p.wg.Done()
	defer l.shutdown()
	batch := make([]publication, 0, MaxBatch)
	for {
		var first publication
		var ok bool
		select {
		case first, ok = <-l.queue:
			if !ok {
				return
			}
		case first = <-l.retry:
		}
		batch = append(batch[:0], first)
		yielded := false
	gather:
		for len(batch) < MaxBatch {
			select {
			case next, ok := <-l.queue:
				if !ok {
					break gather
				}
				batch = append(batch, next)
			case next := <-l.retry:
				batch = append(batch, next)
			default:
				if yielded || l.p.eager {
					break gather
				}
				// Let the goroutines that are ready run first: under load
				// they are about to queue more (the streams woken by the
				// last batch's replies), and one write then carries them
				// all. Idle, nothing else is ready and this returns at once.
				runtime.Gosched()
				yielded = true
			}
		}
		if err := l.send(batch); err != nil {
			l.p.logger.Warn("redis publish failed", slog.String("node", l.opt.Addr), slog.Int("messages", len(batch)), slog.Any("err", err))
			l.p.topo.Changed()
		}
	}
}

// send writes batch on the lane's connection, dialing one if there is
// none or the reader found it dead.
func (l *lane) send(batch []publication) error {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		l.reset() // the reader has marked what it failed
		l.mu.Lock()
	}
	batch, dropped := l.admit(batch)
	l.mu.Unlock()
	for _, pub := range dropped {
		pub.answer(nil, ErrAfterFailure)
	}
	if len(batch) == 0 {
		return nil
	}
	l.mu.Lock()
	if l.conn == nil {
		l.mu.Unlock()
		if err := l.dial(); err != nil {
			// Nothing was written: these never reached Redis, and nothing
			// of their channels may go after them.
			l.mu.Lock()
			l.markFailed(batch)
			l.mu.Unlock()
			for _, pub := range batch {
				pub.answer(nil, err)
			}
			return err
		}
		l.mu.Lock()
	}
	conn := l.conn
	l.pending = append(l.pending, batch...)
	_ = conn.SetReadDeadline(deadline(l.opt.ReadTimeout))
	l.mu.Unlock()
	if cap(l.out) > maxKeptFrame {
		l.out = nil // a batch of huge rows: do not hold its buffer
	}
	l.out = l.out[:0]
	for _, pub := range batch {
		switch {
		case pub.eval != nil && pub.evalText:
			l.out = appendEval(l.out, "EVAL", pub.eval.script.Text, pub.eval)
		case pub.eval != nil:
			l.out = appendEval(l.out, "EVALSHA", pub.eval.script.SHA, pub.eval)
		case pub.cmd != nil:
			l.out = appendCommand(l.out, pub.cmd.args[0], pub.cmd.args[1:]...)
		default:
			l.out = appendPublish(l.out, pub.channel, pub.payload)
		}
	}
	_ = conn.SetWriteDeadline(deadline(l.opt.WriteTimeout))
	if _, err := conn.Write(l.out); err != nil {
		// What went out of the batch, if anything, is unknown: the reader
		// fails what has no reply once the connection is closed.
		_ = conn.Close()
		return fmt.Errorf("write %d commands: %w", len(batch), err)
	}
	return nil
}

// dial connects and starts the connection's reader.
func (l *lane) dial() error {
	conn, rr, err := dial(context.Background(), l.opt, l.p.ob)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	l.mu.Lock()
	l.conn, l.dead, l.read = conn, false, done
	l.mu.Unlock()
	go l.readReplies(conn, rr, done)
	return nil
}

// reset drops a dead connection once its reader has returned.
func (l *lane) reset() {
	l.mu.Lock()
	conn, read := l.conn, l.read
	l.conn, l.read = nil, nil
	l.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
		<-read
		l.p.ob.closed()
	}
}

// readReplies hands each reply to its publication, until conn fails; then
// what waits for a reply fails with ErrUnknown.
func (l *lane) readReplies(conn net.Conn, rr *respReader, done chan struct{}) {
	defer close(done)
	for {
		f, err := rr.read()
		l.mu.Lock()
		if err == nil && l.head == len(l.pending) {
			err = fmt.Errorf("%w: a reply to no command", errProtocol)
		}
		if err != nil {
			l.dead = true
			lost := l.pending[l.head:]
			l.pending, l.head = nil, 0
			l.markFailed(lost)
			l.mu.Unlock()
			_ = conn.Close()
			for _, pub := range lost {
				pub.answer(nil, fmt.Errorf("%w: %w", ErrUnknown, err))
			}
			return
		}
		pub := l.pending[l.head]
		l.pending[l.head] = publication{}
		l.head++
		if l.head == len(l.pending) {
			l.pending, l.head = l.pending[:0], 0
			_ = conn.SetReadDeadline(time.Time{}) // idle: wait as long as it takes
		} else {
			_ = conn.SetReadDeadline(deadline(l.opt.ReadTimeout))
		}
		l.mu.Unlock()
		if f.err != nil {
			if pub.eval == nil && pub.cmd == nil {
				// Redis refused a row: none of its channel may follow it.
				l.mu.Lock()
				l.markFailed([]publication{pub})
				l.mu.Unlock()
			}
			switch msg := f.err.Error(); {
			case strings.HasPrefix(msg, "redis: MOVED"):
				l.p.topo.Changed()
			case strings.HasPrefix(msg, "redis: NOSCRIPT") && pub.eval != nil && !pub.evalText:
				// The script ran not at all, and nothing of its channel
				// follows it: send it again, as its text.
				pub.evalText = true
				l.retry <- pub
				continue
			}
		}
		pub.answer(&f, nil)
	}
}

// shutdown waits for the replies still due, then closes the connection.
func (l *lane) shutdown() {
	until := time.Now().Add(l.opt.ReadTimeout + l.opt.WriteTimeout + time.Second)
	for time.Now().Before(until) {
		select {
		case pub := <-l.retry:
			_ = l.send([]publication{pub})
			continue
		default:
		}
		l.mu.Lock()
		waiting := l.head < len(l.pending) && !l.dead
		l.mu.Unlock()
		if !waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	l.reset()
}

// answer hands a publication its reply: the integer of an EVAL (an integer
// frame's kind holds its digits), whether a command's was null, the error
// of any.
func (pub publication) answer(f *frame, err error) {
	if err == nil {
		err = f.err
	}
	switch {
	case pub.cmd != nil:
		if pub.cmd.done != nil {
			pub.cmd.done(err == nil && f.null, err)
		}
	case pub.eval != nil:
		if pub.eval.done != nil {
			pub.eval.done(integer(f, err))
		}
	case pub.counted != nil:
		pub.counted(integer(f, err))
	case pub.done != nil:
		pub.done(err)
	}
}

// integer reads an integer reply, which a frame's kind holds the digits of.
func integer(f *frame, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(string(f.kind), 10, 64)
	if perr != nil {
		return 0, fmt.Errorf("integer reply %q: %w", f.kind, errProtocol)
	}
	return n, nil
}
