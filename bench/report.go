package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run: what was measured, and the figures
// judged against their targets.
type Report struct {
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"`
	Host      HostInfo          `json:"host"`
	Server    ServerInfo        `json:"server"`
	Scenarios []*ScenarioResult `json:"scenarios"`
	Figures   []Figure          `json:"figures"`
}

// HostInfo describes the machine.
type HostInfo struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
}

// ServerInfo says what was measured.
type ServerInfo struct {
	// Mode is "in-process" or "external".
	Mode string `json:"mode"`
	// PID is the process whose CPU and RSS are the server's; Note says what
	// else they include.
	PID            int    `json:"pid,omitempty"`
	Note           string `json:"note"`
	Database       string `json:"database"`
	MySQLPool      int    `json:"mysql_pool,omitempty"`
	AcceptTimeout  string `json:"accept_timeout,omitempty"`
	FetchChannel   string `json:"fetch_channel"`
	PersistChannel string `json:"persist_channel"`
	RedisPID       int    `json:"redis_pid,omitempty"`
	// RedisCluster are the seed nodes when the run is on a Redis Cluster
	// (then no Redis CPU is watched: it is spread over the nodes).
	RedisCluster []string `json:"redis_cluster,omitempty"`
	MySQLPID     int      `json:"mysql_pid,omitempty"`
	// ClientPool is the go-redis pool size of the bench's client.
	ClientPool int `json:"client_pool"`
	// Driver is how the streams talked to the server.
	Driver Driver `json:"driver"`
}

