package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux the kernel ABI promises it for.
const clockTicks = 100

// procSample is one reading of a process from /proc.
type procSample struct {
	cpu time.Duration // user + system
	rss int64         // bytes
}

// readProc reads the CPU time and resident set of pid.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[i+2:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	s := procSample{cpu: time.Duration(utime+stime) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return procSample{}, fmt.Errorf("parse /proc/%d/status VmRSS %q: %w", pid, rest, err)
			}
			s.rss = kb * 1024
		}
	}
	return s, nil
}

// Histograms record nanoseconds from 1 ns to 2 minutes with 2 significant
// digits (1%), which keeps each one near 30 KB.
const (
	histMax    = int64(2 * time.Minute)
	histDigits = 2
	latShards  = 8
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, histDigits) }

// latency collects durations from many goroutines: sharded, so streams
// rarely contend, with a running total and an interval the sampler takes.
type latency struct {
	shards [latShards]latShard
}

type latShard struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram
}

func newLatency() *latency {
	l := &latency{}
	for i := range l.shards {
		l.shards[i].total, l.shards[i].interval = newHist(), newHist()
	}
	return l
}

func (l *latency) record(shard int, d time.Duration) {
	v := min(max(int64(d), 1), histMax)
	s := &l.shards[uint(shard)%latShards]
	s.mu.Lock()
	_ = s.total.RecordValue(v)
	_ = s.interval.RecordValue(v)
	s.mu.Unlock()
}

// takeInterval returns what was recorded since the last call.
func (l *latency) takeInterval() *hdrhistogram.Histogram {
	h := newHist()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		h.Merge(s.interval)
		s.interval.Reset()
		s.mu.Unlock()
	}
	return h
}

func (l *latency) summary() *Latency {
	h := newHist()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		h.Merge(s.total)
		s.mu.Unlock()
	}
	if h.TotalCount() == 0 {
		return nil
	}
	return &Latency{
		Count: h.TotalCount(),
		P50:   micros(h.ValueAtQuantile(50)),
		P99:   micros(h.ValueAtQuantile(99)),
		P999:  micros(h.ValueAtQuantile(99.9)),
		Max:   micros(h.Max()),
	}
}

func micros(ns int64) float64 { return float64(ns) / 1e3 }

// watched is a process whose CPU and RSS a phase follows.
type watched struct {
	name  string
	pid   int
	first procSample
	last  procSample
	peak  int64
	ok    bool
}

// phase is one measured run: the server's or a baseline's. Workers count
// into it; a sampler goroutine turns the counters into a timeline.
type phase struct {
	e     *env
	label string
	start time.Time
	end   time.Time
	total int64 // expected rows or persists, for progress (0: by time)
	until time.Time

	rows     atomic.Int64
	persists atomic.Int64
	errors   atomic.Int64
	lat      *latency // per-row handshake
	plat     *latency // per persist

	errMu      sync.Mutex
	errSamples []string

	// Written by the sampler until done is closed, then read by finish.
	procs    []*watched
	samples  []Sample
	maxConns int
	maxInUse int
	stop     chan struct{}
	done     chan struct{}
}

// startPhase begins a measured phase and its sampler. total is what
// progress counts to (rows, or persists when 0 and until is set).
func (e *env) startPhase(label string, total int64, until time.Duration) *phase {
	p := &phase{e: e, label: label, total: total, lat: newLatency(), plat: newLatency(), stop: make(chan struct{}), done: make(chan struct{})}
	for _, w := range e.watchList() {
		if s, err := readProc(w.pid); err == nil {
			w.first, w.last, w.peak, w.ok = s, s, s.rss, true
		}
		p.procs = append(p.procs, w)
	}
	e.progress().Start(label, total, until)
	p.start = time.Now()
	if until > 0 {
		p.until = p.start.Add(until)
	}
	go p.sample()
	return p
}

func (p *phase) fail(err error) {
	if err == nil {
		return
	}
	if p.errors.Add(1) <= 5 {
		p.errMu.Lock()
		p.errSamples = append(p.errSamples, err.Error())
		p.errMu.Unlock()
	}
}

