package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventsource/eventsource/redisbus"
)

// followConns is how many Redis connections a follow scenario's followers
// share, each SUBSCRIBEd to its share of their channels by name (the
// server ends a followed stream whose channel has no subscriber; a pattern
// does not count).
const followConns = 8

// Waits of a follow scenario: for the server to take up (and, after
// "end", to let go of) every follower's channel, and for the idle
// followers to settle before they are measured.
const (
	followTakeUp  = 30 * time.Second
	followRelease = 10 * time.Second
	followSettle  = time.Second
	followIdle    = 2 * time.Second
)

// FollowSummary is what a follow scenario measured: the server while its
// followers sat idle, then commit to delivery at every follower.
type FollowSummary struct {
	Followers   int `json:"followers"`
	Window      int `json:"window"`
	Connections int `json:"connections"`
	// OpenSeconds runs from the first SUBSCRIBE to the server holding
	// every follower's channel.
	OpenSeconds float64 `json:"open_seconds"`

	// RSS of the server process before the followers, with all of them
	// idle, and idle after a GC that returns free memory to the OS (only
	// in-process); per follower is the growth divided by the followers.
	RSSBefore             int64   `json:"rss_before"`
	RSSIdle               int64   `json:"rss_idle"`
	RSSPerFollower        float64 `json:"rss_per_follower"`
	RSSIdleSettled        int64   `json:"rss_idle_settled,omitempty"`
	RSSPerFollowerSettled float64 `json:"rss_per_follower_settled,omitempty"`
	// MySQLOpenIdle and MySQLInUseIdle are the server's MySQL connections,
	// open and busy, at most while the followers sat idle;
	// ThreadsConnectedDelta is MySQL's Threads_connected then, less before
	// the scenario (anyone's connections).
	MySQLOpenIdle         int `json:"mysql_open_idle"`
	MySQLInUseIdle        int `json:"mysql_in_use_idle"`
	ThreadsConnectedDelta int `json:"threads_connected_delta"`

	// Events were persisted; each follower should get each one once, in
	// commit order. Exact counts the followers that did.
	Events     int    `json:"events"`
	Deliveries int64  `json:"deliveries"`
	Missing    int64  `json:"missing"`
	Repeated   int64  `json:"repeated"`
	OutOfOrder int64  `json:"out_of_order"`
	Unexpected int64  `json:"unexpected"` // rows of no measured persist
	Early      int64  `json:"early"`      // arrived before the bench heard the persist reply
	Errors     int64  `json:"errors"`     // followers the server ended, or whose rows had no id
	FirstError string `json:"first_error,omitempty"`
	Exact      int    `json:"exact"`
	// Commit to delivery, in microseconds.
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	// Released counts the followers whose channel the server let go of
	// within followRelease of their "end".
	Released int `json:"released"`
}

// runFollow holds spec.Streams followed fetches of one domain that has no
// events yet, measures the server's MySQL connections and RSS while they
// sit idle, then persists spec.Events events into the domain at
// spec.EventRate and measures from each persist's reply (the commit) to
// the row's arrival at every follower. Every follower ends with "end".
func (e *env) runFollow(ctx context.Context, spec Spec, res *ScenarioResult) error {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	domain := "bench-" + e.runID + "-" + spec.Name
	q, _ := json.Marshal(domain)
	query := `{"$select":{"$where":{"domain":` + string(q) + `}}}`
	sum := &FollowSummary{Followers: spec.Streams, Window: max(spec.Window, 1), Connections: min(followConns, spec.Streams), Events: spec.Events}
	res.Follow = sum

	e.settle()
	if e.serverPID > 0 {
		if s, err := readProc(e.serverPID); err == nil {
			sum.RSSBefore = s.rss
		}
	}
	threadsBefore, err := e.threadsConnected(ctx)
	if err != nil {
		return err
	}

	e.progress().Note(fmt.Sprintf("%s: opening %d followers on %d connections", spec.Name, spec.Streams, sum.Connections))
	start := time.Now()
	fp, err := openFollowers(ctx, e.redisOpts, e.prefix+"f:", spec.Streams, sum.Connections, func(err error) {
		e.log.Warn("follow scenario publish", slog.Any("err", err))
	})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			fp.end()
			fp.close()
		}
	}()
	fp.request(e.fetchChannel, query, spec.Window)
	if err := e.waitListeners(ctx, fp.channels, 2, followTakeUp); err != nil {
		return fmt.Errorf("%s: the server did not take up every follower: %w", spec.Name, err)
	}
	sum.OpenSeconds = time.Since(start).Seconds()
	e.progress().Note(fmt.Sprintf("%s: %d followers held by the server after %.1fs; measuring them idle", spec.Name, spec.Streams, sum.OpenSeconds))
	e.sitIdle(ctx, spec, sum, threadsBefore)

	interval := time.Duration(float64(time.Second) / spec.EventRate)
	stopProfile := e.profile(spec.Name)
	ph := e.startPhase(spec.Name+" server", 0, time.Duration(spec.Events)*interval)
	commits := map[int64]int64{}
	var order []int64
	// Only ctx ends it early; what was committed until then is measured.
	_ = e.persistTicks(ctx, ph, spec.Events, interval, "follow", domain, func(id, at int64) error {
		commits[id] = at
		order = append(order, id)
		return nil
	})
	ph.end = time.Now()
	if len(order) > 0 {
		fp.waitFor(ctx, order[len(order)-1], poolWait)
	}
	stopProfile()
	m := ph.finish()
	// Every follower ends with "end"; the server lets go of its channel.
	fp.end()
	if err := e.waitListeners(ctx, fp.channels, 1, followRelease); err != nil {
		e.log.Warn("follow scenario: followers not released", slog.Any("err", err))
	}
	if counts, err := e.listeners(ctx, fp.channels); err == nil {
		for _, n := range counts {
			if n <= 1 {
				sum.Released++
			}
		}
	}
	fp.close()
	closed = true
	fp.summarize(sum, commits, order)

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
	res.Server = m
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}
	if sum.Released < spec.Streams {
		return fmt.Errorf("%s: %d of %d followers still held by the server %s after their \"end\"", spec.Name, spec.Streams-sum.Released, spec.Streams, followRelease)
	}
	return nil
}

