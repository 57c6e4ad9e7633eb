package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/testbinary"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/soak"
)

var binary string

func TestMain(m *testing.M) {
	b, remove, err := testbinary.Build("../cmd/eventsource", false)
	if err != nil {
		panic(err)
	}
	binary = b
	code := m.Run()
	remove()
	os.Exit(code)
}

// A short soak with a tiny load and one fault of each kind: it reports
// every interval, the invariants hold, and it cleans up after itself.
func TestSoak(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cfg := soak.Config{
		Binary:   binary,
		Duration: 14 * time.Second, ReportEvery: 4 * time.Second, SampleEvery: time.Second, Warmup: 2 * time.Second,
		AcceptTimeout: 2 * time.Second, Stall: 10 * time.Second, Settle: 2 * time.Second,
		FetchStreams: 4, Pids: 6, MinRows: 50, MaxRows: 300, RowRate: 2000,
		Persisters: 2, PersistRate: 40, SSEReaders: 4, Hangers: 2,
		FaultEvery: 3 * time.Second, Faults: soak.AllFaults,
		Out: &out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := soak.Run(ctx, cfg)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Passed {
		t.Fatalf("invariants broken: %v", sum.ViolationsByKind)
	}
	report := out.String()
	if n := strings.Count(report, "] server   goroutines"); n < 3 {
		t.Errorf("%d interval blocks, want at least 3", n)
	}
	if !strings.Contains(report, "\nPASS\n") {
		t.Error("no PASS at the end of the summary")
	}
	seen := map[soak.Fault]bool{}
	for _, f := range sum.Faults {
		seen[f.Fault] = true
		if f.Err != "" || f.Recovered < 0 {
			t.Errorf("fault %s: error %q, recovered %s", f.Fault, f.Err, f.Recovered)
		}
	}
	for _, f := range soak.AllFaults {
		if !seen[f] {
			t.Errorf("fault %s was not injected", f)
		}
	}
	c := sum.Client
	for name, n := range map[string]int64{"fetch streams ended": c.FetchEnd, "rows": c.Rows, "persists": c.PersistOK,
		"sse events": c.SSEEvents, "unaccepted streams timed out": c.HangTimeout, "bad requests answered": c.BadAnswered} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	if sum.Persists.AckedStored != int(c.PersistDocs) {
		t.Errorf("%d acknowledged documents stored, %d acknowledged", sum.Persists.AckedStored, c.PersistDocs)
	}
	if sum.Server.Goroutines == 0 || sum.Server.RedisConns <= 0 || sum.Server.MySQLConns <= 0 {
		t.Errorf("server sample %+v: want goroutines and connections counted", sum.Server)
	}
	if _, err := os.Stat(sum.ServerLog.Path); !os.IsNotExist(err) {
		t.Errorf("server log %s left behind after a pass (%v)", sum.ServerLog.Path, err)
	}
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", sum.Database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s not dropped", sum.Database)
	}
}

// With --json every interval and the summary are JSON lines.
func TestSoakJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cfg := soak.Config{
		Binary:   binary,
		Duration: 3 * time.Second, ReportEvery: time.Second, AcceptTimeout: time.Second, Stall: 5 * time.Second, Settle: time.Second,
		FetchStreams: 1, Pids: 2, MinRows: 20, MaxRows: 40, Persisters: 1, PersistRate: 10, SSEReaders: 1, Hangers: -1,
		FaultEvery: -1, Out: &out, JSON: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := soak.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	types := map[string]int{}
	for _, line := range lines {
		var v struct {
			Type   string `json:"type"`
			Passed *bool  `json:"passed"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		types[v.Type]++
		if v.Type == "summary" && (v.Passed == nil || !*v.Passed) {
			t.Errorf("summary did not pass: %s", line)
		}
	}
	if types["interval"] < 2 || types["summary"] != 1 || !strings.HasPrefix(lines[len(lines)-1], `{"type":"summary"`) {
		t.Errorf("lines by type %v, last %q", types, lines[len(lines)-1])
	}
}
