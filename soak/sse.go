package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sseReader follows GET /events of the soak's domain from the beginning,
// resuming with Last-Event-ID whenever its response ends (the gateway
// says "reconnect" to a reader that fell behind, or after its feed lost
// notifications), and counts the events it gets. The domain's events are
// the soak's persists, so a reader must end up with every stored one,
// once, in id order.
type sseReader struct {
	n      int
	events atomic.Int64
	last   atomic.Int64 // id of the last event
	// ids are the events' ids, kept by the first reader only (they are
	// the same for all): evidence of which events a gap lacks.
	ids []int64
}

// sseStuck is how long the readers may make no progress at the end
// before those behind the last announced event are reported.
const sseStuck = 10 * time.Second

// sseEventName is the name of the soak's persisted events; frames of any
// other name (reconnect, closed) are the gateway's own.
const sseEventName = "persisted"

func (r *run) readSSE(ctx context.Context, s *sseReader, hc *http.Client) {
	base := "http://" + r.srv.http + "/events?domain=" + url.QueryEscape(r.domain) + "&since=0"
	first := true
	for ctx.Err() == nil {
		if !first {
			r.l.c.sseReconnects.Add(1)
		}
		first = false
		err := r.followSSE(ctx, s, hc, base)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.l.c.sseHTTPErrors.Add(1)
			r.l.reason("sse: " + err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// followSSE reads one response until it ends.
func (r *run) followSSE(ctx context.Context, s *sseReader, hc *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return fmt.Errorf("GET /events: %w", err)
	}
	if last := s.last.Load(); last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET /events: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /events: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	var id int64
	var name string
	var data bool
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data && name == sseEventName {
				r.sseEvent(s, id)
			}
			id, name, data = 0, "", false
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseInt(string(line[4:]), 10, 64)
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = true
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("read /events: %w", err)
	}
	return nil
}

func (r *run) sseEvent(s *sseReader, id int64) {
	last := s.last.Load()
	switch {
	case id == last:
		r.l.violate(VSSEDuplicate, "sse reader %d: event %d twice", s.n, id)
		return
	case id < last:
		r.l.violate(VSSEDuplicate, "sse reader %d: event %d after %d (out of order or again)", s.n, id, last)
		return
	}
	s.last.Store(id)
	s.events.Add(1)
	if s.n == 0 {
		s.ids = append(s.ids, id)
	}
	r.l.c.sseEvents.Add(1)
}

// SSECheck is what the SSE readers got of the stored events.
type SSECheck struct {
	Readers  int `json:"readers"`
	CaughtUp int `json:"caught_up"` // readers that reached the last stored event
	Missing  int `json:"missing"`   // events stored up to a reader's last that it never got, summed
}

// checkSSE holds each reader's count to the stored events up to its last
// one: as ids only grow, equal counts mean the same events. Called once
// the readers have stopped.
func (r *run) checkSSE(readers []*sseReader, ids []int64, pids map[int64]string, announced int64) SSECheck {
	sc := SSECheck{Readers: len(readers)}
	var top int64
	if len(ids) > 0 {
		top = ids[len(ids)-1]
	}
	for _, s := range readers {
		last := s.last.Load()
		if last >= top {
			sc.CaughtUp++
		}
		if last < announced {
			r.l.violate(VSSEBehind, "sse reader %d: at event %d, the server announced up to %d; no progress for %s", s.n, last, announced, sseStuck)
		}
		upTo, _ := slices.BinarySearch(ids, last+1)
		if got := int(s.events.Load()); got < upTo {
			sc.Missing += upTo - got
			r.l.violate(VSSEGap, "sse reader %d: %d events up to id %d, %d stored%s", s.n, got, last, upTo, r.missing(s, ids[:upTo], pids))
		}
	}
	return sc
}

// sseCaughtUp waits until every reader reached id top, or until the
// readers together made no progress for stuck, or timeout.
func sseCaughtUp(ctx context.Context, readers []*sseReader, top int64, stuck, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var events int64
	progressed := time.Now()
	for time.Now().Before(deadline) && time.Since(progressed) < stuck && ctx.Err() == nil {
		behind := false
		var n int64
		for _, s := range readers {
			n += s.events.Load()
			if s.last.Load() < top {
				behind = true
			}
		}
		if !behind {
			return
		}
		if n != events {
			events, progressed = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// missing names the events the first reader lacks, what their persists
// were told, and whether the server announced them.
func (r *run) missing(s *sseReader, stored []int64, pids map[int64]string) string {
	if s.n != 0 {
		return ""
	}
	var out []string
	i := 0
	for _, id := range stored {
		for i < len(s.ids) && s.ids[i] < id {
			i++
		}
		if i < len(s.ids) && s.ids[i] == id {
			continue
		}
		pid := pids[id]
		r.mu.Lock()
		p, known := r.persisted[pid]
		r.mu.Unlock()
		reply := "no request of the soak"
		switch {
		case known && p.acked:
			reply = fmt.Sprintf("answered OK, insertId %d", p.insertID)
		case known:
			reply = "its request failed"
		}
		announced := "NEVER announced on the commit channel"
		if at, ok := r.tap.announced(id); ok {
			announced = "announced on the commit channel at " + at.String()
			if f, ok := r.nearestFault(at); ok {
				announced += fmt.Sprintf(", nearest fault %s at %s", f.Fault, f.At)
			}
		}
		out = append(out, fmt.Sprintf("id %d (%s, %s, %s)", id, pid, reply, announced))
		if len(out) == 5 {
			break
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ": lacks " + strings.Join(out, ", ")
}
