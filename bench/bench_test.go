package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/localcluster"
	"github.com/eventsource/eventsource/server"
)

// These tests run against the machine's Redis and MariaDB, like the rest of
// the suite, with tiny scenarios: they check what the bench counts and
// writes, never how fast anything is.

func testLogger() *slog.Logger {
	if os.Getenv("EVENTSOURCE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func tinyConfig(driver Driver, specs ...Spec) Config {
	cfg := server.DefaultConfig()
	cfg.MySQL.PoolSize = 4
	cfg.AcceptTimeout = 30 * time.Second
	cfg.Instrument = false
	return Config{
		Scenarios:      specs,
		Server:         cfg,
		Logger:         testLogger(),
		SampleInterval: 50 * time.Millisecond,
		Driver:         driver,
	}
}

// tinySpecs is one scenario of each kind, small enough for -race.
func tinySpecs() []Spec {
	return []Spec{
		{Name: "fetch-w1", Kind: KindFetch, Streams: 3, Rows: 20, Window: 1, MinRatio: 0.6},
		{Name: "fetch-w4", Kind: KindFetch, Streams: 2, Rows: 15, Window: 4, RatioOf: "fetch-w1", MinRatioOf: 10},
		{Name: "open", Kind: KindOpen, Streams: 20, Rows: 2, ProbeRows: 10, MaxRSSPerStream: 50000, MaxMySQLConns: 32},
		{Name: "persist", Kind: KindPersist, Concurrency: 2, Duration: 300 * time.Millisecond, MinRatio: 1, Unbatched: true},
		{Name: "mix", Kind: KindMix, Streams: 3, Rows: 10, Window: 1, Persisters: 1, Stalled: 1},
	}
}

var tiny struct {
	once   sync.Once
	report *Report
	err    error
}

// tinyReport runs tinySpecs once for the tests that read a report.
func tinyReport(t *testing.T) *Report {
	t.Helper()
	tiny.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tiny.report, tiny.err = Run(ctx, tinyConfig(DriverClient, tinySpecs()...))
	})
	if tiny.err != nil {
		t.Fatalf("Run: %v", tiny.err)
	}
	return tiny.report
}

func scenario(t *testing.T, r *Report, name string) *ScenarioResult {
	t.Helper()
	for _, s := range r.Scenarios {
		if s.Spec.Name == name {
			if s.Error != "" {
				t.Fatalf("scenario %s failed: %s", name, s.Error)
			}
			return s
		}
	}
	t.Fatalf("no scenario %s in the report", name)
	return nil
}

func checkMeasure(t *testing.T, what string, m *Measure, rows int64) {
	t.Helper()
	if m == nil {
		t.Fatalf("%s: no measure", what)
	}
	if m.Errors != 0 {
		t.Errorf("%s: %d errors: %v", what, m.Errors, m.ErrorSamples)
	}
	if m.Rows != rows {
		t.Errorf("%s: %d rows, want %d", what, m.Rows, rows)
	}
	if rows > 0 && !(m.RowsPerSec > 0) {
		t.Errorf("%s: rows/s = %v, want > 0", what, m.RowsPerSec)
	}
}