// ScenarioResult is one scenario's measurements.
type ScenarioResult struct {
	Spec Spec `json:"spec"`
	// Server is the phase against the server; Baseline the ping-pong or raw
	// INSERTs of the same shape.
	Server   *Measure `json:"server,omitempty"`
	Baseline *Measure `json:"baseline,omitempty"`
	// Unbatched is a persist scenario's load against a server committing
	// each request on its own, when the spec asks for it.
	Unbatched *Measure `json:"unbatched,omitempty"`
	// PingPong is the single-stream ping-pong a persist scenario with
	// MaxP50Pongs measures its latency budget with.
	PingPong *Measure     `json:"ping_pong,omitempty"`
	Open     *OpenStreams `json:"open,omitempty"`
	Stalled  *Stalled     `json:"stalled,omitempty"`
	// Legs and Instrument are an instrument-cost scenario's phases, in the
	// order run, and its sums.
	Legs       []*Measure      `json:"legs,omitempty"`
	Instrument *InstrumentCost `json:"instrument,omitempty"`
	// SSE is an sse scenario's commit-to-delivery measure.
	SSE *PoolSummary `json:"sse,omitempty"`
	// Follow is a follow scenario's idle and commit-to-delivery measures.
	Follow *FollowSummary `json:"follow,omitempty"`
	// Rounds are a fetch or persist scenario's paired rounds, in the order
	// run, when it ran more than one; Server and Baseline are then the
	// median round's.
	Rounds []Round `json:"rounds,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Round is one paired round of a fetch scenario (rows/s) or of a persist
// scenario (persists/s).
type Round struct {
	BaselineRowsPerSec     float64 `json:"baseline_rows_per_sec,omitempty"`
	RowsPerSec             float64 `json:"rows_per_sec,omitempty"`
	BaselinePersistsPerSec float64 `json:"baseline_persists_per_sec,omitempty"`
	PersistsPerSec         float64 `json:"persists_per_sec,omitempty"`
	Ratio                  float64 `json:"ratio"`
}

// Measure is one measured phase.
type Measure struct {
	Label          string  `json:"label"`
	Rows           int64   `json:"rows"`
	Persists       int64   `json:"persists"`
	Seconds        float64 `json:"seconds"`
	RowsPerSec     float64 `json:"rows_per_sec"`
	PersistsPerSec float64 `json:"persists_per_sec"`
	// Latency is the per-row handshake: from a row's arrival to the next
	// row's arrival after accepting it.
	Latency        *Latency `json:"latency,omitempty"`
	PersistLatency *Latency `json:"persist_latency,omitempty"`
	// Processes are the server (first), Redis and MySQL, where /proc shows
	// them.
	Processes []ProcUsage `json:"processes,omitempty"`
	// MySQLConnsMax and MySQLInUseMax are the server's MySQL connections,
	// open and busy, at most over the phase (nil: unknown).
	MySQLConnsMax *int     `json:"mysql_conns_max,omitempty"`
	MySQLInUseMax *int     `json:"mysql_in_use_max,omitempty"`
	Errors        int64    `json:"errors"`
	ErrorSamples  []string `json:"error_samples,omitempty"`
	Timeline      []Sample `json:"timeline"`
}

// Latency is a distribution summary, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// ProcUsage is one process over a phase.
type ProcUsage struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Cores is CPU seconds per second of the phase.
	Cores float64 `json:"cores"`
	// CPUPerRow is CPU microseconds per row (or per persist).
	CPUPerRow float64 `json:"cpu_us_per_item"`
	RSSStart  int64   `json:"rss_start"`
	RSSPeak   int64   `json:"rss_peak"`
	RSSEnd    int64   `json:"rss_end"`
}

// Sample is one point of a timeline: rates and latency over the interval
// before T, the server's CPU (cores) and RSS at T.
type Sample struct {
	T              float64 `json:"t"`
	RowsPerSec     float64 `json:"rows_per_sec"`
	PersistsPerSec float64 `json:"persists_per_sec"`
	P50            float64 `json:"p50_us,omitempty"`
	P99            float64 `json:"p99_us,omitempty"`
	PersistP50     float64 `json:"persist_p50_us,omitempty"`
	PersistP99     float64 `json:"persist_p99_us,omitempty"`
	CPU            float64 `json:"cpu,omitempty"`
	RSS            int64   `json:"rss,omitempty"`
	MySQLConns     int     `json:"mysql_conns"`
	MySQLInUse     int     `json:"mysql_in_use"`
}

// OpenStreams is what an open scenario measured while its streams sat
// unaccepted.
type OpenStreams struct {
	Streams     int     `json:"streams"`
	OpenSeconds float64 `json:"open_seconds"`
	// OpenedAt and ReleasedAt are seconds into the phase's timeline.
	OpenedAt   float64 `json:"opened_at"`
	ReleasedAt float64 `json:"released_at"`
	// RSS of the server process before the streams, with all of them open,
	// and with all open after a GC that returns free memory to the OS (only
	// in-process); per stream is the growth divided by the streams.
	RSSBefore           int64   `json:"rss_before"`
	RSSOpen             int64   `json:"rss_open"`
	RSSPerStream        float64 `json:"rss_per_stream"`
	RSSOpenSettled      int64   `json:"rss_open_settled,omitempty"`
	RSSPerStreamSettled float64 `json:"rss_per_stream_settled,omitempty"`
	// MySQLConnsMax is the server's open MySQL connections at most, over
	// the whole scenario; MySQLInUseWhileOpen its busy ones while the
	// streams sat; ThreadsConnectedDelta MySQL's Threads_connected then,
	// less before the scenario (anyone's connections).
	MySQLConnsMax         int `json:"mysql_conns_max"`
	MySQLInUseWhileOpen   int `json:"mysql_in_use_while_open"`
	ThreadsConnectedDelta int `json:"threads_connected_delta"`
	// The probe is one stream run while the others sit; ProbeVsSingle its
	// rows/s over single-w1's, when that ran.
	ProbeRows       int64    `json:"probe_rows"`
	ProbeErrors     int64    `json:"probe_errors"`
	ProbeRowsPerSec float64  `json:"probe_rows_per_sec"`
	ProbeLatency    *Latency `json:"probe_latency,omitempty"`
	ProbeVsSingle   float64  `json:"probe_vs_single,omitempty"`
	DrainSeconds    float64  `json:"drain_seconds"`
	DrainRowsPerSec float64  `json:"drain_rows_per_sec"`
}

// Stalled is what became of a mix's streams that never accepted.
type Stalled struct {
	Streams int   `json:"streams"`
	Errors  int64 `json:"errors"`
}

// Figure is one judged number: its value, its baseline and their ratio,
// and the target.
type Figure struct {
	Scenario     string   `json:"scenario"`
	Name         string   `json:"name"`
	Value        float64  `json:"value"`
	Unit         string   `json:"unit"`
	Baseline     *float64 `json:"baseline,omitempty"`
	BaselineName string   `json:"baseline_name,omitempty"`
	Ratio        *float64 `json:"ratio,omitempty"`
	Target       string   `json:"target,omitempty"`
	// Met is nil when the figure has no target.
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// judge computes the figures from the scenarios.
func (r *Report) judge() {
	byName := map[string]*ScenarioResult{}
	for _, s := range r.Scenarios {
		byName[s.Spec.Name] = s
	}
	r.Figures = nil
	for _, s := range r.Scenarios {
		r.Figures = append(r.Figures, s.figures(byName)...)
	}
}

// persistLatencyFigure judges a persist's p50 against its budget: the raw
// INSERT's p50 plus MaxP50Pongs single-stream ping-pong p50s.
func (s *ScenarioResult) persistLatencyFigure(note string) Figure {
	spec := s.Spec
	f := Figure{Scenario: spec.Name, Name: "persist p50", Unit: "µs", Note: note,
		Target: fmt.Sprintf("≤ INSERT p50 + %g× ping-pong p50", spec.MaxP50Pongs)}
	var insert, pong float64
	if s.Server != nil && s.Server.PersistLatency != nil {
		f.Value = s.Server.PersistLatency.P50
	}
	if s.Baseline != nil && s.Baseline.PersistLatency != nil {
		insert = s.Baseline.PersistLatency.P50
	}
	if s.PingPong != nil && s.PingPong.Latency != nil {
		pong = s.PingPong.Latency.P50
	}
	budget := insert + spec.MaxP50Pongs*pong
	f.Baseline, f.BaselineName = ptr(budget), fmt.Sprintf("INSERT p50 %.0fµs + %g× ping-pong p50 %.0fµs", insert, spec.MaxP50Pongs, pong)
	if budget > 0 {
		f.Ratio = ptr(f.Value / budget)
	}
	f.Met = ptr(f.Value > 0 && insert > 0 && pong > 0 && f.Value <= budget && note == "")
	return f
}

// noteRounds tells in f's note the ratio of every paired round, when the
// scenario ran more than one and f is the median round's.
func (s *ScenarioResult) noteRounds(f *Figure) {
	if len(s.Rounds) < 2 {
		return
	}
	ratios := make([]string, len(s.Rounds))
	for i, r := range s.Rounds {
		ratios[i] = fmt.Sprintf("%.2f", r.Ratio)
	}
	f.Note = strings.TrimPrefix(f.Note+fmt.Sprintf("; the median of %d rounds, whose ratios were %s", len(s.Rounds), strings.Join(ratios, ", ")), "; ")
}

func (s *ScenarioResult) figures(byName map[string]*ScenarioResult) []Figure {
	spec := s.Spec
	var out []Figure
	note := ""
	if s.Error != "" {
		note = "failed: " + s.Error
	} else if s.Server != nil && s.Server.Errors > 0 {
		note = fmt.Sprintf("%d errors, e.g. %s", s.Server.Errors, strings.Join(s.Server.ErrorSamples[:min(1, len(s.Server.ErrorSamples))], ""))
	}
	ratio := func(f *Figure, base float64, name string, min float64, target string) {
		f.Baseline, f.BaselineName = ptr(base), name
		if base > 0 {
			f.Ratio = ptr(f.Value / base)
		}
		if min > 0 {
			f.Target = target
			f.Met = ptr(f.Ratio != nil && *f.Ratio >= min && note == "")
		}
	}
	switch spec.Kind {
	case KindFetch, KindMix:
		f := Figure{Scenario: spec.Name, Name: "rows/s", Unit: "rows/s", Note: note}
		if s.Server != nil {
			f.Value = s.Server.RowsPerSec
		}
		base := 0.0
		if s.Baseline != nil {
			base = s.Baseline.RowsPerSec
		}
		ppName := fmt.Sprintf("ping-pong %d×%d w%d", spec.Streams, spec.Rows, max(spec.Window, 1))
		if spec.RatioOf != "" {
			other, otherBase := byName[spec.RatioOf], 0.0
			if other != nil && other.Server != nil {
				otherBase = other.Server.RowsPerSec
			}
			ratio(&f, otherBase, spec.RatioOf+" (eventsource)", spec.MinRatioOf, fmt.Sprintf("≥ %g×", spec.MinRatioOf))
			if other == nil {
				f.Note = strings.TrimPrefix(f.Note+"; "+spec.RatioOf+" did not run", "; ")
			}
			out = append(out, f)
			g := Figure{Scenario: spec.Name, Name: "rows/s vs ping-pong", Value: f.Value, Unit: "rows/s", Note: note}
			ratio(&g, base, ppName, 0, "")
			out = append(out, g)
		} else {
			ratio(&f, base, ppName, spec.MinRatio, fmt.Sprintf("≥ %g×", spec.MinRatio))
			s.noteRounds(&f)
			out = append(out, f)
		}
		if spec.Kind == KindMix && s.Server != nil {
			out = append(out, Figure{Scenario: spec.Name, Name: "persists/s during the mix", Value: s.Server.PersistsPerSec, Unit: "persists/s", Note: note})
		}
	case KindPersist:
		f := Figure{Scenario: spec.Name, Name: "persists/s", Unit: "persists/s", Note: note}
		if s.Server != nil {
			f.Value = s.Server.PersistsPerSec
		}
		base := 0.0
		if s.Baseline != nil {
			base = s.Baseline.PersistsPerSec
		}
		ratio(&f, base, fmt.Sprintf("raw INSERTs ×%d", spec.Concurrency), spec.MinRatio, fmt.Sprintf("≥ %g×", spec.MinRatio))
		s.noteRounds(&f)
		out = append(out, f)
		if spec.MaxP50Pongs > 0 {
			out = append(out, s.persistLatencyFigure(note))
		}
		if spec.MaxCPUPerPersist > 0 {
			c := Figure{Scenario: spec.Name, Name: "CPU per persist, server and client", Unit: "µs", Note: note,
				Target: fmt.Sprintf("≤ %g µs", spec.MaxCPUPerPersist)}
			if s.Server != nil && len(s.Server.Processes) > 0 {
				c.Value = s.Server.Processes[0].CPUPerRow
			}
			c.Met = ptr(c.Value > 0 && c.Value <= spec.MaxCPUPerPersist && note == "")
			out = append(out, c)
		}
		if spec.Unbatched {
			u := Figure{Scenario: spec.Name, Name: "persists/s vs unbatched", Value: f.Value, Unit: "persists/s", Note: note}
			if s.Unbatched != nil {
				ratio(&u, s.Unbatched.PersistsPerSec, "eventsource, one at a time (--persist-batch 1)", 0, "")
			} else {
				u.Note = strings.TrimPrefix(u.Note+"; needs the in-process server", "; ")
			}
			out = append(out, u)
		}
	case KindInstrumentCost:
		out = append(out, s.instrumentFigures(note)...)
	case KindCompare:
		f := Figure{Scenario: spec.Name, Name: "rows/s", Unit: "rows/s", Note: note}
		if spec.persists() {
			f.Name, f.Unit = "persists/s", "persists/s"
		}
		base := 0.0
		if s.Server != nil {
			f.Value = mainFigure(spec, s.Server)
		}
		if s.Baseline != nil {
			base = mainFigure(spec, s.Baseline)
		}
		baseName := map[string]string{
			CompareClaims:   "the same server, claims off",
			CompareReplicas: "one server",
			CompareCluster:  "one server on the single Redis",
			CompareEventIDs: "plain persists",
			CompareExpect:   "plain persists",
		}[spec.Compare]
		f.Name += ", " + map[string]string{
			CompareClaims: "claims on", CompareReplicas: "three servers", CompareCluster: "on a 3-node Redis Cluster",
			CompareEventIDs: "an event id on every document", CompareExpect: "an expected version on every request",
		}[spec.Compare]
		ratio(&f, base, baseName, spec.MinRatio, fmt.Sprintf("≥ %g×", spec.MinRatio))
		s.noteRounds(&f)
		out = append(out, f)
	case KindSSE:
		out = append(out, s.sseFigures(note)...)
	case KindFollow:
		out = append(out, s.followFigures(note)...)
	case KindOpen:
		o := s.Open
		if o == nil {
			o = &OpenStreams{}
		}
		rss := Figure{Scenario: spec.Name, Name: "RSS per open stream", Value: o.RSSPerStream / 1000, Unit: "KB", Note: note}
		if o.RSSOpenSettled > 0 {
			rss.Note = strings.TrimPrefix(rss.Note+fmt.Sprintf("; %.1f KB after a GC", o.RSSPerStreamSettled/1000), "; ")
		}
		if spec.MaxRSSPerStream > 0 {
			rss.Target = fmt.Sprintf("≤ %g KB", float64(spec.MaxRSSPerStream)/1000)
			rss.Met = ptr(o.RSSOpen > 0 && o.RSSPerStream <= float64(spec.MaxRSSPerStream) && note == "")
		}
		conns := Figure{Scenario: spec.Name, Name: "MySQL connections, max", Value: float64(o.MySQLConnsMax), Unit: "conns", Note: note}
		conns.Note = strings.TrimPrefix(conns.Note+fmt.Sprintf("; %d busy while open, Threads_connected +%d", o.MySQLInUseWhileOpen, o.ThreadsConnectedDelta), "; ")
		if spec.MaxMySQLConns > 0 {
			conns.Target = fmt.Sprintf("≤ %d", spec.MaxMySQLConns)
			conns.Met = ptr(o.MySQLConnsMax <= spec.MaxMySQLConns && o.OpenSeconds > 0 && note == "")
		}
		out = append(out, rss, conns)
		if o.ProbeRows > 0 {
			p := Figure{Scenario: spec.Name, Name: "probe rows/s while open", Value: o.ProbeRowsPerSec, Unit: "rows/s"}
			if w1 := byName["single-w1"]; w1 != nil && w1.Server != nil {
				ratio(&p, w1.Server.RowsPerSec, "single-w1 (eventsource)", 0, "")
			}
			out = append(out, p)
		}
		out = append(out, Figure{Scenario: spec.Name, Name: "drain rows/s", Value: o.DrainRowsPerSec, Unit: "rows/s"})
	}
	return out
}

// WriteJSON writes the report as one JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

// WriteText writes the figures, then latency and resources, as tables.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "eventsource bench, %s, %.0fs, %d CPUs, %s\n", r.Started.Format(time.RFC3339), r.Seconds, r.Host.CPUs, r.Host.GoVersion)
	fmt.Fprintf(&b, "server: %s", r.Server.Mode)
	if r.Server.PID > 0 {
		fmt.Fprintf(&b, " (pid %d)", r.Server.PID)
	}
	if r.Server.MySQLPool > 0 {
		fmt.Fprintf(&b, ", MySQL pool %d", r.Server.MySQLPool)
	}
	if len(r.Server.RedisCluster) > 0 {
		fmt.Fprintf(&b, ", on the Redis Cluster of %s (no Redis CPU watched)", strings.Join(r.Server.RedisCluster, ","))
	}
	fmt.Fprintf(&b, ", database %s, streams driven by %s; %s\n\n", r.Server.Database, r.Server.Driver, r.Server.Note)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\tbaseline\t\tratio\ttarget\tmet\t")
	for _, f := range r.Figures {
		base, bname, ratio := "", "", ""
		if f.Baseline != nil {
			base, bname = num(*f.Baseline), f.BaselineName
		}
		if f.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		met := "-"
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\t\n", f.Scenario, f.Name, num(f.Value), f.Unit, base, bname, ratio, orDash(f.Target), met)
	}
	tw.Flush()
	for _, f := range r.Figures {
		if f.Note != "" {
			fmt.Fprintf(&b, "  %s, %s: %s\n", f.Scenario, f.Name, f.Note)
		}
	}

	b.WriteString("\nlatency (per-row handshake, or per persist): eventsource | baseline\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tp50\tp99\tp99.9\tmax\t|\tp50\tp99\tp99.9\tmax\t")
	for _, s := range r.Scenarios {
		srv, base := s.Server.latency(), s.Baseline.latency()
		if srv == nil && base == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t|\t%s\t\n", s.Spec.Name, latCells(srv), latCells(base))
	}
	tw.Flush()

	b.WriteString("\nresources of the eventsource phase, then of the baseline: CPU cores (µs CPU per row or persist)")
	b.WriteString("; RSS peak; the server's MySQL connections max (busy max)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tseconds\tserver CPU\tredis CPU\tmysql CPU\tserver RSS peak\tmysql conns\terrors\t|\tbaseline: bench CPU\tredis CPU\tmysql CPU\t")
	for _, s := range r.Scenarios {
		m := s.Server
		if m == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\t\n", s.Spec.Name, s.Error)
			continue
		}
		cells, rss := cpuCells(m)
		base, _ := cpuCells(s.Baseline)
		conns := "-"
		if m.MySQLConnsMax != nil {
			conns = fmt.Sprintf("%d (%d)", *m.MySQLConnsMax, *m.MySQLInUseMax)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t|\t%s\t%s\t%s\t\n", s.Spec.Name, m.Seconds,
			orDash(cells["server"]), orDash(cells["redis"]), orDash(cells["mysql"]), rss, conns, m.Errors,
			orDash(base["server"]), orDash(base["redis"]), orDash(base["mysql"]))
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if s.Error != "" {
			fmt.Fprintf(&b, "\n%s failed: %s", s.Spec.Name, s.Error)
		}
		for _, m := range []*Measure{s.Baseline, s.Server} {
			if m != nil && len(m.ErrorSamples) > 0 {
				fmt.Fprintf(&b, "\n%s: %d errors, first: %s", m.Label, m.Errors, m.ErrorSamples[0])
			}
		}
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// cpuCells formats each process's cores and CPU per item, keyed server
// (the first), redis and mysql, and the first's RSS peak.
func cpuCells(m *Measure) (map[string]string, string) {
	cells, rss := map[string]string{}, "-"
	if m == nil {
		return cells, rss
	}
	for i, p := range m.Processes {
		key := p.Name
		if i == 0 {
			key = "server"
			rss = mib(p.RSSPeak)
		}
		cells[key] = fmt.Sprintf("%.2f (%.0fµs)", p.Cores, p.CPUPerRow)
	}
	return cells, rss
}

func (m *Measure) latency() *Latency {
	if m == nil {
		return nil
	}
	if m.Latency != nil {
		return m.Latency
	}
	return m.PersistLatency
}

func latCells(l *Latency) string {
	if l == nil {
		return "-\t-\t-\t-"
	}
	return strings.Join([]string{durMicros(l.P50), durMicros(l.P99), durMicros(l.P999), durMicros(l.Max)}, "\t")
}

func (m *Measure) oneLine() string {
	var parts []string
	if m.Rows > 0 {
		parts = append(parts, fmt.Sprintf("%s rows in %.2fs, %s rows/s", num(float64(m.Rows)), m.Seconds, num(m.RowsPerSec)))
	}
	if m.Persists > 0 {
		parts = append(parts, fmt.Sprintf("%s persists in %.2fs, %s persists/s", num(float64(m.Persists)), m.Seconds, num(m.PersistsPerSec)))
	}
	if l := m.Latency; l != nil {
		parts = append(parts, fmt.Sprintf("row p50 %s p99 %s p99.9 %s", durMicros(l.P50), durMicros(l.P99), durMicros(l.P999)))
	}
	if l := m.PersistLatency; l != nil {
		parts = append(parts, fmt.Sprintf("persist p50 %s p99 %s", durMicros(l.P50), durMicros(l.P99)))
	}
	if m.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d errors", m.Errors))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%.2fs", m.Seconds)
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats with thousands separators, and 3 significant digits below
// 100.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 && math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', max(0, 2-int(math.Floor(math.Log10(math.Max(math.Abs(v), 0.01))))), 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// human formats a rate compactly: 950, 12.3k, 1.20M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// durMicros formats microseconds as a duration.
func durMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	case us < 10:
		return fmt.Sprintf("%.1fµs", us)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
