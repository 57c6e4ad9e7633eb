package soak

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
)

// tap hears every response channel of the soak (one PSUBSCRIBE to their
// prefix) and keeps, per call, what the server published there. A client
// stops listening at the first terminal; the tap goes on, which is how a
// second terminal or a late row is caught.
//
// A call is known by its key, the channel without the client's random
// token: "f3:17" is the 17th call of worker f3, whose client makes its
// channels of its prefix, a token and a sequence number (see
// client.WithChannelPrefix). The soak's raw requests use the same shape.
type tap struct {
	prefix string // of every response channel
	commit string // the server's commit channel
	ps     *redis.PubSub
	l      *ledger
	// retain is how long a checked record stays to catch late messages.
	retain time.Duration

	mu      sync.Mutex
	records map[string]*record
	// tokens are the random tokens of the clients' channels, by worker,
	// learnt from what they heard: a call's channel, for evidence.
	tokens map[string]string
	// commits are the id ranges the server announced as committed, and
	// when (since the load began).
	commits []announcement
	// epoch counts the tap's lost connections: a record opened in an
	// earlier epoch may have missed messages and is not held to them.
	epoch int
	done  chan struct{}
}

// record is what the tap heard on one call's channel.
type record struct {
	opened  time.Time
	owned   bool // a call opened it; else a message came for no call
	epoch   int
	rows    int // JSON objects other than an error: rows, or a persist's OK
	ends    []string
	unknown int // anything else that is not the client's "accepted"
	// afterEnd counts rows heard after the first terminal.
	afterEnd int
	// terminal is closed at the first terminal.
	terminal chan struct{}
	// After the check: checked says when; allowEnd that the client sent
	// an "end" of its own, which the tap cannot tell from the server's.
	checked  time.Time
	allowEnd bool
}

// newTap subscribes to every channel under prefix, and to the server's
// commit channel, whose announcements are evidence when an SSE reader
// misses events.
func newTap(ctx context.Context, rdb *redis.Client, prefix, commit string, l *ledger, retain time.Duration) (*tap, error) {
	ps := rdb.PSubscribe(ctx, strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(prefix)+"*")
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("tap: psubscribe %s*: %w", prefix, err)
	}
	if err := ps.Subscribe(ctx, commit); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("tap: subscribe %s: %w", commit, err)
	}
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("tap: subscribe %s: %w", commit, err)
	}
	t := &tap{prefix: prefix, commit: commit, ps: ps, l: l, retain: retain, records: map[string]*record{}, tokens: map[string]string{}, done: make(chan struct{})}
	go t.read()
	return t, nil
}

func (t *tap) close() {
	_ = t.ps.Close()
	<-t.done
}

func (t *tap) read() {
	defer close(t.done)
	for {
		msg, err := t.ps.Receive(context.Background())
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			// go-redis redials and resubscribes on the next Receive; what
			// was published meanwhile is gone.
			t.mu.Lock()
			t.epoch++
			t.mu.Unlock()
			t.l.c.tapLost.Add(1)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		m, ok := msg.(*redis.Message)
		switch {
		case !ok:
		case m.Channel == t.commit:
			if c, err := messages.DecodeCommitted([]byte(m.Payload)); err == nil {
				at := t.l.since()
				t.mu.Lock()
				for _, r := range c.Ranges {
					t.commits = append(t.commits, announcement{ids: r, at: at})
				}
				t.mu.Unlock()
				for _, r := range c.Ranges {
					t.l.c.committedIDs.Add(r[1] - r[0] + 1)
				}
			}
		default:
			t.heard(m.Channel, m.Payload)
		}
	}
}

// key is a channel's call key: prefix, then "<worker>:<token>:<seq>",
// becomes "<worker>:<seq>".
func (t *tap) key(channel string) string {
	rest := strings.TrimPrefix(channel, t.prefix)
	i, j := strings.IndexByte(rest, ':'), strings.LastIndexByte(rest, ':')
	if i < 0 || i == j {
		return rest
	}
	return rest[:i+1] + rest[j+1:]
}

// kind sorts a payload: "" for the client's "accepted", "row" for an
// object, the terminal's name, or "unknown".
func kind(payload string) string {
	switch {
	case payload == `"accepted"`:
		return ""
	case payload == `"end"`, payload == `"timeout"`, payload == `"error"`:
		return strings.Trim(payload, `"`)
	case strings.HasPrefix(payload, `{"error":`):
		return "error"
	case strings.HasPrefix(payload, "{"):
		return "row"
	}
	return "unknown"
}

