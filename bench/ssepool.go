package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// subscriberPool holds SSE subscribers on one GET /events URL, each on its
// own HTTP/1.1 connection read by its own goroutine, and records when each
// event reached each subscriber. It runs in the bench process, or in a
// child process (RunSubscriberPool) when the bench process has too few file
// descriptors for the server's connections and the pool's both.
type subscriberPool struct {
	subs   []*subscriber
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// subscriber is one connection. recv and err are written by its goroutine
// only, and read once it has stopped; newest is the highest id it got.
type subscriber struct {
	conn   net.Conn
	r      *bufio.Reader
	recv   []delivery
	err    error
	newest atomic.Int64
}

// delivery is one event's arrival at one subscriber.
type delivery struct {
	id int64
	at int64 // unix nanoseconds
}

// PoolSummary is what a pool measured: latency from each event's commit to
// its arrival at each subscriber.
type PoolSummary struct {
	Subscribers int     `json:"subscribers"`
	Events      int     `json:"events"`
	Deliveries  int64   `json:"deliveries"`
	Missing     int64   `json:"missing"`
	Early       int64   `json:"early"` // arrived before the bench heard the persist reply
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	P50         float64 `json:"p50_us"`
	P90         float64 `json:"p90_us"`
	P99         float64 `json:"p99_us"`
	P999        float64 `json:"p999_us"`
	Max         float64 `json:"max_us"`
	// ConnectSeconds is how long opening every subscriber took.
	ConnectSeconds float64 `json:"connect_seconds"`
}

// openPool connects n subscribers to streamURL (a GET /events URL without
// a start point) and returns once every one has its start id: from then
// on each hears every new event.
func openPool(ctx context.Context, streamURL string, n int) (*subscriberPool, float64, error) {
	u, err := url.Parse(streamURL)
	if err != nil {
		return nil, 0, fmt.Errorf("subscriber pool: %w", err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &subscriberPool{subs: make([]*subscriber, n), cancel: cancel}
	start := time.Now()
	// Connect with a bounded number of dials in flight, so the server's
	// accept queue never overflows.
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	var dialing sync.WaitGroup
	for i := range p.subs {
		dialing.Add(1)
		sem <- struct{}{}
		go func() {
			defer dialing.Done()
			defer func() { <-sem }()
			s, err := connect(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			p.subs[i] = s
		}()
	}
	dialing.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, s := range p.subs {
			if s != nil {
				s.conn.Close()
			}
		}
		cancel()
		return nil, 0, fmt.Errorf("subscriber pool: %w", err)
	}
	for _, s := range p.subs {
		p.wg.Add(1)
		go p.read(pctx, s)
	}
	return p, time.Since(start).Seconds(), nil
}

// connect opens one stream and reads up to its start id.
func connect(ctx context.Context, u *url.URL) (*subscriber, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Host, err)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", u.RequestURI(), u.Host); err != nil {
		conn.Close()
		return nil, fmt.Errorf("request stream: %w", err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read stream response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("stream answered %d: %s", res.StatusCode, b)
	}
	// The stream opens with retry, a comment and an id-only message that
	// sets the start point: wait for that id.
	r := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("read stream start: %w", err)
		}
		if bytes.HasPrefix(line, []byte("id: ")) {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return &subscriber{conn: conn, r: r}, nil
}

// read records each message's arrival until the pool closes.
func (p *subscriberPool) read(ctx context.Context, s *subscriber) {
	defer p.wg.Done()
	r := s.r
	var id int64 = -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if ctx.Err() == nil {
				s.err = err
			}
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseInt(string(bytes.TrimSpace(line[4:])), 10, 64)
		case len(line) == 1 && id >= 0:
			s.recv = append(s.recv, delivery{id: id, at: time.Now().UnixNano()})
			if id > s.newest.Load() {
				s.newest.Store(id)
			}
			id = -1
		}
	}
}

// finish waits (up to wait) until every subscriber got event last, closes
// the pool, and measures against the commit times.
func (p *subscriberPool) finish(commits map[int64]int64, last int64, wait time.Duration) PoolSummary {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		behind := 0
		for _, s := range p.subs {
			if s.newest.Load() < last {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cancel()
	for _, s := range p.subs {
		s.conn.Close()
	}
	p.wg.Wait()

	sum := PoolSummary{Subscribers: len(p.subs), Events: len(commits)}
	h := hdrhistogram.New(1, histMax, histDigits)
	for _, s := range p.subs {
		got := map[int64]bool{}
		for _, d := range s.recv {
			commit, ok := commits[d.id]
			if !ok || got[d.id] {
				continue // not one of the measured events, or repeated
			}
			got[d.id] = true
			sum.Deliveries++
			lat := d.at - commit
			if lat <= 0 {
				sum.Early++
				lat = 1
			}
			_ = h.RecordValue(min(lat, histMax))
		}
		if s.err != nil {
			sum.Errors++
			if sum.FirstError == "" {
				sum.FirstError = s.err.Error()
			}
		}
	}
	sum.Missing = int64(len(p.subs))*int64(len(commits)) - sum.Deliveries
	if h.TotalCount() > 0 {
		sum.P50, sum.P90, sum.P99 = micros(h.ValueAtQuantile(50)), micros(h.ValueAtQuantile(90)), micros(h.ValueAtQuantile(99))
		sum.P999, sum.Max = micros(h.ValueAtQuantile(99.9)), micros(h.Max())
	}
	return sum
}

// RunSubscriberPool is the child-process side of a pool: it connects n
// subscribers to streamURL, prints {"ready": n, "connect_seconds": s},
// then reads "commit <id> <unix ns>" lines and a final "end <id>" from
// stdin, and prints the PoolSummary as one JSON line.
func RunSubscriberPool(ctx context.Context, streamURL string, n int, stdin io.Reader, stdout io.Writer) error {
	p, secs, err := openPool(ctx, streamURL, n)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(map[string]any{"ready": n, "connect_seconds": secs}); err != nil {
		return fmt.Errorf("subscriber pool: report ready: %w", err)
	}
	commits := map[int64]int64{}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "commit":
			id, err1 := strconv.ParseInt(f[1], 10, 64)
			at, err2 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return fmt.Errorf("subscriber pool: bad line %q: %w", sc.Text(), err)
			}
			commits[id] = at
		case len(f) == 2 && f[0] == "end":
			last, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("subscriber pool: bad line %q: %w", sc.Text(), err)
			}
			sum := p.finish(commits, last, 30*time.Second)
			sum.ConnectSeconds = secs
			return enc.Encode(sum)
		default:
			return fmt.Errorf("subscriber pool: bad line %q", sc.Text())
		}
	}
	p.cancel()
	return fmt.Errorf("subscriber pool: stdin ended before \"end\": %v", sc.Err())
}