// sample records a point every interval until stop.
func (p *phase) sample() {
	defer close(p.done)
	t := time.NewTicker(p.e.interval())
	defer t.Stop()
	lastT, lastRows, lastPersists := p.start, int64(0), int64(0)
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			rows, persists := p.rows.Load(), p.persists.Load()
			dt := now.Sub(lastT).Seconds()
			h, ph := p.lat.takeInterval(), p.plat.takeInterval()
			s := Sample{
				T:              now.Sub(p.start).Seconds(),
				RowsPerSec:     float64(rows-lastRows) / dt,
				PersistsPerSec: float64(persists-lastPersists) / dt,
			}
			if h.TotalCount() > 0 {
				s.P50, s.P99 = micros(h.ValueAtQuantile(50)), micros(h.ValueAtQuantile(99))
			}
			if ph.TotalCount() > 0 {
				s.PersistP50, s.PersistP99 = micros(ph.ValueAtQuantile(50)), micros(ph.ValueAtQuantile(99))
			}
			for i, w := range p.procs {
				ps, err := readProc(w.pid)
				if err != nil || !w.ok {
					continue
				}
				if i == 0 {
					s.CPU = (ps.cpu - w.last.cpu).Seconds() / dt
					s.RSS = ps.rss
				}
				w.last, w.peak = ps, max(w.peak, ps.rss)
			}
			if open, inUse, ok := p.e.conns(); ok {
				s.MySQLConns, s.MySQLInUse = open, inUse
				p.maxConns, p.maxInUse = max(p.maxConns, open), max(p.maxInUse, inUse)
			}
			p.samples = append(p.samples, s)
			lastT, lastRows, lastPersists = now, rows, persists
			done := rows
			if p.total == 0 && !p.until.IsZero() {
				done = int64(now.Sub(p.start) / time.Millisecond)
			}
			p.e.progress().Update(done, p.detail(s))
		}
	}
}

func (p *phase) detail(s Sample) string {
	var b strings.Builder
	if s.RowsPerSec > 0 || p.rows.Load() > 0 {
		fmt.Fprintf(&b, "%s rows/s", human(s.RowsPerSec))
	}
	if s.PersistsPerSec > 0 || p.persists.Load() > 0 {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s persists/s", human(s.PersistsPerSec))
	}
	if s.P99 > 0 {
		fmt.Fprintf(&b, ", row p99 %s", durMicros(s.P99))
	}
	if s.PersistP99 > 0 {
		fmt.Fprintf(&b, ", persist p99 %s", durMicros(s.PersistP99))
	}
	if n := p.errors.Load(); n > 0 {
		fmt.Fprintf(&b, ", %d errors", n)
	}
	return b.String()
}

// finish stops the sampler and sums the phase up. end is when the work
// ended (the zero time: now).
func (p *phase) finish() *Measure {
	if p.end.IsZero() {
		p.end = time.Now()
	}
	close(p.stop)
	<-p.done
	m := &Measure{
		Label:          p.label,
		Rows:           p.rows.Load(),
		Persists:       p.persists.Load(),
		Seconds:        p.end.Sub(p.start).Seconds(),
		Latency:        p.lat.summary(),
		PersistLatency: p.plat.summary(),
		Errors:         p.errors.Load(),
		Timeline:       p.samples,
	}
	p.errMu.Lock()
	m.ErrorSamples = p.errSamples
	p.errMu.Unlock()
	if m.Seconds > 0 {
		m.RowsPerSec = float64(m.Rows) / m.Seconds
		m.PersistsPerSec = float64(m.Persists) / m.Seconds
	}
	if open, inUse, ok := p.e.conns(); ok {
		p.maxConns, p.maxInUse = max(p.maxConns, open), max(p.maxInUse, inUse)
		m.MySQLConnsMax, m.MySQLInUseMax = &p.maxConns, &p.maxInUse
	}
	for _, w := range p.procs {
		if !w.ok {
			continue
		}
		if s, err := readProc(w.pid); err == nil {
			w.last, w.peak = s, max(w.peak, s.rss)
		}
		cpu := (w.last.cpu - w.first.cpu).Seconds()
		u := ProcUsage{Name: w.name, PID: w.pid, CPUSeconds: cpu, RSSStart: w.first.rss, RSSPeak: w.peak, RSSEnd: w.last.rss}
		if m.Seconds > 0 {
			u.Cores = cpu / m.Seconds
		}
		if m.Rows > 0 {
			u.CPUPerRow = cpu / float64(m.Rows) * 1e6
		} else if m.Persists > 0 {
			u.CPUPerRow = cpu / float64(m.Persists) * 1e6
		}
		m.Processes = append(m.Processes, u)
	}
	p.e.progress().Done(fmt.Sprintf("%s: %s", p.label, m.oneLine()))
	return m
}

// waitCtx waits for wg, or ctx.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