func TestTinyScenariosAgainstTheInProcessServer(t *testing.T) {
	r := tinyReport(t)
	if r.Server.Mode != "in-process" || !strings.Contains(r.Server.Note, "bench process") {
		t.Errorf("server info %+v: want in-process, saying that CPU and RSS are the bench process's", r.Server)
	}

	w1 := scenario(t, r, "fetch-w1")
	checkMeasure(t, "fetch-w1 server", w1.Server, 3*20)
	checkMeasure(t, "fetch-w1 ping-pong", w1.Baseline, 3*20)
	if w1.Server.Latency == nil || w1.Server.Latency.Count != 3*19 {
		t.Errorf("fetch-w1 latency %+v: want %d handshakes (rows after the first of each stream)", w1.Server.Latency, 3*19)
	}
	w4 := scenario(t, r, "fetch-w4")
	checkMeasure(t, "fetch-w4 server", w4.Server, 2*15)

	open := scenario(t, r, "open")
	checkMeasure(t, "open server", open.Server, 20*2)
	if o := open.Open; o == nil || o.ProbeRows != 10 || o.ProbeErrors != 0 || o.MySQLConnsMax > 4 {
		t.Errorf("open: %+v: want a probe of 10 rows and at most the pool's 4 connections", open.Open)
	}

	p := scenario(t, r, "persist")
	if p.Server == nil || p.Server.Persists == 0 || p.Server.Errors != 0 || !(p.Server.PersistsPerSec > 0) {
		t.Errorf("persist server: %+v", p.Server)
	}
	if p.Baseline == nil || p.Baseline.Persists == 0 || p.Baseline.Errors != 0 {
		t.Errorf("persist baseline: %+v", p.Baseline)
	}
	if p.Unbatched == nil || p.Unbatched.Persists == 0 || p.Unbatched.Errors != 0 {
		t.Errorf("persist against the unbatched server: %+v", p.Unbatched)
	}

	mix := scenario(t, r, "mix")
	checkMeasure(t, "mix server", mix.Server, 3*10)
	if mix.Server.Persists == 0 {
		t.Error("mix: no persists ran alongside the streams")
	}
	if mix.Stalled == nil || mix.Stalled.Errors != 0 {
		t.Errorf("mix stalled streams: %+v", mix.Stalled)
	}

	// Every scenario's main figure is there, with its ratio and target.
	want := map[string]bool{"fetch-w1 rows/s": true, "fetch-w4 rows/s": true, "open RSS per open stream": true,
		"open MySQL connections, max": true, "persist persists/s": true, "persist persists/s vs unbatched": true, "mix rows/s": true}
	for _, f := range r.Figures {
		key := f.Scenario + " " + f.Name
		if !want[key] {
			continue
		}
		delete(want, key)
		if f.Target != "" && f.Met == nil {
			t.Errorf("figure %s has a target and no verdict", key)
		}
		if f.Baseline != nil && *f.Baseline > 0 && f.Ratio == nil {
			t.Errorf("figure %s has a baseline and no ratio", key)
		}
	}
	if len(want) > 0 {
		t.Errorf("figures missing: %v", want)
	}
}

func TestWireDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Run(ctx, tinyConfig(DriverWire,
		Spec{Name: "w1", Kind: KindFetch, Streams: 3, Rows: 12, Window: 1},
		Spec{Name: "w8", Kind: KindFetch, Streams: 2, Rows: 25, Window: 8},
		Spec{Name: "open", Kind: KindOpen, Streams: 5, Rows: 3},
	))
	if err != nil {
		t.Fatal(err)
	}
	if r.Server.Driver != DriverWire {
		t.Errorf("driver %q, want wire", r.Server.Driver)
	}
	checkMeasure(t, "w1", scenario(t, r, "w1").Server, 3*12)
	checkMeasure(t, "w8", scenario(t, r, "w8").Server, 2*25)
	checkMeasure(t, "open", scenario(t, r, "open").Server, 5*3)
}

