package soak

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/mysqlstore"
)

// run is one soak: what it started and what it learnt.
type run struct {
	cfg        Config
	id         string
	database   string
	domain     string // of the persisted events, which the SSE readers follow
	seedDomain string
	ch         channels
	db         *sql.DB // the soak's own: no default database, so not counted as the server's
	rdb        *redis.Client
	srv        *serverProc
	tap        *tap
	l          *ledger
	pids       []seededPid

	mu        sync.Mutex
	persisted map[string]persisted
	faults    []FaultRecord
	samples   []Sample
}

// Run soaks a server: it starts one, loads it for cfg.Duration with faults
// now and then, reports every cfg.ReportEvery on cfg.Out, checks the
// invariants, stops the server and drops its database. The summary says
// whether the soak passed; an error means it could not run (or was
// interrupted, with a summary of what it saw).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	id := randomHex(4)
	r := &run{
		cfg: cfg, id: id, database: "es_soak_" + id, domain: "soak-" + id, seedDomain: "soak-" + id + "-seed",
		ch: newChannels("es-soak:" + id + ":"), l: newLedger("es-soak:" + id + ":"), persisted: map[string]persisted{},
	}
	dir, err := os.MkdirTemp("", "eventsource-soak-"+id+"-")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	keepDir := true
	defer func() {
		if !keepDir {
			_ = os.RemoveAll(dir)
		}
	}()
	my := cfg.MySQL
	my.Database, my.PoolSize = "", 4
	if r.db, err = mysqlstore.Open(my); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer r.db.Close()
	// Every client publishes through the pool: room for all of them.
	pool := max(32, max(cfg.FetchStreams, 0)+max(cfg.Persisters, 0)+max(cfg.Hangers, 0)+16)
	r.rdb = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, Password: cfg.RedisPassword, DB: cfg.RedisDB, PoolSize: pool})
	defer r.rdb.Close()
	env, err := serverEnv(cfg, r.database)
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	cleanup := context.WithoutCancel(ctx)
	if err := migrate(ctx, cfg.Binary, env, r.database); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer r.dropDatabase(cleanup)
	cfg.Logger.Info("starting the server", "database", r.database, "channels", strings.TrimSuffix(r.ch.fetch, "fetch")+"*")
	if r.srv, err = startServer(ctx, cfg, env, r.ch, dir); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer r.srv.stop()
	sum, err := r.soak(ctx)
	if sum != nil {
		if exit := r.srv.stop(); exit != nil {
			sum.ServerExit = exit.Error()
		}
		warnings, errs, alarms := r.srv.logCounts()
		for _, a := range alarms {
			r.l.violate(VServerLog, "the server logged: %s", a)
		}
		sum.ServerLog = ServerLog{Path: r.srv.logPath, Warnings: warnings, Errors: errs, Alarms: alarms}
		kept, byKind, reasons := r.l.report()
		sum.Violations, sum.ViolationsByKind, sum.Reasons = kept, byKind, reasons
		sum.Client = r.l.c.snapshot()
		sum.Passed = len(byKind) == 0 && !sum.Interrupted
		keepDir = !sum.Passed || cfg.KeepLog
		sum.ServerLog.Kept = keepDir
		writeSummary(cfg.Out, cfg.JSON, sum)
	}
	return sum, err
}

