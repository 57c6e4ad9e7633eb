package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/eventsource/eventsource/client"
)

// runSSE holds Subscribers SSE streams of one domain open on the
// in-process server's HTTP gateway, persists Events events over Redis at
// EventRate, and measures from each persist's reply (the commit) to the
// event's arrival at every subscriber.
func (e *env) runSSE(ctx context.Context, spec Spec, res *ScenarioResult) error {
	if e.srv == nil || e.srv.HTTPAddr() == nil {
		return errors.New("the sse scenario needs the in-process server's HTTP gateway; it cannot measure an external server")
	}
	domain := "bench-sse-" + e.runID
	streamURL := "http://" + e.srv.HTTPAddr().String() + "/events?domain=" + url.QueryEscape(domain)
	e.progress().Note(fmt.Sprintf("%s: connecting %d subscribers", spec.Name, spec.Subscribers))
	pool, err := e.openSubscribers(ctx, streamURL, spec.Subscribers)
	if err != nil {
		return err
	}
	defer pool.close()
	e.progress().Note(fmt.Sprintf("%s: %d subscribers connected in %.1fs", spec.Name, spec.Subscribers, pool.connectSeconds()))

	interval := time.Duration(float64(time.Second) / spec.EventRate)
	stopProfile := e.profile(spec.Name)
	ph := e.startPhase(spec.Name+" server", 0, time.Duration(spec.Events)*interval)
	var last int64
	err = e.persistTicks(ctx, ph, spec.Events, interval, "sse", domain, func(id, at int64) error {
		last = id
		return pool.commit(id, at)
	})
	if err != nil {
		stopProfile()
		ph.finish()
		return err
	}
	ph.end = time.Now()
	sum, err := pool.finish(last)
	stopProfile()
	m := ph.finish()
	if err != nil {
		return err
	}
	// The phase's items are deliveries: rows/s and CPU per item count them.
	m.Rows = sum.Deliveries
	if m.Seconds > 0 {
		m.RowsPerSec = float64(m.Rows) / m.Seconds
	}
	for i := range m.Processes {
		if m.Rows > 0 {
			m.Processes[i].CPUPerRow = m.Processes[i].CPUSeconds / float64(m.Rows) * 1e6
		}
	}
	m.Latency = &Latency{Count: sum.Deliveries, P50: sum.P50, P99: sum.P99, P999: sum.P999, Max: sum.Max}
	res.Server, res.SSE = m, &sum
	return nil
}

// pool is a subscriber pool, in this process or a child.
type pool interface {
	commit(id, at int64) error
	finish(last int64) (PoolSummary, error)
	connectSeconds() float64
	close()
}

// poolWait bounds the wait for the last event at every subscriber.
const poolWait = 30 * time.Second

// openSubscribers opens the pool here when the process has file
// descriptors for both ends of every connection (the server is in this
// process too), else in a child process of its own.
func (e *env) openSubscribers(ctx context.Context, streamURL string, n int) (pool, error) {
	var lim syscall.Rlimit
	fdsHere := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur >= uint64(2*n+1024)
	if fdsHere || len(e.cfg.SubscriberCommand) == 0 {
		if !fdsHere {
			return nil, fmt.Errorf("%d subscribers and their server connections need about %d file descriptors, this process may open %d: "+
				"run the scenario through eventsource bench, which holds the subscribers in a child process", n, 2*n+1024, lim.Cur)
		}
		p, secs, err := openPool(ctx, streamURL, n)
		if err != nil {
			return nil, err
		}
		return &localPool{p: p, secs: secs, commits: map[int64]int64{}}, nil
	}
	return startChildPool(ctx, e.cfg.SubscriberCommand, streamURL, n)
}

type localPool struct {
	p       *subscriberPool
	secs    float64
	commits map[int64]int64
}

func (l *localPool) commit(id, at int64) error { l.commits[id] = at; return nil }
func (l *localPool) connectSeconds() float64   { return l.secs }
func (l *localPool) finish(last int64) (PoolSummary, error) {
	sum := l.p.finish(l.commits, last, poolWait)
	sum.ConnectSeconds = l.secs
	return sum, nil
}
func (l *localPool) close() {} // finish closes the connections

// childPool runs RunSubscriberPool in a child process, over its stdin and
// stdout.
type childPool struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr *tailBuffer
	secs   float64
	w      *bufio.Writer
}

