package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventsource/eventsource/client"
)

// seededPid is a pid whose rows the soak inserted before the load: rows
// events whose data carry seq 0 to rows-1, in id order.
type seededPid struct {
	pid  string
	rows int
}

// seedNote pads the seeded events to the size of a small domain event.
const seedNote = "soak event: a payload of the size a small domain event has"

// seed inserts the pids' rows with direct multi-row INSERTs: set-up, not
// load.
func (r *run) seed(ctx context.Context) error {
	n := r.cfg.Pids
	r.pids = make([]seededPid, n)
	var rows [][]any
	for i := range n {
		size := r.cfg.MinRows
		if n > 1 {
			size += (r.cfg.MaxRows - r.cfg.MinRows) * i / (n - 1)
		}
		r.pids[i] = seededPid{pid: fmt.Sprintf("soak-%s-s%d", r.id, i), rows: size}
		for seq := range size {
			rows = append(rows, []any{r.pids[i].pid, r.seedDomain, "seeded", fmt.Sprintf(`{"seq":%d,"note":%q}`, seq, seedNote)})
		}
	}
	const perStatement = 1000
	for from := 0; from < len(rows); from += perStatement {
		part := rows[from:min(from+perStatement, len(rows))]
		var sb strings.Builder
		sb.WriteString("INSERT INTO `" + r.database + "`.event (`pid`,`domain`,`name`,`data`) VALUES ")
		args := make([]any, 0, 4*len(part))
		for i, row := range part {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?)")
			args = append(args, row...)
		}
		if _, err := r.db.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	r.cfg.Logger.Info("seeded", "pids", n, "rows", len(rows))
	return nil
}

// noServerPause is how long a worker waits after a request nobody heard.
const noServerPause = 100 * time.Millisecond

// errStalled ends a call that heard nothing for Stall.
var errStalled = errors.New("stalled")

// newClient is a client of the soak's server whose response channels are
// under worker's prefix, so the tap can tell its calls apart.
func (r *run) newClient(worker string) *client.Client {
	return client.New(r.rdb,
		client.WithFetchChannel(r.ch.fetch), client.WithPersistChannel(r.ch.persist),
		client.WithChannelPrefix(r.ch.responses+worker+":"), client.WithReason())
}

// gotChannel tells whether a failed call got as far as a response
// channel, which every error after that names: only then did the
// client's sequence number advance.
func (r *run) gotChannel(err error) bool {
	return err == nil || strings.Contains(err.Error(), r.ch.responses)
}

// fetcher runs fetch streams one after another until stop is closed.
func (r *run) fetcher(ctx context.Context, w int, stop <-chan struct{}) {
	name := "f" + strconv.Itoa(w)
	cl := r.newClient(name)
	defer cl.Close()
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	var perRow time.Duration
	if r.cfg.RowRate > 0 {
		perRow = time.Duration(float64(r.cfg.FetchStreams) / r.cfg.RowRate * float64(time.Second))
	}
	seq := 0
	for n := 0; ; n++ {
		if stopped(ctx, stop) {
			return
		}
		p := r.pids[rng.IntN(len(r.pids))]
		window := r.cfg.Windows[n%len(r.cfg.Windows)]
		desc := n%4 == 3
		key := fmt.Sprintf("%s:%d", name, seq+1)
		r.tap.open(key)
		r.l.c.fetchStarted.Add(1)
		c, err := r.fetchOnce(ctx, cl, key, p, window, desc, perRow)
		if !r.gotChannel(err) {
			r.l.reason("fetch failed before its request: " + err.Error())
			r.tap.checked(key, false)
			time.Sleep(time.Second)
			continue
		}
		seq++
		r.check(ctx, c)
		if errors.Is(err, client.ErrNoServer) {
			// The server is between two subscriber connections: do not
			// spin until it is back.
			sleepOr(ctx, stop, noServerPause)
		} else {
			r.l.c.fetchRequests.Add(1)
		}
	}
}

