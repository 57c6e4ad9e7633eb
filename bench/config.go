package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/eventsource/eventsource/server"
)

// Kind is what a scenario does.
type Kind int

const (
	// KindFetch runs Streams concurrent fetches of Rows rows each.
	KindFetch Kind = iota + 1
	// KindOpen opens Streams fetches, leaves them unaccepted after their
	// first row, measures, then drains them.
	KindOpen
	// KindPersist runs Concurrency clients persisting one document per
	// request for Duration.
	KindPersist
	// KindMix runs a fetch load, Persisters persisting clients and Stalled
	// streams that never accept, all at once.
	KindMix
	// KindInstrumentCost runs the fetch load of Streams×Rows against an
	// instrumented and an uninstrumented in-process server, alternating,
	// Rounds times each.
	KindInstrumentCost
	// KindSSE holds Subscribers SSE streams open on the HTTP gateway and
	// persists Events events at EventRate, measuring commit to delivery.
	KindSSE
	// KindCompare runs one load (Load) against two set-ups side by side
	// (Compare: CompareClaims, CompareReplicas, CompareCluster), or plain
	// persists and safe ones on one server (CompareEventIDs, CompareExpect),
	// in paired rounds; its ratio is the variant's over the base's.
	KindCompare
	// KindFollow holds Streams followed fetches (window Window) of one
	// domain with no events, measures the server while they sit idle, then
	// persists Events events at EventRate, measuring commit to delivery at
	// every follower.
	KindFollow
)

