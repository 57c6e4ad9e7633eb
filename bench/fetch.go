package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// phaseTimeout bounds one measured phase, so a lost row fails the scenario
// instead of hanging the run.
const phaseTimeout = 5 * time.Minute

// sink is where a stream counts its rows, handshake latencies and errors.
type sink struct {
	rows *atomic.Int64
	lat  *latency
	fail func(error)
}

func (p *phase) sink() sink { return sink{rows: &p.rows, lat: p.lat, fail: p.fail} }

// newSink counts apart from any phase.
func newSink() (sink, *atomic.Int64, *atomic.Int64) {
	var rows, errs atomic.Int64
	return sink{rows: &rows, lat: newLatency(), fail: func(error) { errs.Add(1) }}, &rows, &errs
}

// streamOpts shape one fetch.
type streamOpts struct {
	window int
	want   int // rows expected; 0: unchecked
	// onFirst runs once, after the first row or when the stream fails
	// before it.
	onFirst func()
	// hold, if set, is waited on before the first row is accepted.
	hold <-chan struct{}
	// abortAfterHold leaves the loop after the hold, so the client sends
	// "end".
	abortAfterHold bool
}

// fetchOne runs one stream of pid through the client. The handshake latency
// of a row is the time from the previous row's arrival in the loop body to
// its own: the "accepted", the server's turn and the row's way back.
func (e *env) fetchOne(ctx context.Context, s sink, i int, pid string, o streamOpts) {
	// Once: an inline wire fetch reaches its first row on the reader
	// goroutine.
	var first sync.Once
	firstDone := func() {
		first.Do(func() {
			if o.onFirst != nil {
				o.onFirst()
			}
		})
	}
	defer firstDone()
	if w, ok := e.fetcher.(*wireFetcher); ok && o.hold == nil {
		// The wire client's reader counts and accepts rows itself, as the
		// ping-pong's client does.
		var n atomic.Int64
		var last time.Time // the reader goroutine's
		err := w.fetchInline(ctx, fetchQuery(pid), o.window, func(int) {
			now := time.Now()
			if n.Add(1) > 1 {
				s.lat.record(i, now.Sub(last))
			} else {
				firstDone()
			}
			last = now
			s.rows.Add(1)
		})
		if err != nil {
			s.fail(fmt.Errorf("stream of %s: after %d rows: %w", pid, n.Load(), err))
			return
		}
		if got := n.Load(); o.want > 0 && got != int64(o.want) {
			s.fail(fmt.Errorf("stream of %s: %d rows, want %d", pid, got, o.want))
		}
		return
	}
	n := 0
	var last time.Time
	for _, err := range e.fetcher.fetch(ctx, fetchQuery(pid), o.window) {
		if err != nil {
			s.fail(fmt.Errorf("stream of %s: after %d rows: %w", pid, n, err))
			return
		}
		now := time.Now()
		if n > 0 {
			s.lat.record(i, now.Sub(last))
		}
		last = now
		n++
		s.rows.Add(1)
		if n == 1 {
			firstDone()
			if o.hold != nil {
				select {
				case <-o.hold:
				case <-ctx.Done():
				}
				if o.abortAfterHold {
					return
				}
				// The hold is the scenario's, not the handshake's.
				last = time.Now()
			}
		}
	}
	if o.want > 0 && n != o.want {
		s.fail(fmt.Errorf("stream of %s: %d rows, want %d", pid, n, o.want))
	}
}

// runFetch is a fetch scenario: the ping-pong baseline, then the server,
// same streams, rows and window. With Rounds, it runs the pair that many
// times and keeps the round of median ratio.
func (e *env) runFetch(ctx context.Context, spec Spec, res *ScenarioResult) error {
	pids, err := e.seed(ctx, spec.Streams, spec.Rows)
	if err != nil {
		return err
	}
	return e.pairedRounds(res, func(label string, _ bool) (baseline, server *Measure, err error) {
		if baseline, err = e.pingPong(ctx, label+" ping-pong", spec.Streams, spec.Rows, spec.Window); err != nil {
			return baseline, nil, err
		}
		e.settle()
		server, err = e.fetchLoad(ctx, label, pids, spec.Rows, spec.Window)
		return baseline, server, err
	})
}

func safeRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// fetchLoad runs one stream per pid at once and waits for all.
func (e *env) fetchLoad(ctx context.Context, name string, pids []string, rows, window int) (*Measure, error) {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	stopProfile := e.profile(name)
	ph := e.startPhase(name+" eventsource", int64(len(pids)*rows), 0)
	var wg sync.WaitGroup
	for i, pid := range pids {
		wg.Go(func() { e.fetchOne(ctx, ph.sink(), i, pid, streamOpts{window: window, want: rows}) })
	}
	wg.Wait()
	ph.end = time.Now()
	stopProfile()
	m := ph.finish()
	if err := ctx.Err(); err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// openingConcurrency bounds the streams being opened at once (subscribed
// and waiting for their first row), so 10,000 requests do not all wait on
// one another; every stream stays open once it has its first row.
const openingConcurrency = 1000

// runOpen opens spec.Streams streams, leaves each unaccepted after its
// first row, measures the server's RSS and MySQL connections while they
// sit (and a probe stream's rows/s, to see that they slow nobody down),
// then releases them and measures the drain.
func (e *env) runOpen(ctx context.Context, spec Spec, res *ScenarioResult, done map[string]*ScenarioResult) error {
	pids, err := e.seed(ctx, spec.Streams, spec.Rows)
	if err != nil {
		return err
	}
	var probe []string
	if spec.ProbeRows > 0 {
		if probe, err = e.seed(ctx, 1, spec.ProbeRows); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	o := &OpenStreams{Streams: spec.Streams}
	res.Open = o
	e.settle()
	var before procSample
	if e.serverPID > 0 {
		before, _ = readProc(e.serverPID)
		o.RSSBefore = before.rss
	}
	threadsBefore, err := e.threadsConnected(ctx)
	if err != nil {
		return err
	}

	stopProfile := e.profile(spec.Name)
	defer stopProfile()
	ph := e.startPhase(spec.Name+" eventsource", int64(spec.Streams*spec.Rows), 0)
	release := make(chan struct{})
	var opened, all sync.WaitGroup
	opened.Add(len(pids))
	sem := make(chan struct{}, openingConcurrency)
	launched := 0
launch:
	for i, pid := range pids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		launched++
		all.Go(func() {
			e.fetchOne(ctx, ph.sink(), i, pid, streamOpts{window: 1, want: spec.Rows, hold: release,
				onFirst: func() { opened.Done(); <-sem }})
		})
	}
	opened.Add(launched - len(pids))
	waitErr := waitCtx(ctx, &opened)
	o.OpenSeconds = time.Since(ph.start).Seconds()
	o.OpenedAt = o.OpenSeconds
	if waitErr == nil {
		e.progress().Note(fmt.Sprintf("%d streams open after %.1fs, each waiting for its first \"accepted\"", spec.Streams, o.OpenSeconds))
		e.sit(ctx, spec, o, threadsBefore, probe, done)
	}
	o.ReleasedAt = time.Since(ph.start).Seconds()
	released := time.Now()
	close(release)
	allErr := waitCtx(ctx, &all)
	ph.end = time.Now()
	o.DrainSeconds = ph.end.Sub(released).Seconds()
	if o.DrainSeconds > 0 {
		o.DrainRowsPerSec = float64(spec.Streams*(spec.Rows-1)) / o.DrainSeconds
	}
	res.Server = ph.finish()
	if res.Server.MySQLConnsMax != nil {
		o.MySQLConnsMax = max(o.MySQLConnsMax, *res.Server.MySQLConnsMax)
	}
	if err := errors.Join(waitErr, allErr); err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	return nil
}

// sit measures while every stream of an open scenario waits for its
// client: RSS, MySQL connections, and a probe stream.
func (e *env) sit(ctx context.Context, spec Spec, o *OpenStreams, threadsBefore int, probe []string, done map[string]*ScenarioResult) {
	// Let the last pages' buffers go and the pool's connections idle.
	time.Sleep(time.Second)
	if e.serverPID > 0 {
		if s, err := readProc(e.serverPID); err == nil {
			o.RSSOpen = s.rss
			o.RSSPerStream = float64(s.rss-o.RSSBefore) / float64(spec.Streams)
		}
	}
	poll := func() {
		if open, inUse, ok := e.conns(); ok {
			o.MySQLConnsMax = max(o.MySQLConnsMax, open)
			o.MySQLInUseWhileOpen = max(o.MySQLInUseWhileOpen, inUse)
		}
		if n, err := e.threadsConnected(ctx); err == nil {
			o.ThreadsConnectedDelta = max(o.ThreadsConnectedDelta, n-threadsBefore)
		}
	}
	stop := make(chan struct{})
	var poller sync.WaitGroup
	poller.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			poll()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	if len(probe) == 1 {
		s, rows, errs := newSink()
		start := time.Now()
		e.fetchOne(ctx, s, 0, probe[0], streamOpts{window: 1, want: spec.ProbeRows})
		secs := time.Since(start).Seconds()
		o.ProbeRows = rows.Load()
		o.ProbeErrors = errs.Load()
		o.ProbeRowsPerSec = float64(rows.Load()) / secs
		o.ProbeLatency = s.lat.summary()
		if w1 := done["single-w1"]; w1 != nil && w1.Server != nil {
			o.ProbeVsSingle = o.ProbeRowsPerSec / w1.Server.RowsPerSec
		}
	}
	time.Sleep(time.Second)
	close(stop)
	poller.Wait()
	if e.srv != nil {
		e.settle()
		if s, err := readProc(e.serverPID); err == nil {
			o.RSSOpenSettled = s.rss
			o.RSSPerStreamSettled = float64(s.rss-o.RSSBefore) / float64(spec.Streams)
		}
	}
}

// runMix runs spec.Streams fetches while spec.Persisters clients persist
// and spec.Stalled streams sit on their first row, never accepting it. The
// baseline is the ping-pong of the fetches alone.
func (e *env) runMix(ctx context.Context, spec Spec, res *ScenarioResult) error {
	pids, err := e.seed(ctx, spec.Streams, spec.Rows)
	if err != nil {
		return err
	}
	var stalled []string
	if spec.Stalled > 0 {
		if stalled, err = e.seed(ctx, spec.Stalled, 2); err != nil {
			return err
		}
	}
	if res.Baseline, err = e.pingPong(ctx, spec.Name+" ping-pong", spec.Streams, spec.Rows, spec.Window); err != nil {
		return err
	}
	e.settle()
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	stopProfile := e.profile(spec.Name)
	defer stopProfile()
	ph := e.startPhase(spec.Name+" eventsource", int64(spec.Streams*spec.Rows), 0)

	release := make(chan struct{})
	var stalledOpen, stalledAll sync.WaitGroup
	stalledSink, _, stalledErrs := newSink()
	for i, pid := range stalled {
		stalledOpen.Add(1)
		stalledAll.Go(func() {
			e.fetchOne(ctx, stalledSink, i, pid, streamOpts{window: 1, hold: release, abortAfterHold: true, onFirst: stalledOpen.Done})
		})
	}
	stallErr := waitCtx(ctx, &stalledOpen)

	pctx, stopPersisting := context.WithCancel(ctx)
	var persisters sync.WaitGroup
	for w := range spec.Persisters {
		persisters.Go(func() { e.persistLoop(pctx, ph, w) })
	}
	// The streams start once persists are coming back, so that the two
	// loads overlap even when the streams are short.
	for spec.Persisters > 0 && ph.persists.Load() == 0 && ph.errors.Load() == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	var streams sync.WaitGroup
	for i, pid := range pids {
		streams.Go(func() { e.fetchOne(ctx, ph.sink(), i, pid, streamOpts{window: spec.Window, want: spec.Rows}) })
	}
	streams.Wait()
	ph.end = time.Now()
	stopPersisting()
	persisters.Wait()
	close(release)
	stalledAll.Wait()
	res.Server = ph.finish()
	res.Stalled = &Stalled{Streams: spec.Stalled, Errors: stalledErrs.Load()}
	return errors.Join(stallErr, ctx.Err())
}
