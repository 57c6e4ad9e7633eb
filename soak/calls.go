package soak

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/replicas"
)

// call is how one call ended, as its client saw it, for the tap to check.
type call struct {
	key  string
	what string // "fetch", "persist", "hang" or "bad"
	// ending is the server's terminal the client heard ("end", "timeout",
	// "error"; "ok" for a persist's reply), or "" when it heard none.
	ending string
	rows   int // rows the client took
	window int
	// clientEnd says the client published "end" itself (it gave up).
	clientEnd bool
	// mayBeSilent says the server may rightly drop the request unanswered.
	mayBeSilent bool
	// sent is when the request went out, since the load began.
	sent Duration
}

// check holds what the tap heard on a call's channel to what its client
// saw, then marks it checked, so that anything heard later is caught.
func (r *run) check(ctx context.Context, c call) {
	if c.ending != "" || !c.mayBeSilent {
		r.tap.waitTerminal(ctx, c.key, r.cfg.Settle)
	}
	h := r.tap.heardNow(c.key)
	allowEnd := false
	if c.clientEnd {
		// The client's own "end" looks like the server's: take one away,
		// or let the tap ignore it when it comes.
		if i := slices.Index(h.ends, "end"); i >= 0 {
			h.ends = slices.Delete(h.ends, i, i+1)
		} else {
			allowEnd = true
		}
	}
	defer r.tap.checked(c.key, allowEnd)
	if h.blind || ctx.Err() != nil {
		return // the tap lost its connection meanwhile, or the soak is ending
	}
	ends := strings.Join(h.ends, ",")
	switch {
	case len(h.ends) > 1:
		r.l.violate(VTwoTerminals, "%s %s: terminals %s (client saw %q, %d rows)", c.what, c.key, ends, c.ending, c.rows)
	case len(h.ends) == 0 && c.ending != "":
		r.l.violate(VNoTerminal, "%s %s: the client heard %q but the tap heard no terminal within %s", c.what, c.key, c.ending, r.cfg.Settle)
	case len(h.ends) == 0 && !c.clientEnd && !c.mayBeSilent:
		r.l.violate(VNoTerminal, "%s %s: no terminal within %s (%d rows heard); %s", c.what, c.key, r.cfg.Settle, h.rows, r.evidence(ctx, c.key, c.sent))
	}
	if h.afterEnd > 0 {
		r.l.violate(VAfterTerminal, "%s %s: %d rows after the terminal %s", c.what, c.key, h.afterEnd, ends)
	}
	if h.unknown > 0 {
		r.l.violate(VWrongEnding, "%s %s: %d messages that are neither rows nor terminals", c.what, c.key, h.unknown)
	}
	switch c.what {
	case "fetch":
		if c.ending != "" && h.rows != c.rows {
			r.l.violate(VOverWindow, "fetch %s: the server published %d rows, the client took %d before %q", c.key, h.rows, c.rows, c.ending)
		}
	case "hang":
		if h.rows > c.window {
			r.l.violate(VOverWindow, "unaccepted stream %s: %d rows published with window %d", c.key, h.rows, c.window)
		}
	case "persist":
		switch {
		case c.ending == "ok" && (h.rows != 1 || ends != "end"):
			r.l.violate(VWrongEnding, "persist %s: the client got OK, the channel carried %d replies and terminals %q, want 1 and \"end\"", c.key, h.rows, ends)
		case c.ending == "error" && h.rows != 0:
			r.l.violate(VWrongEnding, "persist %s: \"error\" after %d replies", c.key, h.rows)
		}
	case "bad":
		if h.rows > 0 || (len(h.ends) > 0 && h.ends[0] != "error") {
			r.l.violate(VWrongEnding, "bad request %s: %d rows, terminals %q; want only \"error\"", c.key, h.rows, ends)
		}
	}
}

// evidence says what the server did with the request of key, which was
// sent at sent: the fault nearest to it, the channel's claim in Redis and
// what the server's log says of the channel.
func (r *run) evidence(ctx context.Context, key string, sent Duration) string {
	parts := []string{"sent at " + sent.String()}
	if f, ok := r.nearestFault(sent); ok {
		parts = append(parts, fmt.Sprintf("nearest fault %s at %s", f.Fault, f.At))
	}
	channel := r.tap.channel(key)
	if channel == "" {
		return strings.Join(append(parts, "channel unknown"), "; ")
	}
	parts = append(parts, "channel "+channel)
	claim := replicas.ClaimKey(r.ch.fetch, channel)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch v, err := r.rdb.Get(ctx, claim).Result(); {
	case errors.Is(err, redis.Nil):
		parts = append(parts, "no claim in Redis now")
	case err != nil:
		parts = append(parts, "claim unreadable: "+err.Error())
	default:
		parts = append(parts, fmt.Sprintf("claim %q (expires in %s)", v, r.rdb.PTTL(ctx, claim).Val()))
	}
	if lines := r.srv.logLines(channel, 3); len(lines) > 0 {
		parts = append(parts, "server log: "+strings.Join(lines, " | "))
	} else {
		parts = append(parts, "the server logged nothing about the channel")
	}
	return strings.Join(parts, "; ")
}

// nearestFault is the fault injected closest to at.
func (r *run) nearestFault(at Duration) (FaultRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best FaultRecord
	found := false
	for _, f := range r.faults {
		if !found || abs(f.At-at) < abs(best.At-at) {
			best, found = f, true
		}
	}
	return best, found
}

func abs(d Duration) Duration {
	if d < 0 {
		return -d
	}
	return d
}
