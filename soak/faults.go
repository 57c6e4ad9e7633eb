package soak

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// FaultRecord is one injected fault and how the server came back.
type FaultRecord struct {
	At     Duration `json:"at"`
	Fault  Fault    `json:"fault"`
	Detail string   `json:"detail"`
	// Recovered is how long /readyz took to answer 200 again; -1: never
	// within the wait.
	Recovered Duration `json:"recovered"`
	Err       string   `json:"error,omitempty"`
}

// readyWait bounds the wait for /readyz after a fault.
const readyWait = 30 * time.Second

// faulter injects faults in turn, every FaultEvery, until stop.
func (r *run) faulter(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) {
	t := time.NewTicker(r.cfg.FaultEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f := r.cfg.Faults[n%len(r.cfg.Faults)]
		rec := FaultRecord{At: r.l.since(), Fault: f}
		var err error
		switch f {
		case FaultRedisSubscriber, FaultRedisPublishers:
			rec.Detail, err = r.killRedis(ctx, f == FaultRedisSubscriber)
		case FaultMySQL:
			rec.Detail, err = r.killMySQL(ctx)
		case FaultBadInput:
			rec.Detail, err = r.badInput(ctx, n, wg)
		}
		if err != nil {
			rec.Err = err.Error()
		}
		began := time.Now()
		rec.Recovered = -1
		for time.Since(began) < readyWait && ctx.Err() == nil {
			if r.srv.ready(ctx) {
				rec.Recovered = Duration(time.Since(began))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rec.Recovered < 0 && ctx.Err() == nil {
			r.l.violate(VNotReady, "%s at %s (%s): /readyz not 200 within %s", f, rec.At, rec.Detail, readyWait)
		}
		r.cfg.Logger.Info("fault", "fault", f, "detail", rec.Detail, "recovered", rec.Recovered, "err", rec.Err)
		r.mu.Lock()
		r.faults = append(r.faults, rec)
		r.mu.Unlock()
	}
}

// killRedis kills the server's subscriber connection, or all its others.
func (r *run) killRedis(ctx context.Context, subscriber bool) (string, error) {
	conns, err := serverRedisConns(ctx, r.rdb, r.srv)
	if err != nil {
		return "", err
	}
	var killed []string
	var errs []error
	for _, c := range conns {
		if c.subscriber != subscriber {
			continue
		}
		if err := r.rdb.Do(ctx, "CLIENT", "KILL", "ID", c.id).Err(); err != nil {
			errs = append(errs, fmt.Errorf("client kill id %d: %w", c.id, err))
			continue
		}
		killed = append(killed, fmt.Sprintf("%d", c.id))
	}
	what := "subscriber"
	if !subscriber {
		what = "other"
	}
	if len(killed) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no %s connection of the server among its %d", what, len(conns)))
	}
	return fmt.Sprintf("killed %d %s Redis connection(s) of %d: id %s", len(killed), what, len(conns), strings.Join(killed, ",")), errors.Join(errs...)
}

// killMySQL kills one of the server's MariaDB connections: a busy one
// if one turns up within a second (queries are short), else an idle one.
func (r *run) killMySQL(ctx context.Context) (string, error) {
	var conns []mysqlConn
	var victim mysqlConn
	for began := time.Now(); victim.id == 0 || (victim.command == "Sleep" && time.Since(began) < time.Second); {
		var err error
		if conns, err = serverMySQLConns(ctx, r.db, r.database); err != nil {
			return "", err
		}
		if len(conns) == 0 {
			return "", errors.New("the server holds no MariaDB connection")
		}
		victim = conns[0]
		for _, c := range conns {
			if c.command != "Sleep" {
				victim = c
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", victim.id)); err != nil {
		return "", fmt.Errorf("kill connection %d: %w", victim.id, err)
	}
	what := victim.command
	if victim.info != "" {
		what += ": " + abbreviate(victim.info)
	}
	return fmt.Sprintf("killed MariaDB connection %d of %d (%s)", victim.id, len(conns), what), nil
}

// badRequest is one malformed request of a burst.
type badRequest struct {
	on   string // request channel
	body func(channel string) string
	// silent: the server may drop it without a word (no channel it can
	// trust); otherwise it must answer exactly one "error".
	silent bool
	// noChannel: the request names none, so nothing is heard.
	noChannel bool
}

func (r *run) badRequests() []badRequest {
	sel := func(q string) func(string) string {
		return func(ch string) string { return fmt.Sprintf(`{"channel":%q,"reason":true,"query":%s}`, ch, q) }
	}
	big := strings.Repeat("x", 1<<20+1024)
	manyDocs := `{"$insert":{"$documents":[` + strings.TrimSuffix(strings.Repeat(`{"pid":"p","domain":"d","name":"n","data":{}},`, 1001), ",") + `]}}`
	return []badRequest{
		{on: r.ch.fetch, body: func(ch string) string { return fmt.Sprintf(`{"channel":%q,"reason":true,"query":{"$select":`, ch) }, silent: true},
		{on: r.ch.fetch, body: func(string) string { return "not json at all" }, noChannel: true},
		{on: r.ch.fetch, body: sel(`{"$select":{"$from":"nosuchdb.nosuchtable"}}`)},
		{on: r.ch.fetch, body: sel(`{"$select":{"$where":{"nosuchcolumn":1}}}`)},
		{on: r.ch.fetch, body: sel(`{"$select":{"$where":{"pid":"__:1=1"}}}`)},
		{on: r.ch.fetch, body: sel(`{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n"}}}`)},
		{on: r.ch.fetch, body: func(ch string) string {
			return fmt.Sprintf(`{"channel":%q,"reason":true,"window":5000,"query":{"$select":{}}}`, ch)
		}},
		{on: r.ch.fetch, body: func(ch string) string {
			return fmt.Sprintf(`{"channel":%q,"reason":true,"query":{"$select":{"$where":{"pid":%q}}}}`, ch, big)
		}, silent: true},
		{on: r.ch.persist, body: sel(`{"$insert":{"$documents":{"pid":"","domain":"d","name":"n"}}}`)},
		{on: r.ch.persist, body: sel(`{"$select":{}}`)},
		{on: r.ch.persist, body: sel(`{"$insert":{"$table":"nosuchdb.nosuchtable","$documents":{"pid":"p","domain":"d","name":"n"}}}`)},
		{on: r.ch.persist, body: sel(manyDocs)},
		{on: r.ch.fetchNext, body: func(string) string { return `{"channel":"no-such-stream"}` }, noChannel: true},
		{on: r.ch.fetchNext, body: func(string) string { return `]]]` }, noChannel: true},
	}
}

// badInput publishes a burst of malformed requests; each that names a
// channel is checked by the tap once the server had time to answer.
func (r *run) badInput(ctx context.Context, burst int, wg *sync.WaitGroup) (string, error) {
	var errs []error
	sent, watched := 0, 0
	for i, b := range r.badRequests() {
		key := fmt.Sprintf("b%d:%d", burst, i)
		channel := fmt.Sprintf("%sb%d:x:%d", r.ch.responses, burst, i)
		if !b.noChannel {
			r.tap.open(key)
		}
		heardBy, err := r.rdb.Publish(ctx, b.on, b.body(channel)).Result()
		if err != nil || heardBy == 0 {
			if err == nil {
				err = fmt.Errorf("nobody subscribed to %s", b.on)
			}
			errs = append(errs, err)
			if !b.noChannel {
				r.tap.checked(key, false)
			}
			continue
		}
		sent++
		r.l.c.badSent.Add(1)
		switch b.on {
		case r.ch.fetch:
			r.l.c.fetchRequests.Add(1)
		case r.ch.persist:
			r.l.c.persistRequests.Add(1)
		}
		if b.noChannel {
			continue
		}
		watched++
		wg.Go(func() {
			c := call{key: key, what: "bad", mayBeSilent: b.silent}
			wait := r.cfg.Stall
			if b.silent {
				wait = r.cfg.Settle
			}
			if r.tap.waitTerminal(ctx, key, wait) {
				r.l.c.badAnswered.Add(1)
			}
			r.check(ctx, c)
		})
	}
	return fmt.Sprintf("%d malformed requests, %d of them with a channel to answer on", sent, watched), errors.Join(errs...)
}