// soak runs the load and the checks against the started server.
func (r *run) soak(ctx context.Context) (*Summary, error) {
	cfg := r.cfg
	sum := &Summary{Run: r.id, Database: r.database}
	time.Sleep(time.Second) // let the server settle before its resting state is read
	before, err := r.sample(ctx)
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	if err := r.seed(ctx); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	if r.tap, err = newTap(ctx, r.rdb, r.ch.responses, r.ch.commit, r.l, cfg.Stall); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer r.tap.close()

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	sampling, stopSampling := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		r.sampler(sampling, cancelLoad)
	}()
	defer func() { stopSampling(); <-samplerDone }()

	start := time.Now()
	r.l.start.Store(start.UnixNano())
	stop := make(chan struct{})
	var load, checks workers
	var badChecks sync.WaitGroup
	load.spawn(max(cfg.FetchStreams, 0), func(i int) { r.fetcher(loadCtx, i, stop) })
	load.spawn(max(cfg.Persisters, 0), func(i int) { r.persister(loadCtx, i, stop) })
	load.spawn(max(cfg.Hangers, 0), func(i int) { r.hanger(loadCtx, i, stop) })
	if cfg.FaultEvery > 0 {
		load.spawn(1, func(int) { r.faulter(loadCtx, stop, &badChecks) })
	}
	sseCtx, stopSSE := context.WithCancel(loadCtx)
	defer stopSSE()
	readers := make([]*sseReader, max(cfg.SSEReaders, 0))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(readers) + 1, DisableCompression: true}}
	for i := range readers {
		readers[i] = &sseReader{n: i}
		checks.spawn(1, func(int) { r.readSSE(sseCtx, readers[i], hc) })
	}
	cfg.Logger.Info("load running", "duration", cfg.Duration, "fetch_streams", cfg.FetchStreams, "persisters", cfg.Persisters,
		"sse_readers", len(readers), "unaccepted", cfg.Hangers, "fault_every", cfg.FaultEvery)

	// Report until the load's time is up.
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(cfg.ReportEvery)
	defer tick.Stop()
	var prev Counts
	prevAt, faultsShown := start, 0
	report := func() {
		now := time.Now()
		iv := Interval{Elapsed: Duration(now.Sub(start)), Client: r.l.c.snapshot(), Violations: r.l.violationCount()}
		r.mu.Lock()
		if len(r.samples) > 0 {
			iv.Server = r.samples[len(r.samples)-1]
		}
		iv.Faults = slices.Clone(r.faults[faultsShown:])
		faultsShown = len(r.faults)
		r.mu.Unlock()
		secs := now.Sub(prevAt).Seconds()
		c := iv.Client
		iv.StreamsPerSec = float64(c.FetchStarted-prev.FetchStarted) / secs
		iv.RowsPerSec = float64(c.Rows-prev.Rows) / secs
		iv.PersistsPerSec = float64(c.PersistOK+c.PersistFailed-prev.PersistOK-prev.PersistFailed) / secs
		iv.SSEPerSec = float64(c.SSEEvents-prev.SSEEvents) / secs
		iv.CommittedPerSec = float64(c.CommittedIDs-prev.CommittedIDs) / secs
		prev, prevAt = c, now
		writeInterval(cfg.Out, cfg.JSON, iv)
	}
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-loadCtx.Done():
			break loop
		case <-tick.C:
			report()
		}
	}
	loadEnd := time.Now()
	sum.Load = Duration(loadEnd.Sub(start))
	cfg.Logger.Info("load time is up: letting the calls in flight finish")
	close(stop)
	drained := make(chan struct{})
	go func() { load.wg.Wait(); badChecks.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(cfg.Stall + cfg.Settle + 30*time.Second):
		r.l.violate(VNoTerminal, "calls still running %s after the load's time was up", cfg.Stall+cfg.Settle+30*time.Second)
		cancelLoad()
		<-drained
	}
	if time.Since(prevAt) > time.Second {
		report()
	}
	r.mu.Lock()
	if len(r.samples) > 0 {
		sum.Server = r.samples[len(r.samples)-1]
	}
	sum.Faults = slices.Clone(r.faults)
	r.mu.Unlock()
	window := max(cfg.ReportEvery, 3*cfg.SampleEvery)
	sum.Trend = trend(r.samplesCopy(), start.Add(cfg.Warmup), loadEnd, window, r.l)

	if ctx.Err() != nil || !r.srv.alive() {
		sum.Interrupted = ctx.Err() != nil
		stopSSE()
		checks.wg.Wait()
		if ctx.Err() != nil {
			return sum, fmt.Errorf("soak interrupted: %w", ctx.Err())
		}
		return sum, nil
	}

	// Late messages, then the database and the SSE readers.
	cfg.Logger.Info("checking", "settle", cfg.Settle)
	time.Sleep(cfg.Settle)
	pc, ids, pids, err := r.checkPersists(ctx)
	if err != nil {
		return sum, fmt.Errorf("soak: %w", err)
	}
	sum.Persists = pc
	// The readers must reach the last event the server announced; one
	// it never announced is a gap they cannot close by waiting.
	var announced int64
	for i := len(ids) - 1; i >= 0; i-- {
		if _, ok := r.tap.announced(ids[i]); ok {
			announced = ids[i]
			sseCaughtUp(ctx, readers, announced, sseStuck, 2*time.Minute)
			break
		}
	}
	stopSSE()
	checks.wg.Wait()
	sum.SSE = r.checkSSE(readers, ids, pids, announced)
	r.tap.sweep(true)

	sum.Idle, sum.Requests = r.atRest(ctx, before)
	return sum, nil
}

