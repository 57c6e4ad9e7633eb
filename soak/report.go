package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Interval is one report line's worth: the server's last sample, the
// client side's counters, and the rates over the interval.
type Interval struct {
	Type    string   `json:"type"` // "interval"
	Elapsed Duration `json:"elapsed"`
	Server  Sample   `json:"server"`
	Client  Counts   `json:"client"`
	// Per second over the interval.
	StreamsPerSec  float64 `json:"streams_per_sec"`
	RowsPerSec     float64 `json:"rows_per_sec"`
	PersistsPerSec float64 `json:"persists_per_sec"`
	SSEPerSec      float64 `json:"sse_events_per_sec"`
	// CommittedPerSec are events announced on the commit channel.
	CommittedPerSec float64 `json:"committed_per_sec"`
	// Faults are those injected during the interval.
	Faults     []FaultRecord `json:"faults"`
	Violations int           `json:"violations"`
}

// Summary is the end of a soak.
type Summary struct {
	Type        string   `json:"type"` // "summary"
	Run         string   `json:"run"`
	Database    string   `json:"database"`
	Load        Duration `json:"load"`
	Interrupted bool     `json:"interrupted,omitempty"`
	Passed      bool     `json:"passed"`

	Client  Counts         `json:"client"`
	Reasons map[string]int `json:"reasons"`
	Faults  []FaultRecord  `json:"faults"`

	Persists PersistCheck `json:"persists"`
	SSE      SSECheck     `json:"sse"`
	Trend    Trend        `json:"trend"`
	Idle     Idle         `json:"idle"`
	Server   Sample       `json:"server"` // the last sample under load
	// Requests is the server's eventsource_requests_total at rest, after
	// the load.
	Requests map[string]float64 `json:"server_requests"`

	ServerLog  ServerLog `json:"server_log"`
	ServerExit string    `json:"server_exit,omitempty"`

	ViolationsByKind map[string]int `json:"violations_by_kind"`
	Violations       []Violation    `json:"violations"` // the first few of each kind
}

// Idle compares the server at rest before the load with the server at
// rest after it: every client gone, every stream ended.
type Idle struct {
	GoroutinesBefore float64 `json:"goroutines_before"`
	GoroutinesAfter  float64 `json:"goroutines_after"`
	// Allowance is growth explained by connections the server opened
	// under load and keeps (pooled MySQL connections, Redis pipelines).
	Allowance   float64 `json:"allowance"`
	HeapBefore  float64 `json:"heap_before_bytes"`
	HeapAfter   float64 `json:"heap_after_bytes"`
	StreamsOpen float64 `json:"streams_open"`
	SSEOpen     float64 `json:"sse_open"`
	Actors      int     `json:"stream_actors"`
	Note        string  `json:"note,omitempty"`
}

// ServerLog is what the server logged, counted.
type ServerLog struct {
	Path     string   `json:"path"`
	Kept     bool     `json:"kept"`
	Warnings int      `json:"warnings"`
	Errors   int      `json:"errors"`
	Alarms   []string `json:"alarms,omitempty"`
}

