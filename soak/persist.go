package soak

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/eventsource/eventsource/client"
)

// persisted is what the soak knows of one persisted document, by its
// pid, which is unique.
type persisted struct {
	acked    bool
	insertID int64 // the reply's insertId: the id of the request's first document
	index    int   // the document's place in its request
}

// persister persists events one call at a time, paced, until stop. Every
// fifth request carries three documents.
func (r *run) persister(ctx context.Context, w int, stop <-chan struct{}) {
	name := "p" + strconv.Itoa(w)
	cl := r.newClient(name)
	defer cl.Close()
	var interval time.Duration
	if r.cfg.PersistRate > 0 {
		interval = time.Duration(float64(r.cfg.Persisters) / r.cfg.PersistRate * float64(time.Second))
	}
	// Spread the persisters over the interval: started together, they
	// would send in lock step.
	next := time.Now().Add(interval * time.Duration(w) / time.Duration(max(r.cfg.Persisters, 1)))
	sleepOr(ctx, stop, time.Until(next))
	seq := 0
	for n := 1; ; n++ {
		if stopped(ctx, stop) {
			return
		}
		docs := make([]client.Document, 1, 3)
		if n%5 == 0 {
			docs = docs[:3]
		}
		for k := range docs {
			docs[k] = client.Document{PID: fmt.Sprintf("soak-%s-%s-%d-%d", r.id, name, n, k), Domain: r.domain, Name: "persisted",
				Data: map[string]int{"worker": w, "n": n, "k": k}}
		}
		key := fmt.Sprintf("%s:%d", name, seq+1)
		r.tap.open(key)
		c := r.persistOnce(ctx, cl, key, docs)
		if c.key == "" {
			r.tap.checked(key, false)
			sleepOr(ctx, stop, time.Second)
			continue
		}
		seq++
		r.check(ctx, c)
		if c.mayBeSilent && ctx.Err() == nil {
			sleepOr(ctx, stop, noServerPause) // nobody heard it, or no reply: do not spin
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				sleepOr(ctx, stop, d)
			} else if d < -time.Second {
				next = time.Now()
			}
		}
	}
}

// persistOnce sends one request and records its documents. It returns a
// call without key when the request never got a response channel.
func (r *run) persistOnce(ctx context.Context, cl *client.Client, key string, docs []client.Document) call {
	callCtx, cancel := context.WithTimeout(ctx, r.cfg.Stall)
	defer cancel()
	sent := r.l.since()
	ok, err := cl.Persist(callCtx, docs...)
	if !r.gotChannel(err) {
		r.l.reason("persist failed before its request: " + err.Error())
		return call{}
	}
	c := call{key: key, what: "persist", sent: sent}
	if !errors.Is(err, client.ErrNoServer) {
		r.l.c.persistRequests.Add(1)
	}
	var serr *client.ServerError
	switch {
	case err == nil:
		c.ending = "ok"
		r.l.c.persistOK.Add(1)
		r.l.c.persistDocs.Add(int64(len(docs)))
		if ok.AffectedRows != int64(len(docs)) {
			r.l.violate(VWrongEnding, "persist %s: OK of %d rows for %d documents", key, ok.AffectedRows, len(docs))
		}
	case errors.As(err, &serr):
		c.ending = "error"
		r.l.c.persistFailed.Add(1)
		r.l.reason("persist error: " + string(serr.Reason))
	case errors.Is(err, client.ErrNoServer):
		c.mayBeSilent = true
		r.l.c.persistFailed.Add(1)
		r.l.reason("persist: no server")
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		r.l.c.persistFailed.Add(1)
		r.l.violate(VNoTerminal, "persist %s: no reply within %s; %s", key, r.cfg.Stall, r.evidence(ctx, key, sent))
		c.mayBeSilent = true // reported here already
	default:
		r.l.c.persistFailed.Add(1)
		c.mayBeSilent = ctx.Err() != nil
		r.l.reason("persist failed: " + err.Error())
	}
	r.mu.Lock()
	for k, d := range docs {
		r.persisted[d.PID] = persisted{acked: err == nil, insertID: ok.InsertID, index: k}
	}
	r.mu.Unlock()
	return c
}

// PersistCheck is what the database holds of the soak's persists.
type PersistCheck struct {
	Acked        int `json:"acked"`         // documents answered OK
	AckedStored  int `json:"acked_stored"`  // ... stored exactly once, with the reply's id
	Failed       int `json:"failed"`        // documents of failed requests
	FailedStored int `json:"failed_stored"` // ... stored all the same (at most once is allowed)
	Unrequested  int `json:"unrequested"`   // rows of the domain no request of the soak made
	Stored       int `json:"stored_in_domain"`
}

// checkPersists reads every event of the soak's domain and holds it to
// what the replies said. It returns the ids of the domain, sorted, and
// their pids, for the SSE readers' check.
func (r *run) checkPersists(ctx context.Context) (PersistCheck, []int64, map[int64]string, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT pid, id FROM `"+r.database+"`.event WHERE domain = ? ORDER BY id", r.domain)
	if err != nil {
		return PersistCheck{}, nil, nil, fmt.Errorf("read persisted events: %w", err)
	}
	defer rows.Close()
	stored := map[string][]int64{}
	pids := map[int64]string{}
	var ids []int64
	for rows.Next() {
		var pid string
		var id int64
		if err := rows.Scan(&pid, &id); err != nil {
			return PersistCheck{}, nil, nil, fmt.Errorf("read persisted events: %w", err)
		}
		stored[pid] = append(stored[pid], id)
		pids[id] = pid
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return PersistCheck{}, nil, nil, fmt.Errorf("read persisted events: %w", err)
	}
	var pc PersistCheck
	pc.Stored = len(ids)
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, p := range r.persisted {
		got := stored[pid]
		delete(stored, pid)
		if !p.acked {
			pc.Failed++
			switch {
			case len(got) > 1:
				r.l.violate(VPersistTwice, "%s (request failed) stored %d times: ids %v", pid, len(got), got)
			case len(got) == 1:
				pc.FailedStored++
				r.l.reason("persist failed but stored (allowed)")
			}
			continue
		}
		pc.Acked++
		switch {
		case len(got) == 0:
			r.l.violate(VPersistLost, "%s answered OK (insertId %d) but not stored", pid, p.insertID)
		case len(got) > 1:
			r.l.violate(VPersistTwice, "%s answered OK (insertId %d) stored %d times: ids %v", pid, p.insertID, len(got), got)
		case p.index == 0 && got[0] != p.insertID, p.index > 0 && got[0] <= p.insertID:
			r.l.violate(VPersistID, "%s (document %d of its request) stored as id %d, the reply said insertId %d", pid, p.index, got[0], p.insertID)
		default:
			pc.AckedStored++
		}
	}
	for _, got := range stored {
		pc.Unrequested += len(got)
	}
	slices.Sort(ids)
	return pc, ids, pids, nil
}
