// Package frontier knows, for each table, the id up to which commits are
// settled: every id at or below it is committed and readable, or counts
// as rolled back. Followed streams deliver rows up to it and no further,
// so that a row is never delivered while a lower id may still commit
// (ids do not always commit in id order: several servers, or MySQL 8's
// lock mode 2).
//
// Commits are heard as announcements (each server announces the id ranges
// it committed on the commit channel). An id that no announcement covers
// is a gap: a commit still in flight, a rollback, an announcement lost, or
// a row written by other means. A gap holds the frontier back for at most
// GapWait; the table's highest id is polled every PollEvery, so that rows
// nobody announced are found too.
package frontier

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Config says how a Frontier waits and polls.
type Config struct {
	// GapWait is how long an id no announcement covers may hold the
	// frontier back before it counts as rolled back (0: 1 s).
	GapWait time.Duration
	// PollEvery is how often the highest id of a watched table is read
	// (0: 1 s).
	PollEvery time.Duration
	// Highest reads a table's highest committed id (SELECT MAX(id)).
	Highest func(ctx context.Context, table string) (int64, error)
	Logger  *slog.Logger
	// Skipped, if not nil, hears each gap given up on and how many ids it
	// spanned.
	Skipped func(table string, ids int64)
}

// Frontier tracks the settled frontier of each table it is asked about.
// Its methods are safe for concurrent use; the callbacks of Watch run
// without its lock held and must not block.
type Frontier struct {
	cfg    Config
	mu     sync.Mutex
	tables map[string]*table
	quit   chan struct{}
	done   chan struct{}
	poke   chan struct{}
}

// table is one table's state.
type table struct {
	ready bool  // safe was read from the table once
	safe  int64 // every id at or below is settled
	// ranges are announced commits above safe, sorted, not overlapping.
	ranges [][2]int64
	// known is the highest id known to exist (announced or polled).
	known int64
	// gapSince is when the frontier first waited at safe+1 (zero: it
	// does not wait).
	gapSince time.Time
	watchers map[*watcher]struct{}
}

type watcher struct {
	after  int64
	notify func(int64)
}

// New returns a frontier; Run polls and expires gaps.
func New(cfg Config) *Frontier {
	if cfg.GapWait <= 0 {
		cfg.GapWait = time.Second
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Frontier{cfg: cfg, tables: map[string]*table{}, quit: make(chan struct{}), done: make(chan struct{}), poke: make(chan struct{}, 1)}
}

// Run polls watched tables and expires gaps until Close.
func (f *Frontier) Run() {
	defer close(f.done)
	poll := time.NewTicker(f.cfg.PollEvery)
	defer poll.Stop()
	// Gaps are looked at a tenth of GapWait apart: a gap is given up on
	// within 1.1 GapWait.
	gaps := time.NewTicker(f.cfg.GapWait / 10)
	defer gaps.Stop()
	for {
		select {
		case <-f.quit:
			return
		case <-poll.C:
			f.pollWatched()
		case <-f.poke:
			f.pollWatched()
		case <-gaps.C:
			f.mu.Lock()
			var fire []func()
			for name, t := range f.tables {
				fire = append(fire, f.advance(name, t)...)
			}
			f.mu.Unlock()
			run(fire)
		}
	}
}

// Close stops Run.
func (f *Frontier) Close() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
}

// Safe returns table's frontier, reading the table's highest id the first
// time (what is stored when the server starts counts as settled).
func (f *Frontier) Safe(ctx context.Context, name string) (int64, error) {
	f.mu.Lock()
	t := f.table(name)
	if t.ready {
		safe := t.safe
		f.mu.Unlock()
		return safe, nil
	}
	f.mu.Unlock()
	highest, err := f.cfg.Highest(ctx, name)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !t.ready {
		t.ready = true
		t.safe = max(t.safe, highest)
		t.known = max(t.known, highest)
		t.ranges = slices.DeleteFunc(t.ranges, func(r [2]int64) bool { return r[1] <= t.safe })
		fire := f.advance(name, t)
		defer run(fire)
	}
	return t.safe, nil
}