// fetchOnce runs one stream of p's rows and checks them as they come.
func (r *run) fetchOnce(ctx context.Context, cl *client.Client, key string, p seededPid, window int, desc bool, perRow time.Duration) (call, error) {
	c := call{key: key, what: "fetch", window: window, sent: r.l.since()}
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(r.cfg.Stall, func() { cancel(errStalled) })
	defer stall.Stop()
	order := ""
	if desc {
		order = `,"$orderBy":{"id":-1}`
	}
	pid, _ := json.Marshal(p.pid)
	query := json.RawMessage(`{"$select":{"$where":{"pid":` + string(pid) + `}` + order + `}}`)
	var opts []client.FetchOption
	if window > 1 {
		opts = append(opts, client.WithWindow(window))
	}
	seen := make([]bool, p.rows)
	var lastID int64
	misordered := false
	next := time.Now()
	var ferr error
	for row, err := range cl.Fetch(callCtx, query, opts...) {
		if err != nil {
			ferr = err
			break
		}
		stall.Reset(r.cfg.Stall)
		r.l.c.rows.Add(1)
		want := c.rows
		if desc {
			want = p.rows - 1 - c.rows
		}
		c.rows++
		var got struct {
			PID  string `json:"pid"`
			Data string `json:"data"`
			ID   int64  `json:"id"`
		}
		var data struct {
			Seq *int `json:"seq"`
		}
		if err := row.Decode(&got); err != nil || json.Unmarshal([]byte(got.Data), &data) != nil || data.Seq == nil {
			r.l.violate(VForeignRow, "fetch %s: row %d is not a seeded event: %s", key, c.rows, abbreviate(row.String()))
			continue
		}
		seq := *data.Seq
		switch {
		case got.PID != p.pid || seq < 0 || seq >= p.rows:
			r.l.violate(VForeignRow, "fetch %s of %s: row %d is %s", key, p.pid, c.rows, abbreviate(row.String()))
		case seen[seq]:
			r.l.violate(VDuplicate, "fetch %s of %s (window %d): seq %d (id %d) again as row %d", key, p.pid, window, seq, got.ID, c.rows)
		case !misordered && (seq != want || (lastID != 0 && (got.ID > lastID) == desc)):
			misordered = true // one report per stream: the rest follow from it
			r.l.violate(VOrder, "fetch %s of %s (window %d): row %d is seq %d id %d, want seq %d after id %d", key, p.pid, window, c.rows, seq, got.ID, want, lastID)
		}
		if seq >= 0 && seq < p.rows {
			seen[seq] = true
		}
		lastID = got.ID
		if perRow > 0 {
			next = next.Add(perRow)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			} else if d < -time.Second {
				next = time.Now() // fell behind: do not burst to catch up
			}
		}
	}
	var serr *client.ServerError
	switch {
	case ferr == nil:
		c.ending = "end"
		r.l.c.fetchEnd.Add(1)
		if c.rows != p.rows {
			r.l.violate(VIncomplete, "fetch %s of %s (window %d): \"end\" after %d of %d rows", key, p.pid, window, c.rows, p.rows)
		}
	case errors.As(ferr, &serr):
		c.ending = "error"
		r.l.c.fetchError.Add(1)
		r.l.reason("fetch error: " + string(serr.Reason))
	case errors.Is(ferr, client.ErrTimeout):
		c.ending = "timeout"
		r.l.c.fetchTimeout.Add(1)
	case errors.Is(ferr, client.ErrNoServer):
		c.mayBeSilent = true // nobody heard the request
		r.l.c.fetchNoServer.Add(1)
	case errors.Is(ferr, client.ErrInterrupted):
		c.clientEnd = true
		r.l.c.fetchInterrupted.Add(1)
	case errors.Is(ferr, client.ErrProtocol):
		c.clientEnd = true
		r.l.c.fetchOther.Add(1)
		r.l.violate(VOverWindow, "fetch %s (window %d): %v", key, window, ferr)
	case errors.Is(context.Cause(callCtx), errStalled):
		c.clientEnd = true
		r.l.c.fetchStalled.Add(1)
		r.l.violate(VNoTerminal, "fetch %s of %s (window %d): nothing heard for %s after %d rows; %s", key, p.pid, window, r.cfg.Stall, c.rows, r.evidence(ctx, key, c.sent))
	case ctx.Err() != nil:
		c.clientEnd = true // the soak is ending
	default:
		c.clientEnd = true
		r.l.c.fetchOther.Add(1)
		r.l.reason("fetch failed: " + ferr.Error())
	}
	return c, ferr
}

// hanger runs streams that never accept, one after another, until stop:
// each must end "timeout" after the server's accept timeout ("error" is
// counted, "end" is a violation). It publishes raw requests, so the tap
// is its only ear.
func (r *run) hanger(ctx context.Context, h int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(h)+1000, uint64(time.Now().UnixNano())))
	for n := 1; ; n++ {
		if stopped(ctx, stop) {
			return
		}
		p := r.pids[rng.IntN(len(r.pids))]
		window := r.cfg.Windows[n%len(r.cfg.Windows)]
		key := fmt.Sprintf("h%d:%d", h, n)
		channel := fmt.Sprintf("%sh%d:x:%d", r.ch.responses, h, n)
		pid, _ := json.Marshal(p.pid)
		req := fmt.Sprintf(`{"channel":%q,"query":{"$select":{"$where":{"pid":%s}}},"reason":true,"window":%d}`, channel, pid, window)
		r.tap.open(key)
		sent := r.l.since()
		heardBy, err := r.rdb.Publish(ctx, r.ch.fetch, req).Result()
		if err != nil || heardBy == 0 {
			r.tap.checked(key, false)
			r.l.c.hangOther.Add(1)
			r.l.reason(fmt.Sprintf("unaccepted stream not heard (%d subscribers, %v)", heardBy, err))
			sleepOr(ctx, stop, time.Second)
			continue
		}
		r.l.c.fetchRequests.Add(1)
		c := call{key: key, what: "hang", window: window, sent: sent}
		if r.tap.waitTerminal(ctx, key, r.cfg.Stall) {
			h := r.tap.heardNow(key)
			c.ending, c.rows = h.ends[0], h.rows
		}
		switch c.ending {
		case "timeout":
			r.l.c.hangTimeout.Add(1)
		case "error":
			r.l.c.hangError.Add(1)
		case "end":
			r.l.c.hangOther.Add(1)
			r.l.violate(VWrongEnding, "unaccepted stream %s (window %d): \"end\" after %d rows, none accepted", key, window, c.rows)
		case "":
			if ctx.Err() != nil {
				return
			}
			r.l.c.hangOther.Add(1)
			r.l.violate(VNoTerminal, "unaccepted stream %s (window %d): no terminal within %s; %s", key, window, r.cfg.Stall, r.evidence(ctx, key, sent))
		}
		r.check(ctx, c)
	}
}

// stopped reports whether the load is to stop.
func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// sleepOr sleeps d unless stop or ctx come first.
func sleepOr(ctx context.Context, stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-ctx.Done():
	}
}

// workers tracks the load's goroutines.
type workers struct{ wg sync.WaitGroup }

func (w *workers) spawn(n int, f func(i int)) {
	for i := range n {
		w.wg.Go(func() { f(i) })
	}
}