// A fetch scenario of several rounds reports each, and the median one as
// its figure.
func TestRoundsKeepTheMedian(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		// main is the scenario's main figure in a round and in a phase.
		main      func(Round) (server, baseline float64)
		measure   func(*Measure) float64
		wantCount int64 // rows or persists the median round's server phase counted at least
	}{
		{
			spec:      Spec{Name: "fetch-rounds", Kind: KindFetch, Streams: 2, Rows: 10, Window: 1, Rounds: 3, MinRatio: 0.01},
			main:      func(r Round) (float64, float64) { return r.RowsPerSec, r.BaselineRowsPerSec },
			measure:   func(m *Measure) float64 { return m.RowsPerSec },
			wantCount: 2 * 10,
		},
		{
			spec:      Spec{Name: "persist-rounds", Kind: KindPersist, Concurrency: 2, Duration: 200 * time.Millisecond, Rounds: 3, MinRatio: 0.01},
			main:      func(r Round) (float64, float64) { return r.PersistsPerSec, r.BaselinePersistsPerSec },
			measure:   func(m *Measure) float64 { return m.PersistsPerSec },
			wantCount: 1,
		},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := Run(ctx, tinyConfig(DriverWire, tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			s := scenario(t, r, tc.spec.Name)
			if len(s.Rounds) != 3 {
				t.Fatalf("%d rounds reported, want 3", len(s.Rounds))
			}
			if tc.spec.Kind == KindFetch {
				checkMeasure(t, "the median round", s.Server, tc.wantCount)
			} else if s.Server.Persists < tc.wantCount {
				t.Fatalf("the median round persisted %d", s.Server.Persists)
			}
			var ratios []float64
			for _, round := range s.Rounds {
				server, baseline := tc.main(round)
				if !(server > 0 && baseline > 0) || round.Ratio != server/baseline {
					t.Fatalf("round %+v", round)
				}
				ratios = append(ratios, round.Ratio)
			}
			slices.Sort(ratios)
			if got := tc.measure(s.Server) / tc.measure(s.Baseline); got != ratios[1] {
				t.Fatalf("figure's ratio %v, want the median of %v", got, ratios)
			}
			var buf bytes.Buffer
			if err := WriteText(&buf, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "the median of 3 rounds, whose ratios were") {
				t.Fatalf("text report does not tell the rounds:\n%s", buf.String())
			}
		})
	}
}

func TestPingPongEchoesExactlyTheRowsItSends(t *testing.T) {
	e := &env{
		cfg:       Config{SampleInterval: 50 * time.Millisecond},
		log:       testLogger(),
		runID:     randomHex(5),
		redisOpts: &redis.Options{Addr: "127.0.0.1:6379"},
	}
	e.prefix = "bench-test-" + e.runID + ":"
	for _, tc := range []struct {
		name                  string
		streams, rows, window int
	}{
		{"one stream, window 1", 1, 50, 1},
		{"many streams, window 1", 7, 30, 1},
		{"window larger than the rows", 3, 5, 8},
		{"window 4", 4, 40, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, c, err := e.runPingPong(ctx, tc.name, tc.streams, tc.rows, tc.window)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.streams * tc.rows
			want := ppCounts{RowsSent: n, RowsHeard: n, AcceptedSent: n, AcceptedHeard: n, EndsSent: tc.streams, EndsHeard: tc.streams}
			if c != want {
				t.Errorf("counts %+v, want %+v", c, want)
			}
			checkMeasure(t, "ping-pong", m, int64(n))
			if m.Latency == nil || m.Latency.Count != int64(tc.streams*(tc.rows-1)) {
				t.Errorf("latency %+v: want %d samples", m.Latency, tc.streams*(tc.rows-1))
			}
		})
	}
}

func TestJSONOutputParses(t *testing.T) {
	r := tinyReport(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not parse: %v\n%s", err, buf.String())
	}
	if len(back.Scenarios) != len(r.Scenarios) || len(back.Figures) != len(r.Figures) {
		t.Errorf("parsed %d scenarios and %d figures, want %d and %d", len(back.Scenarios), len(back.Figures), len(r.Scenarios), len(r.Figures))
	}
	var generic map[string]any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	scens, _ := generic["scenarios"].([]any)
	if len(scens) == 0 {
		t.Fatal("no scenarios in the JSON")
	}
	first, _ := scens[0].(map[string]any)
	spec, _ := first["spec"].(map[string]any)
	if spec["kind"] != "fetch" {
		t.Errorf("first scenario's kind %v, want \"fetch\"", spec["kind"])
	}
}

func TestHTMLReportHasCharts(t *testing.T) {
	r := tinyReport(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<!DOCTYPE html>", "<svg", "<polyline", "fetch-w1", "ping-pong"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("HTML report is not self-contained: has %q", bad)
		}
	}
}

