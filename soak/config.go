package soak

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/eventsource/eventsource/mysqlstore"
)

// Fault is one kind of injected fault.
type Fault string

const (
	// FaultRedisSubscriber kills the server's subscriber connection.
	FaultRedisSubscriber Fault = "redis-sub"
	// FaultRedisPublishers kills the server's other Redis connections: its
	// publishing pipelines and its go-redis pool.
	FaultRedisPublishers Fault = "redis-pub"
	// FaultMySQL kills one of the server's MariaDB connections, a busy one
	// when there is one.
	FaultMySQL Fault = "mysql"
	// FaultBadInput publishes a burst of malformed requests.
	FaultBadInput Fault = "bad-input"
)

// AllFaults is the default round robin.
var AllFaults = []Fault{FaultRedisSubscriber, FaultMySQL, FaultBadInput, FaultRedisPublishers}

// ParseFaults reads a comma-separated list of faults; "none" or "" is none,
// "all" is AllFaults.
func ParseFaults(s string) ([]Fault, error) {
	switch s = strings.TrimSpace(s); s {
	case "", "none":
		return nil, nil
	case "all":
		return slices.Clone(AllFaults), nil
	}
	var out []Fault
	for name := range strings.SplitSeq(s, ",") {
		f := Fault(strings.TrimSpace(name))
		if !slices.Contains(AllFaults, f) {
			return nil, fmt.Errorf("unknown fault %q (want %s, all or none)", name, joinFaults(AllFaults))
		}
		out = append(out, f)
	}
	return out, nil
}

func joinFaults(fs []Fault) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}

// Config is one soak. A zero field takes its value from DefaultConfig
// unless it says otherwise.
type Config struct {
	// Binary is the eventsource program, run as migrate and serve.
	// Required.
	Binary string
	// MySQL is where MariaDB is; its Database is ignored: the soak creates
	// a database of its own and drops it at the end.
	MySQL mysqlstore.Config
	// RedisAddr (host:port), RedisPassword and RedisDB are the Redis the
	// server and the soak use. A Redis Cluster is not supported: faults
	// need CLIENT LIST of the server's one Redis.
	RedisAddr     string
	RedisPassword string
	RedisDB       int

	// Duration is how long the load runs (default 10m).
	Duration time.Duration
	// ReportEvery is the interval of the report lines (default 1m).
	ReportEvery time.Duration
	// SampleEvery is how often the server's metrics and connections are
	// read (default ReportEvery/6, between 1 s and 10 s).
	SampleEvery time.Duration
	// Warmup is left out of the trend of goroutines and heap (default
	// ReportEvery, at most a fifth of Duration).
	Warmup time.Duration

	// AcceptTimeout is the server's --accept-timeout (default 5s).
	AcceptTimeout time.Duration
	// Stall is how long a call may hear nothing before it counts as a
	// stream without a terminal (default AcceptTimeout + 35s).
	Stall time.Duration
	// Settle is how long, after a call ended, the tap may still catch up
	// before its record is checked, and how long the soak waits for late
	// messages at the end (default 5s).
	Settle time.Duration

	// FetchStreams is how many fetch streams run at once, back to back
	// (default 50; negative: none).
	FetchStreams int
	// MinRows and MaxRows bound the rows of each seeded pid (default 200
	// and 2000); Pids is how many are seeded (default 40).
	MinRows, MaxRows, Pids int
	// Windows are the windows streams take in turn (default 1, 8, 32).
	Windows []int
	// RowRate paces the fetch streams, rows per second across all of
	// them (default 8000; negative: unpaced).
	RowRate float64

	// Persisters is how many clients persist, one call at a time each
	// (default 8; negative: none). PersistRate paces them, persists per second across all
	// (default 100; negative: unpaced).
	Persisters  int
	PersistRate float64

	// SSEReaders is how many GET /events readers of the soak's domain
	// there are (default 100; negative: none).
	SSEReaders int
	// Hangers is how many streams that never accept run at once, back to
	// back (default 4; negative: none).
	Hangers int

	// FaultEvery is the interval between faults (default 30s; negative:
	// none). Faults is the round robin (default AllFaults; empty after
	// ParseFaults("none"): set FaultEvery negative instead).
	FaultEvery time.Duration
	Faults     []Fault

	// ServerArgs are more flags for serve.
	ServerArgs []string
	// ServerLogLevel is serve's --log-level (default warn: at info it logs
	// a line per stream).
	ServerLogLevel string
	// KeepLog keeps the server's log file even when the soak passes.
	KeepLog bool

	// Out receives the report: a block per interval and the summary, as
	// text, or as JSON lines when JSON is set. Nil: io.Discard.
	Out  io.Writer
	JSON bool
	// Logger gets progress notes (nil: none).
	Logger *slog.Logger
}

