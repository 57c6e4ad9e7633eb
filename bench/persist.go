package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// runPersist is a persist scenario: raw INSERTs at the same concurrency,
// then the server, each for spec.Duration; with Rounds, that pair that many
// times, keeping the round of median ratio. With Unbatched, it then runs the
// same load against a second in-process server that commits each request on
// its own (--persist-batch 1).
func (e *env) runPersist(ctx context.Context, spec Spec, res *ScenarioResult) error {
	err := e.pairedRounds(res, func(label string, warmUp bool) (baseline, server *Measure, err error) {
		spec := spec
		if warmUp {
			spec.Duration = min(spec.Duration, time.Second)
		}
		if baseline, err = e.rawInserts(ctx, label, spec); err != nil {
			return baseline, nil, err
		}
		e.settle()
		server, err = e.persistLoad(ctx, spec, label, plainWrites)
		return baseline, server, err
	})
	if err == nil && spec.MaxP50Pongs > 0 {
		// The Redis round trip of the latency budget, measured now, as
		// the persists were.
		e.settle()
		res.PingPong, err = e.pingPong(ctx, spec.Name+" ping-pong", 1, persistPongRows, 1)
	}
	if err != nil || !spec.Unbatched {
		return err
	}
	if e.srv == nil {
		return nil // a running server's batching is its own: the figure says it did not run
	}
	scfg, other, stop, err := e.startSideServer(ctx, "unbatched", func(c *server.Config) { c.PersistBatch = 1 })
	if err != nil {
		return err
	}
	cl := client.New(e.rdb, client.WithPersistChannel(scfg.PersistChannel), client.WithChannelPrefix(e.sidePrefix("unbatched")+"r:"), client.WithReason())
	mainSrv, mainCl := e.srv, e.cl
	e.srv, e.cl = other, cl
	defer func() {
		e.srv, e.cl = mainSrv, mainCl
		cl.Close()
		stop()
	}()
	e.settle()
	res.Unbatched, err = e.persistLoad(ctx, spec, spec.Name+" unbatched", plainWrites)
	return err
}

// persistPongRows is the length of the single-stream ping-pong whose p50
// is a persist's Redis round trip.
const persistPongRows = 5000

// persistDoc is the n-th document of worker w.
func (e *env) persistDoc(w, n int) client.Document {
	return client.Document{
		PID:    e.pidPrefix() + "p-" + strconv.Itoa(w),
		Domain: "bench",
		Name:   "persisted",
		Data:   json.RawMessage(eventData(n)),
	}
}

// writes is what a persist load's requests carry besides their document.
type writes int

const (
	// plainWrites: the document alone.
	plainWrites writes = iota
	// eventIDWrites: an event id on every document, each new.
	eventIDWrites
	// expectWrites: an expected version on every request; each client
	// appends to a stream of its own, new to the phase, and counts its
	// version, so that every expectation holds.
	expectWrites
)