// writeInterval prints one interval as a small block, or a JSON line.
func writeInterval(w io.Writer, asJSON bool, iv Interval) {
	if asJSON {
		iv.Type = "interval"
		b, _ := json.Marshal(iv)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	s, c := iv.Server, iv.Client
	pad := strings.Repeat(" ", 10)
	fmt.Fprintf(w, "[%7s] server   goroutines %s  heap %s  rss %s  fds %s  redis conns %s  mysql conns %s (pool open %s, busy %s)  streams open %s\n",
		iv.Elapsed, count(int64(s.Goroutines)), sizeOf(s.HeapInuse), sizeOf(s.RSS), count(int64(s.FDs)),
		conns(s.RedisConns), conns(s.MySQLConns), count(int64(s.SQLOpen)), count(int64(s.SQLInUse)), count(int64(s.StreamsOpen)))
	fmt.Fprintf(w, "%sload     fetch %.1f streams/s %s rows/s  persist %.1f/s  committed %.1f events/s  sse %s events/s\n",
		pad, iv.StreamsPerSec, count(int64(iv.RowsPerSec)), iv.PersistsPerSec, iv.CommittedPerSec, count(int64(iv.SSEPerSec)))
	fmt.Fprintf(w, "%sclient   fetch end %s timeout %s error %s no-server %s interrupted %s stalled %s  persist ok %s failed %s  unaccepted timeout %s error %s  sse reconnects %s errors %s\n",
		pad, count(c.FetchEnd), count(c.FetchTimeout), count(c.FetchError), count(c.FetchNoServer), count(c.FetchInterrupted), count(c.FetchStalled),
		count(c.PersistOK), count(c.PersistFailed), count(c.HangTimeout), count(c.HangError), count(c.SSEReconnects), count(c.SSEHTTPErrors))
	fmt.Fprintf(w, "%sserver   ended %s  refused %s  commit notifications %s  sse feed lost %s  claims lost %s\n",
		pad, formatCounts(s.Ended), formatCounts(s.Refused), formatCounts(s.Commits), count(int64(s.FeedLost)), count(int64(s.ClaimsLost)))
	for _, f := range iv.Faults {
		fmt.Fprintf(w, "%sfault    %s\n", pad, faultLine(f))
	}
	fmt.Fprintf(w, "%sinvariants %s\n", pad, violations(iv.Violations))
}

func faultLine(f FaultRecord) string {
	line := fmt.Sprintf("%s at %s: %s", f.Fault, f.At, f.Detail)
	if f.Err != "" {
		line += " (" + f.Err + ")"
	}
	if f.Recovered >= 0 {
		return line + fmt.Sprintf("; ready again in %s", f.Recovered)
	}
	return line + "; NOT READY again"
}

func violations(n int) string {
	if n == 0 {
		return "hold (0 violations)"
	}
	return fmt.Sprintf("BROKEN: %d violations so far", n)
}

// writeSummary prints the summary as text, or as one JSON line.
func writeSummary(w io.Writer, asJSON bool, s *Summary) {
	if asJSON {
		s.Type = "summary"
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	c := s.Client
	fmt.Fprintf(w, "\nsoak %s: %s of load on database %s", s.Run, s.Load, s.Database)
	if s.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "  %-14s %s\n", name, fmt.Sprintf(format, args...))
	}
	line("fetch streams", "%s: end %s, timeout %s, error %s, no server %s, interrupted %s, stalled %s, other %s; %s rows",
		count(c.FetchStarted), count(c.FetchEnd), count(c.FetchTimeout), count(c.FetchError), count(c.FetchNoServer),
		count(c.FetchInterrupted), count(c.FetchStalled), count(c.FetchOther), count(c.Rows))
	line("unaccepted", "%s ended timeout, %s error, %s otherwise", count(c.HangTimeout), count(c.HangError), count(c.HangOther))
	p := s.Persists
	line("persists", "%s requests OK (%s documents), %s failed; stored: %s of %s acknowledged documents exactly once with their id, %s of %s failed ones stored (at most once is allowed), %s rows no request made",
		count(c.PersistOK), count(c.PersistDocs), count(c.PersistFailed), count(int64(p.AckedStored)), count(int64(p.Acked)),
		count(int64(p.FailedStored)), count(int64(p.Failed)), count(int64(p.Unrequested)))
	line("sse", "%d readers, %s events, %s reconnects, %s HTTP errors; %d of %d caught up with the last event, %s events missing",
		s.SSE.Readers, count(c.SSEEvents), count(c.SSEReconnects), count(c.SSEHTTPErrors), s.SSE.CaughtUp, s.SSE.Readers, count(int64(s.SSE.Missing)))
	line("bad input", "%s sent, %s answered with a terminal", count(c.BadSent), count(c.BadAnswered))
	if len(s.Reasons) > 0 {
		line("failures", "%s", formatCounts(s.Reasons))
	}
	line("faults", "%d", len(s.Faults))
	for _, f := range s.Faults {
		fmt.Fprintf(w, "  %-14s %s\n", "", faultLine(f))
	}
	sv := s.Server
	line("server", "last sample: goroutines %s, heap %s, rss %s, fds %s, redis conns %s, mysql conns %s",
		count(int64(sv.Goroutines)), sizeOf(sv.HeapInuse), sizeOf(sv.RSS), count(int64(sv.FDs)), conns(sv.RedisConns), conns(sv.MySQLConns))
	line("server ended", "%s; refused %s; commit notifications %s; sse feed lost %s; supervisor events %s; orphaned streams ended %s",
		formatCounts(sv.Ended), formatCounts(sv.Refused), formatCounts(sv.Commits), count(int64(sv.FeedLost)), count(int64(sv.Supervisor)), count(int64(sv.Orphaned)))
	line("requests", "the soak's that Redis delivered: fetch %s, persist %s; the server counted fetch %s, persist %s",
		count(c.FetchRequests), count(c.PersistRequests), count(int64(s.Requests["fetch"])), count(int64(s.Requests["persist"])))
	t := s.Trend
	if t.Judged {
		line("trend", "after warm-up, first window to last: goroutines %.0f → %.0f (%+.1f/min), heap %s → %s (%s/min), rss %s → %s: %s",
			t.GoroutinesFirst, t.GoroutinesLast, t.GoroutinesPerMin, sizeOf(t.HeapFirst), sizeOf(t.HeapLast), sizeOf(t.HeapPerMin),
			sizeOf(t.RSSFirst), sizeOf(t.RSSLast), t.Note)
	} else {
		line("trend", "%s", t.Note)
	}
	id := s.Idle
	line("at rest", "goroutines %.0f before the load, %.0f after (allowance %.0f for connections kept), heap %s → %s; streams open %.0f, sse streams open %.0f, stream actors %d%s",
		id.GoroutinesBefore, id.GoroutinesAfter, id.Allowance, sizeOf(id.HeapBefore), sizeOf(id.HeapAfter), id.StreamsOpen, id.SSEOpen, id.Actors, noteSuffix(id.Note))
	kept := "removed"
	if s.ServerLog.Kept {
		kept = "kept in " + s.ServerLog.Path
	}
	line("server log", "%d warnings, %d errors (%s)", s.ServerLog.Warnings, s.ServerLog.Errors, kept)
	for _, a := range s.ServerLog.Alarms {
		fmt.Fprintf(w, "  %-14s %s\n", "", a)
	}
	if s.ServerExit != "" {
		line("server exit", "%s", s.ServerExit)
	}
	if len(s.ViolationsByKind) == 0 {
		line("invariants", "hold: no row twice, out of order or missing from an \"end\"; one terminal per stream and persist; every acknowledged persist stored once; SSE readers complete; server ready after every fault, no leak")
	} else {
		line("invariants", "BROKEN: %s", formatCounts(s.ViolationsByKind))
		for _, v := range s.Violations {
			fmt.Fprintf(w, "  %-14s [%s] %s: %s\n", "", v.At, v.Kind, v.Detail)
		}
	}
	if s.Passed {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return "; " + note
}

func conns(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}

// count prints n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// sizeOf prints a size in KiB, MiB or GiB.
func sizeOf(n float64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", sign, n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", sign, n/(1<<20))
	}
	return fmt.Sprintf("%s%.0f KiB", sign, n/(1<<10))
}