// Committed hears that ids of table were committed.
func (f *Frontier) Committed(name string, ranges [][2]int64) {
	f.mu.Lock()
	t := f.table(name)
	for _, r := range ranges {
		if r[1] < r[0] || (t.ready && r[1] <= t.safe) {
			continue
		}
		t.known = max(t.known, r[1])
		if t.ready {
			// Before its first Safe, a table's frontier is the highest id
			// read then: its ranges would only pile up.
			t.ranges = insertRange(t.ranges, r)
		}
	}
	fire := f.advance(name, t)
	f.mu.Unlock()
	run(fire)
}

// Uncertain hears that rows of a table may have been committed that no
// announcement names: the table's highest id is read at once.
func (f *Frontier) Uncertain(string) {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// Watch calls notify once, with the frontier, when table's frontier passes
// after (at once if it has). cancel forgets the watch.
func (f *Frontier) Watch(name string, after int64, notify func(safe int64)) (cancel func()) {
	f.mu.Lock()
	t := f.table(name)
	if t.ready && t.safe > after {
		safe := t.safe
		f.mu.Unlock()
		notify(safe)
		return func() {}
	}
	w := &watcher{after: after, notify: notify}
	t.watchers[w] = struct{}{}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(t.watchers, w)
		f.mu.Unlock()
	}
}

// Watchers counts the watches waiting, for metrics and tests.
func (f *Frontier) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.tables {
		n += len(t.watchers)
	}
	return n
}

func (f *Frontier) table(name string) *table {
	t := f.tables[name]
	if t == nil {
		t = &table{watchers: map[*watcher]struct{}{}}
		f.tables[name] = t
	}
	return t
}

// advance moves t's frontier over announced ranges and expired gaps, and
// returns the notifications it owes (run them after unlocking).
func (f *Frontier) advance(name string, t *table) []func() {
	if !t.ready {
		return nil
	}
	before := t.safe
	now := time.Now()
	for {
		if len(t.ranges) > 0 && t.ranges[0][0] <= t.safe+1 {
			t.safe = max(t.safe, t.ranges[0][1])
			t.ranges = t.ranges[1:]
			t.gapSince = time.Time{}
			continue
		}
		if t.known <= t.safe {
			t.gapSince = time.Time{}
			break
		}
		// Ids above safe exist, and safe+1 is not announced.
		if t.gapSince.IsZero() {
			t.gapSince = now
			break
		}
		if now.Sub(t.gapSince) < f.cfg.GapWait {
			break
		}
		next := t.known
		if len(t.ranges) > 0 {
			next = t.ranges[0][0] - 1
		}
		if f.cfg.Skipped != nil {
			f.cfg.Skipped(name, next-t.safe)
		}
		t.safe, t.gapSince = next, time.Time{}
	}
	if t.safe == before {
		return nil
	}
	var fire []func()
	for w := range t.watchers {
		if t.safe > w.after {
			delete(t.watchers, w)
			notify, safe := w.notify, t.safe
			fire = append(fire, func() { notify(safe) })
		}
	}
	return fire
}

// pollWatched reads the highest id of each table that has watchers.
func (f *Frontier) pollWatched() {
	f.mu.Lock()
	var names []string
	for name, t := range f.tables {
		if t.ready && len(t.watchers) > 0 {
			names = append(names, name)
		}
	}
	f.mu.Unlock()
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.PollEvery)
		highest, err := f.cfg.Highest(ctx, name)
		cancel()
		if err != nil {
			f.cfg.Logger.Warn("read the highest id of a followed table", slog.String("table", name), slog.Any("err", err))
			continue
		}
		f.mu.Lock()
		t := f.table(name)
		t.known = max(t.known, highest)
		fire := f.advance(name, t)
		f.mu.Unlock()
		run(fire)
	}
}

// insertRange adds r to sorted, non-overlapping ranges, merging.
func insertRange(ranges [][2]int64, r [2]int64) [][2]int64 {
	i, _ := slices.BinarySearchFunc(ranges, r, func(a, b [2]int64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	ranges = slices.Insert(ranges, i, r)
	// Merge with neighbours that touch or overlap.
	out := ranges[:0]
	for _, x := range ranges {
		if n := len(out); n > 0 && x[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

func run(fire []func()) {
	for _, fn := range fire {
		fn()
	}
}