func TestTextOutput(t *testing.T) {
	r := tinyReport(t)
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fetch-w1", "rows/s", "ping-pong 3×20 w1", "raw INSERTs ×2", "≥ 0.6×", "latency", "bench process"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := NewLines(&buf)
	p.Start("x", 10, 0)
	p.Update(5, "detail")
	p.Done("x: done")
	p.Note("note")
	if got := buf.String(); !strings.Contains(got, "x: started, 10 to go") || !strings.Contains(got, "x: done") || !strings.Contains(got, "note") {
		t.Errorf("progress lines:\n%s", got)
	}
	// The bar writes to any writer without failing.
	b := NewBar(io.Discard)
	b.Start("y", 0, time.Second)
	b.Update(500, "half")
	b.Done("y: done")
}

func TestSelectSpecs(t *testing.T) {
	specs := DefaultSpecs(Sizes{})
	for _, tc := range []struct {
		names string
		want  []string
		err   bool
	}{
		{"", nil, false},
		{"default", nil, false},
		{"persist-64,single-w1", []string{"single-w1", "persist-64"}, false},
		{"nope,single-w1", nil, true},
	} {
		t.Run(tc.names, func(t *testing.T) {
			got, err := SelectSpecs(specs, tc.names)
			if tc.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(got) != len(specs) {
					t.Errorf("%d scenarios, want all %d", len(got), len(specs))
				}
				return
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", names, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := Config{Scenarios: []Spec{{Name: "a", Kind: KindFetch}, {Name: "a", Kind: KindPersist}, {Name: "o", Kind: KindOpen, Streams: 1, Rows: 1}}}
	err := cfg.validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, want := range []string{"twice", "streams and rows", "concurrency and duration", "at least 2 rows"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestReadProcOfSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.rss <= 0 {
		t.Errorf("rss = %d", s.rss)
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{num(1234567.4), "1,234,567"},
		{num(950), "950"},
		{num(0.8234), "0.823"},
		{num(12.5), "12.5"},
		{durMicros(160), "160µs"},
		{durMicros(2.5), "2.5µs"},
		{durMicros(1500), "1.50ms"},
		{human(165000), "165.0k"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	ticks := niceTicks(165000)
	if ticks[0] != 0 || ticks[len(ticks)-1] < 165000 || len(ticks) > 8 {
		t.Errorf("niceTicks(165000) = %v", ticks)
	}
}

func TestInstrumentCostRunsBothLegs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := Spec{Name: "instrument-cost", Kind: KindInstrumentCost, Streams: 5, Rows: 5, Window: 1, Rounds: 2, MaxCost: 0.05}
	r, err := Run(ctx, tinyConfig(DriverWire, spec))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := scenario(t, r, "instrument-cost")
	if len(s.Legs) != 4 {
		t.Fatalf("%d legs, want 4 (on, off, on, off)", len(s.Legs))
	}
	for _, m := range s.Legs {
		checkMeasure(t, m.Label, m, 5*5)
	}
	ic := s.Instrument
	if ic == nil || len(ic.On) != 2 || len(ic.Off) != 2 || !(ic.MeanOn > 0) || !(ic.MeanOff > 0) {
		t.Fatalf("instrument cost %+v: want two legs of each with rows", ic)
	}
	var cost *Figure
	for i, f := range r.Figures {
		if f.Scenario == "instrument-cost" && strings.HasPrefix(f.Name, "cost") {
			cost = &r.Figures[i]
		}
	}
	if cost == nil || cost.Met == nil || cost.Target != "≤ 5%" {
		t.Fatalf("cost figure %+v: want one judged against ≤ 5%%", cost)
	}
}

func TestInstrumentCostNeedsTheInProcessServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{log: testLogger()}
	err := e.runInstrumentCost(ctx, Spec{Name: "instrument-cost", Kind: KindInstrumentCost, Streams: 1, Rows: 1}, &ScenarioResult{})
	if err == nil || !strings.Contains(err.Error(), "cannot run") {
		t.Fatalf("err = %v, want it to say it cannot run against a running server", err)
	}
}

// Each comparison starts its two sides and measures the same load on both:
// every row and persist lands on each side, with no errors.
func TestCompareScenarios(t *testing.T) {
	for _, tc := range []struct {
		compare string
		driver  Driver
	}{
		{CompareClaims, DriverClient},
		{CompareReplicas, DriverWire},
		{CompareCluster, DriverWire},
	} {
		t.Run(tc.compare, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r, err := Run(ctx, tinyConfig(tc.driver,
				Spec{Name: "fetch", Kind: KindCompare, Compare: tc.compare, Load: "fetch", Streams: 4, Rows: 10, Window: 1, Rounds: 1},
				Spec{Name: "persist", Kind: KindCompare, Compare: tc.compare, Load: "persist", Concurrency: 3, Duration: 200 * time.Millisecond, Rounds: 1},
			))
			if err != nil {
				t.Fatal(err)
			}
			fetch := scenario(t, r, "fetch")
			checkMeasure(t, "base side", fetch.Baseline, 4*10)
			checkMeasure(t, "variant side", fetch.Server, 4*10)
			persist := scenario(t, r, "persist")
			for _, m := range []*Measure{persist.Baseline, persist.Server} {
				if m == nil || m.Persists == 0 || m.Errors != 0 {
					t.Errorf("persist side: %+v", m)
				}
			}
		})
	}
}

// The safe-write comparisons run plain persists and persists with event ids
// or expected versions on the run's server: every persist of either side
// is stored, none a duplicate or a conflict (either counts as an error).
func TestSafeWriteComparisons(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, tinyConfig(DriverClient,
		Spec{Name: "event-ids", Kind: KindCompare, Compare: CompareEventIDs, Load: "persist", Concurrency: 3, Duration: 200 * time.Millisecond, Rounds: 2},
		Spec{Name: "expect", Kind: KindCompare, Compare: CompareExpect, Load: "persist", Concurrency: 3, Duration: 200 * time.Millisecond, Rounds: 2},
	))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"event-ids", "expect"} {
		s := scenario(t, r, name)
		if s.Error != "" {
			t.Errorf("%s: %s", name, s.Error)
		}
		for _, m := range []*Measure{s.Baseline, s.Server} {
			if m == nil || m.Persists == 0 || m.Errors != 0 {
				t.Errorf("%s side: %+v", name, m)
			}
		}
	}
	cfg := tinyConfig(DriverClient, Spec{Name: "x", Kind: KindCompare, Compare: CompareExpect, Load: "fetch", Streams: 1, Rows: 1, Window: 1})
	if err := cfg.validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "needs the persist load") {
		t.Errorf("expect with a fetch load: err = %v, want ErrConfig saying it needs persists", err)
	}
}