// DefaultConfig is a load for a 2-core machine: busy, not saturated.
func DefaultConfig() Config {
	return Config{
		MySQL:          mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4"},
		RedisAddr:      "127.0.0.1:6379",
		Duration:       10 * time.Minute,
		ReportEvery:    time.Minute,
		AcceptTimeout:  5 * time.Second,
		Settle:         5 * time.Second,
		FetchStreams:   50,
		MinRows:        200,
		MaxRows:        2000,
		Pids:           40,
		Windows:        []int{1, 8, 32},
		RowRate:        8000,
		Persisters:     8,
		PersistRate:    100,
		SSEReaders:     100,
		Hangers:        4,
		FaultEvery:     30 * time.Second,
		Faults:         slices.Clone(AllFaults),
		ServerLogLevel: "warn",
	}
}

// withDefaults fills zero fields and derived ones.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.Duration, d.Duration)
	setDur(&c.ReportEvery, d.ReportEvery)
	setDur(&c.AcceptTimeout, d.AcceptTimeout)
	setDur(&c.Settle, d.Settle)
	setDur(&c.FaultEvery, d.FaultEvery)
	setDur(&c.Stall, c.AcceptTimeout+35*time.Second)
	setDur(&c.SampleEvery, min(max(c.ReportEvery/6, time.Second), 10*time.Second))
	setDur(&c.Warmup, min(c.ReportEvery, c.Duration/5))
	setInt(&c.FetchStreams, d.FetchStreams)
	setInt(&c.MinRows, d.MinRows)
	setInt(&c.MaxRows, d.MaxRows)
	setInt(&c.Pids, d.Pids)
	setInt(&c.Persisters, d.Persisters)
	setInt(&c.SSEReaders, d.SSEReaders)
	setInt(&c.Hangers, d.Hangers)
	if c.RowRate == 0 {
		c.RowRate = d.RowRate
	}
	if c.PersistRate == 0 {
		c.PersistRate = d.PersistRate
	}
	if len(c.Windows) == 0 {
		c.Windows = d.Windows
	}
	if c.Faults == nil {
		c.Faults = d.Faults
	}
	if c.ServerLogLevel == "" {
		c.ServerLogLevel = d.ServerLogLevel
	}
	if c.MySQL.Host == "" {
		c.MySQL = d.MySQL
	}
	if c.RedisAddr == "" {
		c.RedisAddr = d.RedisAddr
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("no eventsource program to run (Binary)"))
	}
	if c.Duration <= 0 || c.ReportEvery <= 0 || c.SampleEvery <= 0 || c.AcceptTimeout <= 0 || c.Stall <= 0 || c.Settle <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.Stall <= c.AcceptTimeout {
		errs = append(errs, fmt.Errorf("stall %s must exceed the accept timeout %s", c.Stall, c.AcceptTimeout))
	}
	if c.MinRows <= 0 || c.MaxRows < c.MinRows {
		errs = append(errs, fmt.Errorf("rows per pid %d to %d: want 0 < min ≤ max", c.MinRows, c.MaxRows))
	}
	if c.Pids <= 0 {
		errs = append(errs, errors.New("pids must be positive"))
	}
	for _, w := range c.Windows {
		if w <= 0 || w > 1024 {
			errs = append(errs, fmt.Errorf("window %d: want 1 to 1024", w))
		}
	}
	if c.FaultEvery > 0 && len(c.Faults) == 0 {
		errs = append(errs, errors.New("faults every interval but no fault kinds"))
	}
	return errors.Join(errs...)
}