// persistLoad runs spec.Concurrency clients, each persisting one document
// per request, with wr, through the server until spec.Duration is over.
func (e *env) persistLoad(ctx context.Context, spec Spec, name string, wr writes) (*Measure, error) {
	ctx, cancel := context.WithTimeout(ctx, spec.Duration+phaseTimeout)
	defer cancel()
	stopProfile := e.profile(name)
	ph := e.startPhase(name+" eventsource", 0, spec.Duration)
	dctx, stop := context.WithDeadline(ctx, ph.until)
	// The phase's tag keeps its event ids and streams apart from every
	// other phase's of the run.
	tag := strconv.FormatInt(e.persistPhases.Add(1), 10)
	var wg sync.WaitGroup
	for w := range spec.Concurrency {
		wg.Go(func() {
			switch wr {
			case eventIDWrites:
				e.persistEventIDLoop(dctx, ph, w, tag)
			case expectWrites:
				e.persistExpectLoop(dctx, ph, w, tag)
			default:
				e.persistLoop(dctx, ph, w)
			}
		})
	}
	wg.Wait()
	stop()
	ph.end = time.Now()
	stopProfile()
	m := ph.finish()
	if err := ctx.Err(); err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// persistLoop persists documents one at a time until ctx ends. A persist
// still waiting then is not counted: the phase is over.
func (e *env) persistLoop(ctx context.Context, ph *phase, w int) {
	for n := 0; ctx.Err() == nil && ph.errors.Load() <= maxPhaseErrors; n++ {
		e.persistOne(ctx, ph, w, func(ctx context.Context) (client.Result, error) {
			return e.cl.Persist(ctx, e.persistDoc(w, n))
		})
	}
}

// persistEventIDLoop is persistLoop with an event id on every document,
// new to the run: no request is a duplicate.
func (e *env) persistEventIDLoop(ctx context.Context, ph *phase, w int, tag string) {
	prefix := e.runID + "-" + tag + "-" + strconv.Itoa(w) + "-"
	for n := 0; ctx.Err() == nil && ph.errors.Load() <= maxPhaseErrors; n++ {
		doc := e.persistDoc(w, n)
		doc.EventID = prefix + strconv.Itoa(n)
		e.persistOne(ctx, ph, w, func(ctx context.Context) (client.Result, error) {
			return e.cl.Persist(ctx, doc)
		})
	}
}

// persistExpectLoop is persistLoop with an expected version on every
// request. The client's stream is its own and new, so it knows the
// version; after a failure, which may or may not have committed, it goes
// on with another new stream.
func (e *env) persistExpectLoop(ctx context.Context, ph *phase, w int, tag string) {
	streams := 0
	newStream := func() client.Expectation {
		streams++
		return client.Expectation{Domain: "bench", PID: fmt.Sprintf("%sx%s-%d-%d", e.pidPrefix(), tag, w, streams)}
	}
	expect := newStream()
	for n := 0; ctx.Err() == nil && ph.errors.Load() <= maxPhaseErrors; n++ {
		doc := e.persistDoc(w, n)
		doc.PID = expect.PID
		if e.persistOne(ctx, ph, w, func(ctx context.Context) (client.Result, error) {
			return e.cl.PersistExpecting(ctx, expect, doc)
		}) {
			expect.Version++
		} else {
			expect = newStream()
		}
	}
}

// maxPhaseErrors is how many failed persists stop a phase's clients:
// something is broken, and the report says what.
const maxPhaseErrors = 1000

// persistOne runs one persist of one document, timed, and counts it. It
// reports whether the persist was counted: not when it failed, nor when
// ctx ended first (the phase is over).
func (e *env) persistOne(ctx context.Context, ph *phase, w int, persist func(context.Context) (client.Result, error)) bool {
	start := time.Now()
	ok, err := persist(ctx)
	if ctx.Err() != nil {
		return false
	}
	switch {
	case err != nil:
	case ok.AffectedRows != 1:
		err = fmt.Errorf("persist: affectedRows %d, want 1", ok.AffectedRows)
	case ok.Duplicate:
		err = errors.New("persist: a duplicate, though every event id is new")
	}
	if err != nil {
		ph.fail(err)
		return false
	}
	ph.plat.record(w, time.Since(start))
	ph.persists.Add(1)
	return true
}

// rawInserts is the persists' baseline: spec.Concurrency clients, each on
// its own MySQL connection with the INSERT prepared once, running one
// autocommitted single-row INSERT of the same documents per request.
func (e *env) rawInserts(ctx context.Context, label string, spec Spec) (*Measure, error) {
	store := e.cfg.Server.MySQL.StoreConfig()
	// No default database: an external server's connections are told apart
	// by theirs.
	store.Database, store.PoolSize = "", spec.Concurrency
	db, err := mysqlstore.Open(store)
	if err != nil {
		return nil, fmt.Errorf("raw inserts: %w", err)
	}
	defer db.Close()
	type worker struct {
		conn *sql.Conn
		stmt *sql.Stmt
	}
	workers := make([]worker, spec.Concurrency)
	defer func() {
		for _, w := range workers {
			if w.stmt != nil {
				_ = w.stmt.Close()
			}
			if w.conn != nil {
				_ = w.conn.Close()
			}
		}
	}()
	for i := range workers {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("raw inserts: connect: %w", err)
		}
		workers[i].conn = conn
		stmt, err := conn.PrepareContext(ctx, "INSERT INTO "+e.table+" (`pid`,`domain`,`name`,`data`) VALUES (?,?,?,?)")
		if err != nil {
			return nil, fmt.Errorf("raw inserts: prepare: %w", err)
		}
		workers[i].stmt = stmt
	}
	ph := e.startPhase(label+" raw INSERTs", 0, spec.Duration)
	dctx, stop := context.WithDeadline(ctx, ph.until)
	defer stop()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := 0; dctx.Err() == nil; n++ {
				doc := e.persistDoc(w, n)
				start := time.Now()
				_, err := workers[w].stmt.ExecContext(dctx, doc.PID, doc.Domain, doc.Name, string(doc.Data.(json.RawMessage)))
				if dctx.Err() != nil {
					return
				}
				if err != nil {
					ph.fail(fmt.Errorf("raw insert: %w", err))
					if ph.errors.Load() > maxPhaseErrors {
						return
					}
					continue
				}
				ph.plat.record(w, time.Since(start))
				ph.persists.Add(1)
			}
		})
	}
	wg.Wait()
	ph.end = time.Now()
	m := ph.finish()
	if err := ctx.Err(); err != nil {
		return m, fmt.Errorf("raw inserts: %w", err)
	}
	return m, nil
}
