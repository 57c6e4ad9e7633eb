package soak

import (
	"fmt"
	"maps"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// What must hold whatever the faults, each a kind of Violation:
//
//   - at most once: no row twice in a stream, rows in the query's order,
//     only rows of the stream's own query;
//   - a stream that ended "end" got every row;
//   - exactly one terminal per stream and per persist, heard within Stall,
//     and nothing on the channel after it;
//   - no more rows in flight than the window;
//   - a stream that never accepts ends "timeout" (or "error"), never "end";
//   - a persist that was answered OK is stored exactly once, with the
//     reply's id; one that failed is stored at most once;
//   - an SSE reader of the domain sees every stored event once, in order,
//     and reaches the last one the server announced;
//   - the server is ready again after each fault, does not exit, panic or
//     race, holds no stream once every client is gone, and its goroutines
//     and heap do not grow without bound.
const (
	VDuplicate       = "duplicate-row"
	VOrder           = "row-out-of-order"
	VForeignRow      = "row-of-another-query"
	VIncomplete      = "end-with-missing-rows"
	VNoTerminal      = "no-terminal"
	VTwoTerminals    = "two-terminals"
	VAfterTerminal   = "message-after-terminal"
	VOverWindow      = "over-window"
	VWrongEnding     = "wrong-ending"
	VPersistLost     = "persist-lost"
	VPersistTwice    = "persist-stored-twice"
	VPersistID       = "persist-id-mismatch"
	VSSEGap          = "sse-gap"
	VSSEDuplicate    = "sse-duplicate"
	VSSEBehind       = "sse-behind"
	VNotReady        = "not-ready-after-fault"
	VServerExited    = "server-exited"
	VServerLog       = "server-panic-or-race"
	VStreamLeak      = "stream-leak"
	VGoroutineGrowth = "goroutine-growth"
	VHeapGrowth      = "heap-growth"
	VIdleGoroutines  = "idle-goroutines"
)

// The ledger keeps the detail of the first keptViolationKind violations
// of each kind, keptViolations in all; it counts every one.
const (
	keptViolations    = 200
	keptViolationKind = 20
)

// Violation is one broken invariant.
type Violation struct {
	At     Duration `json:"at"` // since the load began
	Kind   string   `json:"kind"`
	Detail string   `json:"detail"`
}

// Duration prints as Go does, in text and JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).Round(time.Millisecond).String() }

// MarshalText writes the duration as "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Counts are the client side's counters, cumulative.
type Counts struct {
	FetchStarted     int64 `json:"fetch_started"`
	FetchEnd         int64 `json:"fetch_end"`
	FetchTimeout     int64 `json:"fetch_timeout"`
	FetchError       int64 `json:"fetch_error"`
	FetchNoServer    int64 `json:"fetch_no_server"`
	FetchInterrupted int64 `json:"fetch_interrupted"`
	FetchStalled     int64 `json:"fetch_stalled"`
	FetchOther       int64 `json:"fetch_other"`
	Rows             int64 `json:"rows"`
	PersistOK        int64 `json:"persist_ok"`
	PersistFailed    int64 `json:"persist_failed"`
	PersistDocs      int64 `json:"persist_docs"`
	SSEEvents        int64 `json:"sse_events"`
	SSEReconnects    int64 `json:"sse_reconnects"`
	SSEHTTPErrors    int64 `json:"sse_http_errors"`
	HangTimeout      int64 `json:"hang_timeout"`
	HangError        int64 `json:"hang_error"`
	HangOther        int64 `json:"hang_other"`
	BadSent          int64 `json:"bad_sent"`
	BadAnswered      int64 `json:"bad_answered"`
	TapLost          int64 `json:"tap_lost"`
	// CommittedIDs counts the event ids the server announced on its
	// commit channel, as the tap heard them.
	CommittedIDs int64 `json:"committed_ids"`
	// Requests the soak published that Redis delivered to a subscriber,
	// by kind: what the server should have counted.
	FetchRequests   int64 `json:"fetch_requests"`
	PersistRequests int64 `json:"persist_requests"`
}

// counters are Counts as they are counted.
type counters struct {
	fetchStarted, fetchEnd, fetchTimeout, fetchError, fetchNoServer  atomic.Int64
	fetchInterrupted, fetchStalled, fetchOther, rows                 atomic.Int64
	persistOK, persistFailed, persistDocs                            atomic.Int64
	sseEvents, sseReconnects, sseHTTPErrors                          atomic.Int64
	hangTimeout, hangError, hangOther, badSent, badAnswered, tapLost atomic.Int64
	fetchRequests, persistRequests, committedIDs                     atomic.Int64
}

func (c *counters) snapshot() Counts {
	return Counts{
		FetchStarted: c.fetchStarted.Load(), FetchEnd: c.fetchEnd.Load(), FetchTimeout: c.fetchTimeout.Load(),
		FetchError: c.fetchError.Load(), FetchNoServer: c.fetchNoServer.Load(), FetchInterrupted: c.fetchInterrupted.Load(),
		FetchStalled: c.fetchStalled.Load(), FetchOther: c.fetchOther.Load(), Rows: c.rows.Load(),
		PersistOK: c.persistOK.Load(), PersistFailed: c.persistFailed.Load(), PersistDocs: c.persistDocs.Load(),
		SSEEvents: c.sseEvents.Load(), SSEReconnects: c.sseReconnects.Load(), SSEHTTPErrors: c.sseHTTPErrors.Load(),
		HangTimeout: c.hangTimeout.Load(), HangError: c.hangError.Load(), HangOther: c.hangOther.Load(),
		BadSent: c.badSent.Load(), BadAnswered: c.badAnswered.Load(), TapLost: c.tapLost.Load(),
		FetchRequests: c.fetchRequests.Load(), PersistRequests: c.persistRequests.Load(), CommittedIDs: c.committedIDs.Load(),
	}
}

// ledger is where every part of the soak reports: counters, the reasons
// of failed calls, and violations. Safe for concurrent use.
type ledger struct {
	c     counters
	start atomic.Int64 // unix nanoseconds the load began

	// channels matches the soak's channel names, which reasons leave out
	// so that they count alike.
	channels *regexp.Regexp

	mu         sync.Mutex
	violations []Violation
	byKind     map[string]int
	reasons    map[string]int // "fetch error: unavailable" and the like
}

func newLedger(prefix string) *ledger {
	l := &ledger{byKind: map[string]int{}, reasons: map[string]int{}, channels: regexp.MustCompile(regexp.QuoteMeta(prefix) + `[^ ]*`)}
	l.start.Store(time.Now().UnixNano())
	return l
}

func (l *ledger) since() Duration {
	return Duration(time.Since(time.Unix(0, l.start.Load())))
}

// violate records a broken invariant. The first few of each kind keep
// their detail; all are counted.
func (l *ledger) violate(kind, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byKind[kind]++
	if l.byKind[kind] <= keptViolationKind && len(l.violations) < keptViolations {
		l.violations = append(l.violations, Violation{At: l.since(), Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
}

// reason counts why a call failed.
func (l *ledger) reason(what string) {
	what = l.channels.ReplaceAllString(what, "<channel>")
	l.mu.Lock()
	l.reasons[what]++
	l.mu.Unlock()
}

func (l *ledger) violationCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, k := range l.byKind {
		n += k
	}
	return n
}

// report copies what the ledger holds.
func (l *ledger) report() (kept []Violation, byKind, reasons map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Violation(nil), l.violations...), maps.Clone(l.byKind), maps.Clone(l.reasons)
}