func (k Kind) String() string {
	switch k {
	case KindFetch:
		return "fetch"
	case KindOpen:
		return "open"
	case KindPersist:
		return "persist"
	case KindMix:
		return "mix"
	case KindInstrumentCost:
		return "instrument-cost"
	case KindSSE:
		return "sse"
	case KindCompare:
		return "compare"
	case KindFollow:
		return "follow"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText makes a Kind read as its name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a Kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{KindFetch, KindOpen, KindPersist, KindMix, KindInstrumentCost, KindSSE, KindCompare, KindFollow} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown scenario kind %q: %w", b, ErrConfig)
}

// Spec is one scenario: its shape, and the targets its figures are judged
// against. A zero target is no target.
type Spec struct {
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Description string `json:"description"`

	// Streams, Rows and Window shape fetch, open and mix scenarios; Streams
	// and Window a follow scenario's followers.
	Streams int `json:"streams,omitempty"`
	Rows    int `json:"rows,omitempty"`
	Window  int `json:"window,omitempty"`
	// Driver, when set, drives a fetch scenario's streams whatever
	// --driver says: the wire driver's figure beside the client's, in
	// one run.
	Driver Driver `json:"driver,omitempty"`

	// Concurrency and Duration shape persist scenarios. Unbatched also runs
	// a persist scenario's load against a second in-process server that
	// commits each request on its own (--persist-batch 1): what batching
	// gains.
	Concurrency int           `json:"concurrency,omitempty"`
	Duration    time.Duration `json:"duration_ns,omitempty"`
	Unbatched   bool          `json:"unbatched,omitempty"`

	// Persisters and Stalled add to a mix: persisting clients that run while
	// the streams do, and streams that take one row and never accept it.
	Persisters int `json:"persisters,omitempty"`
	Stalled    int `json:"stalled,omitempty"`

	// ProbeRows is the length of the single stream an open scenario runs
	// while its streams sit unaccepted (0: none).
	ProbeRows int `json:"probe_rows,omitempty"`

	// Rounds is how many times an instrument-cost scenario runs each of its
	// legs, alternating instrumented and not (0: 2), and how many times a
	// fetch or persist scenario runs its baseline and its server phase,
	// alternating: its figure is then the round of median ratio (0: 1). A phase of a
	// fraction of a second swings with whatever else the machine does; the
	// median of paired rounds does not.
	Rounds int `json:"rounds,omitempty"`
	// MaxCost is the most an instrument-cost scenario's cost, 1 − mean
	// rows/s instrumented over mean rows/s uninstrumented, may be.
	MaxCost float64 `json:"max_cost,omitempty"`

	// Subscribers, Events and EventRate (events/s) shape an sse scenario,
	// Events and EventRate a follow scenario too; MaxP99 bounds their
	// commit-to-delivery p99.
	Subscribers int           `json:"subscribers,omitempty"`
	Events      int           `json:"events,omitempty"`
	EventRate   float64       `json:"event_rate,omitempty"`
	MaxP99      time.Duration `json:"max_p99_ns,omitempty"`

	// Load ("fetch" or "persist") and Compare shape a compare scenario.
	Load    string `json:"load,omitempty"`
	Compare string `json:"compare,omitempty"`

	// MinRatio is the least ratio of the main figure (rows/s or persists/s)
	// to the baseline of this scenario.
	MinRatio float64 `json:"min_ratio,omitempty"`
	// RatioOf names another scenario whose rows/s is the baseline instead,
	// with MinRatioOf the least ratio to it (window 32 against window 1).
	RatioOf    string  `json:"ratio_of,omitempty"`
	MinRatioOf float64 `json:"min_ratio_of,omitempty"`
	// MaxP50Pongs bounds a persist scenario's p50: at most the raw
	// INSERT's p50 plus this many times the p50 of a single-stream
	// ping-pong (one Redis round trip each way), measured with it.
	MaxP50Pongs float64 `json:"max_p50_pongs,omitempty"`
	// MaxCPUPerPersist bounds the CPU microseconds per persist of the
	// bench process: the in-process server and the client together.
	MaxCPUPerPersist float64 `json:"max_cpu_per_persist_us,omitempty"`
	// MaxRSSPerStream (bytes) and MaxMySQLConns bound an open scenario.
	MaxRSSPerStream int64 `json:"max_rss_per_stream,omitempty"`
	MaxMySQLConns   int   `json:"max_mysql_conns,omitempty"`
}

// Sizes scales the default scenarios.
type Sizes struct {
	// SingleRows is the length of the single-stream scenarios.
	SingleRows int
	// OpenStreams is how many streams the open scenario holds.
	OpenStreams int
	// PersistDuration is how long each persist level (and its baseline) runs.
	PersistDuration time.Duration
	// SSESubscribers, SSEEvents and SSERate shape the sse scenario.
	SSESubscribers int
	SSEEvents      int
	SSERate        float64
	// FollowStreams is how many followers the follow scenario holds.
	FollowStreams int
	// Rounds is how many paired rounds the concurrent fetch scenarios
	// (streams-100, streams-1000) and the persist scenarios run.
	Rounds int
}

// DefaultSizes fit the default set in a few minutes on a 2-core machine.
func DefaultSizes() Sizes {
	return Sizes{SingleRows: 30000, OpenStreams: 10000, PersistDuration: 3 * time.Second,
		SSESubscribers: 10000, SSEEvents: 40, SSERate: 2, FollowStreams: 1000, Rounds: 3}
}

// DefaultSpecs is the default scenario set, with the targets of the issue.
func DefaultSpecs(s Sizes) []Spec {
	d := DefaultSizes()
	if s.SingleRows <= 0 {
		s.SingleRows = d.SingleRows
	}
	if s.OpenStreams <= 0 {
		s.OpenStreams = d.OpenStreams
	}
	if s.PersistDuration <= 0 {
		s.PersistDuration = d.PersistDuration
	}
	if s.SSESubscribers <= 0 {
		s.SSESubscribers = d.SSESubscribers
	}
	if s.SSEEvents <= 0 {
		s.SSEEvents = d.SSEEvents
	}
	if s.SSERate <= 0 {
		s.SSERate = d.SSERate
	}
	if s.FollowStreams <= 0 {
		s.FollowStreams = d.FollowStreams
	}
	if s.Rounds <= 0 {
		s.Rounds = d.Rounds
	}
	return []Spec{
		{Name: "single-w1", Kind: KindFetch, Streams: 1, Rows: s.SingleRows, Window: 1, MinRatio: 0.95,
			Description: fmt.Sprintf("one stream of %d rows, window 1", s.SingleRows)},
		{Name: "single-w32", Kind: KindFetch, Streams: 1, Rows: s.SingleRows, Window: 32, RatioOf: "single-w1", MinRatioOf: 12,
			Description: fmt.Sprintf("one stream of %d rows, window 32", s.SingleRows)},
		{Name: "streams-100", Kind: KindFetch, Streams: 100, Rows: 200, Window: 1, MinRatio: 0.6, Rounds: s.Rounds,
			Description: fmt.Sprintf("100 concurrent streams of 200 rows, window 1; the median of %d paired rounds", s.Rounds)},
		{Name: "streams-1000", Kind: KindFetch, Streams: 1000, Rows: 100, Window: 1, MinRatio: 0.7, Rounds: s.Rounds,
			Description: fmt.Sprintf("1,000 concurrent streams of 100 rows, window 1; the median of %d paired rounds", s.Rounds)},
		{Name: "wire-streams-1000", Kind: KindFetch, Streams: 1000, Rows: 100, Window: 1, MinRatio: 0.8, Rounds: s.Rounds, Driver: DriverWire,
			Description: fmt.Sprintf("streams-1000 driven by the wire driver whatever --driver says, so the ratio is the server's alone; the median of %d paired rounds", s.Rounds)},
		{Name: "open-10000", Kind: KindOpen, Streams: s.OpenStreams, Rows: 2, Window: 1, ProbeRows: 2000,
			MaxRSSPerStream: 50 * 1000, MaxMySQLConns: 32,
			Description: fmt.Sprintf("%d concurrent streams left unaccepted after their first row, then drained", s.OpenStreams)},
		{Name: "persist-1", Kind: KindPersist, Concurrency: 1, Duration: s.PersistDuration, MaxP50Pongs: 1.5, Unbatched: true, Rounds: s.Rounds,
			Description: fmt.Sprintf("1 client persisting one event per request, the median of %d paired rounds, and a single-stream ping-pong for the Redis round trip; then the same against a server committing each request on its own", s.Rounds)},
		{Name: "persist-8", Kind: KindPersist, Concurrency: 8, Duration: s.PersistDuration, Rounds: s.Rounds,
			Description: fmt.Sprintf("8 clients persisting one event per request, the median of %d paired rounds", s.Rounds)},
		{Name: "persist-64", Kind: KindPersist, Concurrency: 64, Duration: s.PersistDuration, MinRatio: 2.5, MaxCPUPerPersist: 50, Unbatched: true, Rounds: s.Rounds,
			Description: fmt.Sprintf("64 clients persisting one event per request, the median of %d paired rounds; then the same against a server committing each request on its own", s.Rounds)},
		{Name: "mix", Kind: KindMix, Streams: 100, Rows: 200, Window: 1, Persisters: 8, Stalled: 5,
			Description: "100 streams of 200 rows, 8 persisting clients and 5 streams that never accept, at once"},
		{Name: "claims-streams-1000", Kind: KindCompare, Compare: CompareClaims, Load: "fetch", Streams: 1000, Rows: 100, Window: 1, MinRatio: 0.9, Rounds: s.Rounds,
			Description: fmt.Sprintf("streams-1000's load against a server that claims each channel in Redis and the same server with every claim won at once; the median of %d paired rounds", s.Rounds)},
		{Name: "claims-persist-64", Kind: KindCompare, Compare: CompareClaims, Load: "persist", Concurrency: 64, Duration: s.PersistDuration, MinRatio: 0.9, Rounds: s.Rounds,
			Description: fmt.Sprintf("persist-64's load against a server that claims each channel in Redis and the same server with every claim won at once; the median of %d paired rounds", s.Rounds)},
		{Name: "replicas-streams-1000", Kind: KindCompare, Compare: CompareReplicas, Load: "fetch", Streams: 1000, Rows: 100, Window: 1, MinRatio: 0.8, Rounds: s.Rounds,
			Description: fmt.Sprintf("streams-1000's load against three in-process servers acting as one and against one; the median of %d paired rounds", s.Rounds)},
		{Name: "replicas-persist-64", Kind: KindCompare, Compare: CompareReplicas, Load: "persist", Concurrency: 64, Duration: s.PersistDuration, MinRatio: 0.8, Rounds: s.Rounds,
			Description: fmt.Sprintf("persist-64's load against three in-process servers acting as one and against one; the median of %d paired rounds", s.Rounds)},
		{Name: "eventids-persist-64", Kind: KindCompare, Compare: CompareEventIDs, Load: "persist", Concurrency: 64, Duration: s.PersistDuration, MinRatio: 0.7, Rounds: s.Rounds,
			Description: fmt.Sprintf("persist-64's load with an event id on every document against plain persists, on the same server; the median of %d paired rounds", s.Rounds)},
		{Name: "expect-persist-64", Kind: KindCompare, Compare: CompareExpect, Load: "persist", Concurrency: 64, Duration: s.PersistDuration, MinRatio: 0.7, Rounds: s.Rounds,
			Description: fmt.Sprintf("persist-64's load with an expected version on every request (each client on a stream of its own) against plain persists, on the same server; the median of %d paired rounds", s.Rounds)},
		{Name: "cluster-streams-1000", Kind: KindCompare, Compare: CompareCluster, Load: "fetch", Streams: 1000, Rows: 100, Window: 1, Rounds: s.Rounds,
			Description: fmt.Sprintf("streams-1000's load against a server on a three-node Redis Cluster and one on the single Redis; the median of %d paired rounds", s.Rounds)},
		{Name: "cluster-persist-64", Kind: KindCompare, Compare: CompareCluster, Load: "persist", Concurrency: 64, Duration: s.PersistDuration, Rounds: s.Rounds,
			Description: fmt.Sprintf("persist-64's load against a server on a three-node Redis Cluster and one on the single Redis; the median of %d paired rounds", s.Rounds)},
		{Name: "instrument-cost", Kind: KindInstrumentCost, Streams: 1000, Rows: 100, Window: 1, Rounds: 4, MaxCost: 0.05,
			Description: "streams-1000's load against an instrumented and an uninstrumented in-process server, alternating on, off, on, off"},
		{Name: "sse-10000", Kind: KindSSE, Subscribers: s.SSESubscribers, Events: s.SSEEvents, EventRate: s.SSERate, MaxP99: 250 * time.Millisecond,
			Description: fmt.Sprintf("%d SSE subscribers of one domain on the HTTP gateway; %d events persisted over Redis at %g/s; commit to delivery at every subscriber",
				s.SSESubscribers, s.SSEEvents, s.SSERate)},
		{Name: fmt.Sprintf("follow-%d", s.FollowStreams), Kind: KindFollow, Streams: s.FollowStreams, Window: 1, Events: 40, EventRate: 2, MaxP99: 250 * time.Millisecond,
			Description: fmt.Sprintf("%d followed fetches (window 1) of one domain with no events, on %d Redis connections: the server's MySQL connections and RSS while they sit idle; then 40 events persisted at 2/s; commit to delivery at every follower",
				s.FollowStreams, followConns)},
	}
}

// SelectSpecs picks scenarios by name from specs, in the order of specs.
// "all" and "default" select every one.
func SelectSpecs(specs []Spec, names string) ([]Spec, error) {
	names = strings.TrimSpace(names)
	if names == "" || names == "all" || names == "default" {
		return specs, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Spec
	for _, s := range specs {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown scenarios %s (known: %s): %w", strings.Join(unknown, ", "), specNames(specs), ErrConfig)
	}
	return out, nil
}

func specNames(specs []Spec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// ErrConfig marks a configuration the bench cannot run.
var ErrConfig = errors.New("bench configuration")

// External describes a running server to measure instead of an in-process
// one.
type External struct {
	// FetchChannel and PersistChannel are its request channels.
	FetchChannel   string
	PersistChannel string
	// Database holds its default table `event`, where the bench seeds rows
	// (and deletes them afterwards).
	Database string
	// PID is the server's process, for CPU and RSS from /proc (0: none).
	PID int
}

// Config is one bench run.
type Config struct {
	// Scenarios run in order.
	Scenarios []Spec
	// Server configures the in-process server: its MySQL and Redis
	// addresses, pool size, accept timeout. The bench replaces its database,
	// tables, request channels and admin listener with its own.
	Server server.Config
	// External, if set, measures that server instead; Server then only says
	// how to reach MySQL and Redis.
	External *External
	// Logger receives the bench's and the in-process server's logs.
	Logger *slog.Logger
	// Progress shows progress; nil shows none.
	Progress Progress
	// SampleInterval is the step of the timelines (0: 250 ms).
	SampleInterval time.Duration
	// CPUProfileDir, if set, receives <scenario>.pprof: a CPU profile of the
	// bench process over each scenario's server phase (the in-process server
	// and its load; baselines excluded).
	CPUProfileDir string
	// Driver is how streams talk to the server (default DriverClient).
	Driver Driver
	// SubscriberCommand runs an sse scenario's subscribers in a child
	// process (RunSubscriberPool), whose file descriptors are its own: the
	// in-process server holds one per subscriber already. The pool gets
	// --url and --subscribers. Empty: in this process, if it may open
	// enough files.
	SubscriberCommand []string
	// ClientPoolSize is the go-redis pool of the bench's client.Client,
	// which publishes each "accepted" as a blocking PUBLISH (0: go-redis's
	// default of 10 per CPU).
	ClientPoolSize int
}

// has reports whether a scenario of kind k is selected.
func (c *Config) has(k Kind) bool {
	for _, s := range c.Scenarios {
		if s.Kind == k {
			return true
		}
	}
	return false
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Scenarios) == 0 {
		errs = append(errs, errors.New("no scenarios"))
	}
	seen := map[string]bool{}
	for _, s := range c.Scenarios {
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("scenario %q twice", s.Name))
		}
		seen[s.Name] = true
		switch s.Kind {
		case KindFetch, KindOpen, KindMix, KindInstrumentCost:
			if s.Streams <= 0 || s.Rows <= 0 {
				errs = append(errs, fmt.Errorf("scenario %q: streams and rows must be positive", s.Name))
			}
			if s.Kind == KindOpen && s.Rows < 2 {
				errs = append(errs, fmt.Errorf("scenario %q: an open stream needs at least 2 rows to sit unaccepted", s.Name))
			}
		case KindPersist:
			if s.Concurrency <= 0 || s.Duration <= 0 {
				errs = append(errs, fmt.Errorf("scenario %q: concurrency and duration must be positive", s.Name))
			}
		case KindSSE:
			if s.Subscribers <= 0 || s.Events <= 0 || !(s.EventRate > 0) {
				errs = append(errs, fmt.Errorf("scenario %q: subscribers, events and event rate must be positive", s.Name))
			}
		case KindFollow:
			if s.Streams <= 0 || s.Events <= 0 || !(s.EventRate > 0) || s.Window < 0 {
				errs = append(errs, fmt.Errorf("scenario %q: streams, events and event rate must be positive, window not negative", s.Name))
			}
		case KindCompare:
			switch {
			case s.Compare != CompareClaims && s.Compare != CompareReplicas && s.Compare != CompareCluster && !comparesWrites(s.Compare):
				errs = append(errs, fmt.Errorf("scenario %q: compare must be claims, replicas, cluster, event-ids or expect", s.Name))
			case comparesWrites(s.Compare) && s.Load != "persist":
				errs = append(errs, fmt.Errorf("scenario %q: compare %s needs the persist load", s.Name, s.Compare))
			case s.Load == "fetch" && (s.Streams <= 0 || s.Rows <= 0):
				errs = append(errs, fmt.Errorf("scenario %q: streams and rows must be positive", s.Name))
			case s.Load == "persist" && (s.Concurrency <= 0 || s.Duration <= 0):
				errs = append(errs, fmt.Errorf("scenario %q: concurrency and duration must be positive", s.Name))
			case s.Load != "fetch" && s.Load != "persist":
				errs = append(errs, fmt.Errorf("scenario %q: load must be fetch or persist", s.Name))
			}
		default:
			errs = append(errs, fmt.Errorf("scenario %q: unknown kind %d", s.Name, int(s.Kind)))
		}
	}
	if c.Driver != "" && c.Driver != DriverClient && c.Driver != DriverWire {
		errs = append(errs, fmt.Errorf("unknown driver %q (client or wire)", c.Driver))
	}
	if len(c.Server.Redis.Cluster) > 0 {
		for _, s := range c.Scenarios {
			if s.Kind == KindCompare && s.Compare == CompareCluster {
				errs = append(errs, fmt.Errorf("scenario %q compares a cluster it starts with the single Redis; this run is on a cluster already", s.Name))
			}
		}
	}
	if e := c.External; e != nil {
		if e.FetchChannel == "" || e.PersistChannel == "" || e.Database == "" {
			errs = append(errs, errors.New("an external server needs its fetch and persist channels and its database"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