// sitIdle measures the server while every follower waits for a commit:
// MySQL connections, then RSS.
func (e *env) sitIdle(ctx context.Context, spec Spec, sum *FollowSummary, threadsBefore int) {
	time.Sleep(followSettle)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	until := time.Now().Add(followIdle)
	for time.Now().Before(until) && ctx.Err() == nil {
		if open, inUse, ok := e.conns(); ok {
			sum.MySQLOpenIdle, sum.MySQLInUseIdle = max(sum.MySQLOpenIdle, open), max(sum.MySQLInUseIdle, inUse)
		}
		if n, err := e.threadsConnected(ctx); err == nil {
			sum.ThreadsConnectedDelta = max(sum.ThreadsConnectedDelta, n-threadsBefore)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	if e.serverPID > 0 {
		if s, err := readProc(e.serverPID); err == nil {
			sum.RSSIdle = s.rss
			sum.RSSPerFollower = float64(s.rss-sum.RSSBefore) / float64(spec.Streams)
		}
	}
	if e.srv != nil {
		e.settle()
		if s, err := readProc(e.serverPID); err == nil {
			sum.RSSIdleSettled = s.rss
			sum.RSSPerFollowerSettled = float64(s.rss-sum.RSSBefore) / float64(spec.Streams)
		}
	}
}

// waitListeners waits until every channel has at least want subscribers
// (want > 1: the followers' and the server's) or at most want (want 1:
// the server let go of it), up to wait.
func (e *env) waitListeners(ctx context.Context, channels []string, want int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		counts, err := e.listeners(ctx, channels)
		off := 0
		if err == nil {
			for _, ch := range channels {
				if n := counts[ch]; want > 1 && n < want || want <= 1 && n > want {
					off++
				}
			}
			if off == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("%d of %d channels not at %d subscribers after %s", off, len(channels), want, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listeners counts the subscribers of channels (redisbus.Subscribers).
func (e *env) listeners(ctx context.Context, channels []string) (map[string]int64, error) {
	return redisbus.Subscribers(ctx, e.rdb, channels)
}

// followFigures judges commit-to-delivery latency at every follower, and
// tells what the idle followers cost the server.
func (s *ScenarioResult) followFigures(note string) []Figure {
	spec, sum := s.Spec, s.Follow
	if sum == nil {
		sum = &FollowSummary{}
	}
	if note == "" && (sum.Missing > 0 || sum.Errors > 0 || sum.Repeated > 0 || sum.OutOfOrder > 0 || sum.Unexpected > 0) {
		note = fmt.Sprintf("%d deliveries missing, %d repeated, %d out of order, %d unexpected; %d follower errors %s",
			sum.Missing, sum.Repeated, sum.OutOfOrder, sum.Unexpected, sum.Errors, sum.FirstError)
	}
	p99 := Figure{Scenario: spec.Name, Name: "commit→delivery p99", Value: sum.P99 / 1000, Unit: "ms", Note: note}
	if spec.MaxP99 > 0 {
		p99.Target = fmt.Sprintf("≤ %g ms", float64(spec.MaxP99)/float64(time.Millisecond))
		p99.Met = ptr(sum.Deliveries > 0 && sum.P99 <= float64(spec.MaxP99)/1000 && note == "")
	}
	p50 := Figure{Scenario: spec.Name, Name: "commit→delivery p50", Value: sum.P50 / 1000, Unit: "ms"}
	n := Figure{Scenario: spec.Name, Name: "deliveries", Value: float64(sum.Deliveries),
		Note: fmt.Sprintf("%d followers × %d events; %d missing, %d repeated, %d out of order; %d followers got every event once in order; %d released after \"end\"",
			sum.Followers, sum.Events, sum.Missing, sum.Repeated, sum.OutOfOrder, sum.Exact, sum.Released)}
	conns := Figure{Scenario: spec.Name, Name: "MySQL connections in use while idle", Value: float64(sum.MySQLInUseIdle), Unit: "conns",
		Note: fmt.Sprintf("max over %s with every follower waiting; %d open, Threads_connected +%d", followIdle, sum.MySQLOpenIdle, sum.ThreadsConnectedDelta)}
	rss := Figure{Scenario: spec.Name, Name: "RSS per idle follower", Value: sum.RSSPerFollower / 1000, Unit: "KB"}
	if sum.RSSIdleSettled > 0 {
		rss.Note = fmt.Sprintf("%.1f KB after a GC; followers held after %.1fs", sum.RSSPerFollowerSettled/1000, sum.OpenSeconds)
	}
	return []Figure{p99, p50, n, conns, rss}
}
