package replicas

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsource/eventsource/redisbus"
)

// terminal is a claim's last messages and its end, on their way: the
// finish script publishes them only while the claim is this server's (or
// its key is gone, as after a Redis restart), so sending it again after a
// failure, even one whose outcome is unknown, never publishes it twice
// while Redis keeps its keys.
type terminal struct {
	c     *Claim
	args  [][]byte
	done  func(held bool, err error)
	since time.Time
}

// waiting holds the terminals that could not be sent: Redis was down, the
// queue full, or the connection died with their outcome unknown. They go
// again once the server hears Redis again (see BusDown and BusUp), every
// retryEvery while it does, until TerminalRetry after their first try;
// then they are dropped and counted.
type waiting struct {
	mu    sync.Mutex
	queue []*terminal
	kick  chan struct{}
	// down is set while the server's subscriber is disconnected, or
	// reconnected for less than the grace its clients need to resubscribe:
	// a terminal sent then may reach no one. gen tells a BusUp meant for an
	// outage that has been followed by another.
	down atomic.Bool
	gen  atomic.Uint64
}

// MaxWaitingTerminals bounds the terminals kept through an outage; past
// it they are dropped and counted.
const MaxWaitingTerminals = 100_000

// retryEvery is how often waiting terminals go again while Redis answers.
const retryEvery = 250 * time.Millisecond

// Finish publishes payloads (none: only the tombstone) on the claim's
// channel through the publisher, after everything queued there, and ends
// the claim, only while this server holds it. One that cannot be sent now
// waits (see waiting). done, if not nil, hears whether it published.
func (k *Keeper) Finish(c *Claim, payloads [][]byte, done func(held bool, err error)) {
	args := make([][]byte, 0, 4+len(payloads))
	args = append(args, []byte(c.token), []byte(strconv.FormatInt(k.cfg.Tombstone.Milliseconds(), 10)),
		[]byte(c.Channel), []byte(k.cfg.FinishedChannel))
	args = append(args, payloads...)
	c.finishing.Store(true)
	t := &terminal{c: c, args: args, done: done, since: time.Now()}
	if k.terminals.down.Load() {
		k.wait(t, errors.New("the server's Redis subscriber is reconnecting"))
		return
	}
	k.send(t)
}

func (k *Keeper) send(t *terminal) {
	err := k.pub.Eval(t.c.Channel, finishScript, []string{t.c.key}, t.args, func(n int64, err error) {
		if err != nil && !errors.Is(err, redisbus.ErrClosed) {
			k.wait(t, err)
			return
		}
		k.end(t, n == 1, err)
	})
	switch {
	case errors.Is(err, redisbus.ErrClosed):
		k.end(t, false, err)
	case err != nil:
		k.wait(t, err)
	}
}

// end forgets a terminal's claim and tells its sender.
func (k *Keeper) end(t *terminal, held bool, err error) {
	k.forget(t.c)
	if t.done != nil {
		t.done(held, err)
	}
}

// wait keeps t for a later try, or drops it when it is too old or too
// many wait.
func (k *Keeper) wait(t *terminal, cause error) {
	w := &k.terminals
	w.mu.Lock()
	expired := time.Since(t.since) > k.cfg.TerminalRetry
	full := len(w.queue) >= MaxWaitingTerminals
	if !expired && !full {
		w.queue = append(w.queue, t)
	}
	w.mu.Unlock()
	if expired || full {
		k.drop(t, fmt.Errorf("too old: %v, too many waiting: %v: %w", expired, full, cause))
		return
	}
	k.logger.Debug("replicas: a terminal waits to go again", slog.String("channel", t.c.Channel), slog.Any("err", cause))
}

// drop gives up on t.
func (k *Keeper) drop(t *terminal, cause error) {
	k.logger.Error("replicas: a terminal was dropped: its client hears nothing more", slog.String("channel", t.c.Channel), slog.Any("err", cause))
	if k.hooks.TerminalDropped != nil {
		k.hooks.TerminalDropped()
	}
	k.end(t, false, cause)
}

// WaitingTerminals is how many terminals wait to go again.
func (k *Keeper) WaitingTerminals() int {
	k.terminals.mu.Lock()
	defer k.terminals.mu.Unlock()
	return len(k.terminals.queue)
}

// BusDown says that the server lost its Redis subscriber: clients may be
// reconnecting too, so terminals wait until BusUp. It returns the outage's
// generation, for BusUp.
func (k *Keeper) BusDown() uint64 {
	k.terminals.down.Store(true)
	return k.terminals.gen.Add(1)
}

// BusUp says that the server hears Redis again since the outage gen, and
// that its clients had their moment to resubscribe: the terminals that
// waited go now. A BusUp of an outage followed by another does nothing.
func (k *Keeper) BusUp(gen uint64) {
	if k.terminals.gen.Load() != gen {
		return
	}
	k.terminals.down.Store(false)
	select {
	case k.terminals.kick <- struct{}{}:
	default:
	}
}

// Outage is the generation of the last outage BusDown reported.
func (k *Keeper) Outage() uint64 { return k.terminals.gen.Load() }

// retryTerminals sends the waiting terminals again, on BusUp and every
// retryEvery while Redis is heard.
func (k *Keeper) retryTerminals() {
	defer k.wg.Done()
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	w := &k.terminals
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
		case <-w.kick:
		}
		down := w.down.Load()
		w.mu.Lock()
		var again, expired []*terminal
		keep := w.queue[:0]
		for _, term := range w.queue {
			switch {
			case time.Since(term.since) > k.cfg.TerminalRetry:
				expired = append(expired, term)
			case down:
				keep = append(keep, term)
			default:
				again = append(again, term)
			}
		}
		clear(w.queue[len(keep):])
		w.queue = keep
		w.mu.Unlock()
		for _, term := range expired {
			k.drop(term, errors.New("Redis did not take it within the terminal retry time"))
		}
		for _, term := range again {
			k.send(term)
		}
	}
}