// With Server.Redis.Cluster the whole run goes through that cluster; a
// comparison with a cluster of its own is refused there.
func TestRunOnACluster(t *testing.T) {
	cluster, err := localcluster.Start(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := tinyConfig(DriverWire, Spec{Name: "cluster", Kind: KindCompare, Compare: CompareCluster, Load: "fetch", Streams: 1, Rows: 2, Window: 1})
	cfg.Server.Redis.Cluster = cluster.Addrs
	if _, err := Run(ctx, cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "on a cluster already") {
		t.Fatalf("a cluster comparison on a cluster: err = %v, want ErrConfig saying why", err)
	}

	for _, driver := range []Driver{DriverWire, DriverClient} {
		cfg := tinyConfig(driver,
			Spec{Name: "fetch", Kind: KindFetch, Streams: 3, Rows: 10, Window: 1},
			Spec{Name: "persist", Kind: KindPersist, Concurrency: 2, Duration: 200 * time.Millisecond},
		)
		cfg.Server.Redis.Cluster = cluster.Addrs
		r, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Server.RedisCluster, cluster.Addrs) {
			t.Errorf("report's cluster %v, want %v", r.Server.RedisCluster, cluster.Addrs)
		}
		checkMeasure(t, string(driver)+" fetch", scenario(t, r, "fetch").Server, 3*10)
		checkMeasure(t, string(driver)+" ping-pong on a node", scenario(t, r, "fetch").Baseline, 3*10)
		if p := scenario(t, r, "persist").Server; p == nil || p.Persists == 0 || p.Errors != 0 {
			t.Errorf("%s persists through the cluster: %+v", driver, p)
		}
	}
}