// sampler reads the server's state every SampleEvery until ctx ends; when
// the server has exited it says so and ends the load.
func (r *run) sampler(ctx context.Context, endLoad func()) {
	t := time.NewTicker(r.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.srv.alive() {
			r.l.violate(VServerExited, "the server exited under load: %v (log: %s)", r.srv.exitErr(), r.srv.logPath)
			endLoad()
			return
		}
		s, err := r.sample(ctx)
		if err != nil {
			r.cfg.Logger.Warn("sample", "err", err)
			continue
		}
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
	}
}

// sample reads the server's metrics and counts its connections.
func (r *run) sample(ctx context.Context) (Sample, error) {
	s, err := scrape(ctx, r.srv.admin)
	if err != nil {
		return s, err
	}
	if conns, err := serverRedisConns(ctx, r.rdb, r.srv); err == nil {
		s.RedisConns = len(conns)
	}
	if conns, err := serverMySQLConns(ctx, r.db, r.database); err == nil {
		s.MySQLConns = len(conns)
	}
	return s, nil
}

func (r *run) samplesCopy() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.samples)
}

// Idle goroutines may exceed those before the load by what connections
// the server opened and keeps explain, plus this much.
const idleSlack = 25

// atRest waits until the server holds no stream, then compares it with
// its state before the load.
func (r *run) atRest(ctx context.Context, before Sample) (Idle, map[string]float64) {
	id := Idle{GoroutinesBefore: before.Goroutines, HeapBefore: before.HeapInuse}
	var after Sample
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := r.sample(ctx)
		if err == nil {
			after = s
			if s.StreamsOpen == 0 && s.SSEOpen == 0 {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The fewest goroutines of a few reads: a timer or a reader may come
	// and go between two.
	for range 4 {
		time.Sleep(500 * time.Millisecond)
		if s, err := r.sample(ctx); err == nil && s.Goroutines < after.Goroutines {
			after.Goroutines = s.Goroutines
		}
	}
	id.GoroutinesAfter, id.HeapAfter = after.Goroutines, after.HeapInuse
	id.StreamsOpen, id.SSEOpen = after.StreamsOpen, after.SSEOpen
	id.Allowance = idleSlack + 2*float64(max(after.MySQLConns-before.MySQLConns, 0)) + 4*float64(max(after.RedisConns-before.RedisConns, 0))
	actors, channels, err := r.streamActors(ctx)
	if err != nil {
		id.Note = err.Error()
	}
	id.Actors = actors
	if id.StreamsOpen > 0 || id.SSEOpen > 0 || actors > 0 {
		r.l.violate(VStreamLeak, "with every client gone: %.0f streams open, %.0f SSE streams open, %d stream actors (%s)",
			id.StreamsOpen, id.SSEOpen, actors, strings.Join(channels, ", "))
	}
	if id.GoroutinesAfter > id.GoroutinesBefore+id.Allowance {
		r.l.violate(VIdleGoroutines, "at rest: %.0f goroutines before the load, %.0f after (allowance %.0f)", id.GoroutinesBefore, id.GoroutinesAfter, id.Allowance)
	}
	return id, after.Requests
}

// streamActors lists the stream and persist actors the server still has.
func (r *run) streamActors(ctx context.Context) (int, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	total := 0
	var channels []string
	for _, kind := range []string{"stream", "persist"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.srv.admin+"/actors?kind="+kind+"&limit=20", nil)
		if err != nil {
			return total, channels, fmt.Errorf("actors: %w", err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return total, channels, fmt.Errorf("actors: %w", err)
		}
		var body struct {
			Total  int `json:"total"`
			Actors []struct {
				Channel string `json:"channel"`
				State   string `json:"state"`
			} `json:"actors"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		_ = res.Body.Close()
		if err != nil {
			return total, channels, fmt.Errorf("actors: %w", err)
		}
		total += body.Total
		for _, a := range body.Actors {
			channels = append(channels, kind+" "+a.Channel+" ("+a.State+")")
		}
	}
	return total, channels, nil
}

func (r *run) dropDatabase(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := r.db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+r.database+"`"); err != nil {
		r.cfg.Logger.Warn("drop database", "database", r.database, "err", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