func (t *tap) heard(channel, payload string) {
	k := kind(payload)
	if k == "" {
		return
	}
	key := t.key(channel)
	t.mu.Lock()
	defer t.mu.Unlock()
	if rest := strings.TrimPrefix(channel, t.prefix); strings.Count(rest, ":") == 2 {
		parts := strings.Split(rest, ":")
		t.tokens[parts[0]] = parts[1]
	}
	r := t.records[key]
	if r == nil {
		r = &record{opened: time.Now(), epoch: t.epoch, terminal: make(chan struct{})}
		t.records[key] = r
	}
	if !r.checked.IsZero() {
		if k == "end" && r.allowEnd {
			r.allowEnd = false
			return
		}
		if k == "row" || k == "unknown" {
			t.l.violate(VAfterTerminal, "%s: %s heard %s after the call was checked", key, abbreviate(payload), time.Since(r.checked).Round(time.Millisecond))
		} else {
			t.l.violate(VTwoTerminals, "%s: a terminal %s heard %s after the call was checked (terminals before: %v)", key, abbreviate(payload), time.Since(r.checked).Round(time.Millisecond), r.ends)
		}
		r.ends = append(r.ends, k)
		return
	}
	switch k {
	case "row":
		r.rows++
		if len(r.ends) > 0 {
			r.afterEnd++
		}
	case "unknown":
		r.unknown++
	default:
		r.ends = append(r.ends, k)
		if len(r.ends) == 1 {
			close(r.terminal)
		}
	}
}

// announcement is one range of a commit notification.
type announcement struct {
	ids [2]int64
	at  Duration
}

// announced tells whether, and when, the server announced id as
// committed.
func (t *tap) announced(id int64) (Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.commits) - 1; i >= 0; i-- {
		if a := t.commits[i]; a.ids[0] <= id && id <= a.ids[1] {
			return a.at, true
		}
	}
	return 0, false
}

// channel is key's channel, when the tap knows its client's token.
func (t *tap) channel(key string) string {
	worker, seq, _ := strings.Cut(key, ":")
	t.mu.Lock()
	defer t.mu.Unlock()
	token, ok := t.tokens[worker]
	if !ok {
		return ""
	}
	return t.prefix + worker + ":" + token + ":" + seq
}

// open starts a call's record before its request goes out.
func (t *tap) open(key string) *record {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &record{opened: time.Now(), owned: true, epoch: t.epoch, terminal: make(chan struct{})}
	t.records[key] = r
	return r
}

// heard is a copy of what the tap heard on one call's channel.
type heard struct {
	rows, afterEnd, unknown int
	ends                    []string
	// blind says the tap may have missed some of it.
	blind bool
}

func (t *tap) heardNow(key string) heard {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.records[key]
	if r == nil {
		return heard{blind: true}
	}
	return heard{rows: r.rows, afterEnd: r.afterEnd, unknown: r.unknown, ends: append([]string(nil), r.ends...), blind: r.epoch != t.epoch}
}

// waitTerminal waits until the tap heard a terminal of key, or timeout.
func (t *tap) waitTerminal(ctx context.Context, key string, timeout time.Duration) bool {
	t.mu.Lock()
	r := t.records[key]
	t.mu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.terminal:
		return true
	case <-time.After(timeout):
		return false
	case <-ctx.Done():
		return false
	}
}

// checked marks key's record as checked: from now on anything but the
// client's own "end" (when allowEnd) is a violation.
func (t *tap) checked(key string, allowEnd bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.records[key]; r != nil {
		r.checked, r.allowEnd = time.Now(), allowEnd
	}
}

// sweep drops records checked longer than retain ago, and reports those
// no call owns: messages for a call that had ended and been forgotten.
// final sweeps everything.
func (t *tap) sweep(final bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, r := range t.records {
		switch {
		case !r.owned && (final || time.Since(r.opened) > t.retain):
			if r.rows > 0 || r.unknown > 0 {
				t.l.violate(VAfterTerminal, "%s: %d rows heard on a channel whose call had ended and been forgotten (terminals %v)", key, r.rows, r.ends)
			} else if len(r.ends) > 0 && !(len(r.ends) == 1 && r.ends[0] == "end") {
				t.l.violate(VTwoTerminals, "%s: terminals %v heard on a channel whose call had ended and been forgotten", key, r.ends)
			}
			delete(t.records, key)
		case !r.checked.IsZero() && (final || time.Since(r.checked) > t.retain):
			delete(t.records, key)
		}
	}
}

// abbreviate keeps a payload short enough for a report line.
func abbreviate(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