func startChildPool(ctx context.Context, command []string, streamURL string, n int) (*childPool, error) {
	args := append(append([]string{}, command[1:]...), "--url", streamURL, "--subscribers", strconv.Itoa(n))
	cmd := exec.CommandContext(ctx, command[0], args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("subscriber pool: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("subscriber pool: %w", err)
	}
	c := &childPool{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), stderr: &tailBuffer{}, w: bufio.NewWriter(stdin)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("subscriber pool: start %s: %w", command[0], err)
	}
	var ready struct {
		Ready          int     `json:"ready"`
		ConnectSeconds float64 `json:"connect_seconds"`
	}
	if err := c.read(&ready); err != nil {
		c.close()
		return nil, err
	}
	c.secs = ready.ConnectSeconds
	return c, nil
}

// read decodes the child's next line.
func (c *childPool) read(v any) error {
	if !c.out.Scan() {
		err := c.cmd.Wait()
		return fmt.Errorf("subscriber pool ended (%v): %s", errors.Join(err, c.out.Err()), bytes.TrimSpace(c.stderr.bytes()))
	}
	if err := json.Unmarshal(c.out.Bytes(), v); err != nil {
		return fmt.Errorf("subscriber pool said %q: %w", c.out.Text(), err)
	}
	return nil
}

func (c *childPool) commit(id, at int64) error {
	if _, err := fmt.Fprintf(c.w, "commit %d %d\n", id, at); err != nil {
		return fmt.Errorf("subscriber pool: %w", err)
	}
	return nil
}

func (c *childPool) connectSeconds() float64 { return c.secs }

func (c *childPool) finish(last int64) (PoolSummary, error) {
	var sum PoolSummary
	if _, err := fmt.Fprintf(c.w, "end %d\n", last); err != nil {
		return sum, fmt.Errorf("subscriber pool: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return sum, fmt.Errorf("subscriber pool: %w", err)
	}
	err := c.read(&sum)
	return sum, err
}

func (c *childPool) close() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// tailBuffer keeps the last KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 1024 {
		t.buf = t.buf[len(t.buf)-1024:]
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// sseFigures judges commit-to-delivery latency at every subscriber.
func (s *ScenarioResult) sseFigures(note string) []Figure {
	spec, sum := s.Spec, s.SSE
	if sum == nil {
		sum = &PoolSummary{}
	}
	if note == "" && (sum.Missing > 0 || sum.Errors > 0) {
		note = fmt.Sprintf("%d deliveries missing, %d subscriber errors %s", sum.Missing, sum.Errors, sum.FirstError)
	}
	p99 := Figure{Scenario: spec.Name, Name: "commit→delivery p99", Value: sum.P99 / 1000, Unit: "ms", Note: note}
	if spec.MaxP99 > 0 {
		p99.Target = fmt.Sprintf("≤ %g ms", float64(spec.MaxP99)/float64(time.Millisecond))
		p99.Met = ptr(sum.Deliveries > 0 && sum.P99 <= float64(spec.MaxP99)/1000 && note == "")
	}
	p50 := Figure{Scenario: spec.Name, Name: "commit→delivery p50", Value: sum.P50 / 1000, Unit: "ms"}
	n := Figure{Scenario: spec.Name, Name: "deliveries", Value: float64(sum.Deliveries), Unit: "",
		Note: fmt.Sprintf("%d subscribers × %d events; %d missing; connected in %.1fs", sum.Subscribers, sum.Events, sum.Missing, sum.ConnectSeconds)}
	return []Figure{p99, p50, n}
}

// persistTicks persists n events of domain, one each interval, through the
// client, timing each in ph; committed hears each event's id and when its
// reply came (Unix nanoseconds). It returns ctx's error when ctx ends
// first, or committed's.
func (e *env) persistTicks(ctx context.Context, ph *phase, n int, interval time.Duration, pid, domain string, committed func(id, at int64) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		sent := time.Now()
		ok, err := e.cl.Persist(ctx, client.Document{PID: e.pidPrefix() + pid, Domain: domain, Name: "tick", Data: map[string]int{"n": i}})
		at := time.Now()
		if err != nil {
			ph.fail(err)
			continue
		}
		ph.persists.Add(1)
		ph.plat.record(i, at.Sub(sent))
		if err := committed(ok.InsertID, at.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}
