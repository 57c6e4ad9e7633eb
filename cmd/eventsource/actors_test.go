package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/server"
	"github.com/eventsource/eventsource/supervision"
)

// adminServer is a real server started in this process with an admin
// listener, on its own database and request channels.
type adminServer struct {
	t      testing.TB
	srv    *server.Server
	admin  string // host:port
	token  string
	rdb    *redis.Client
	prefix string
	fetch  string // the fetch request channel
	pid    string // the pid of the events every stream reads
}

// startAdminServer migrates a fresh database holding two events and starts
// a server on it whose streams wait a long time for "accepted".
func startAdminServer(t *testing.T, token string) *adminServer {
	t.Helper()
	db, dbName := testserver.Database(t, "es_actors")
	s := &adminServer{t: t, token: token, prefix: "es-actors-test:" + randomHex(6) + ":", pid: "order-" + randomHex(4)}
	if _, err := db.Exec("INSERT INTO `"+dbName+"`.event (pid, domain, name, data) VALUES (?, 'shop', 'created', '{}'), (?, 'shop', 'paid', '{}')", s.pid, s.pid); err != nil {
		t.Fatal(err)
	}
	cfg := testserver.Config(t, dbName, s.prefix)
	s.fetch = cfg.FetchChannel
	cfg.AcceptTimeout = 5 * time.Minute // streams wait while the test looks at them
	cfg.Admin = "127.0.0.1:0"
	cfg.AdminToken = token
	srv := testserver.Start(t, cfg, nil)
	s.srv, s.admin = srv, srv.AdminAddr().String()
	s.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { s.rdb.Close() })
	return s
}

// stream is one fetch a test opened, seen from the client's side.
type stream struct {
	channel string
	ps      *redis.PubSub
	msgs    <-chan *redis.Message
}

// open subscribes a fresh response channel, sends a fetch of the two
// events, and waits for the first row: the stream then waits for
// "accepted".
func (s *adminServer) open(name string) *stream {
	s.t.Helper()
	ctx := context.Background()
	channel := s.prefix + name + "-" + randomHex(3)
	ps := s.rdb.Subscribe(ctx, channel)
	s.t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		s.t.Fatal(err)
	}
	st := &stream{channel: channel, ps: ps, msgs: ps.Channel()}
	req := fmt.Sprintf(`{"channel":%q,"query":{"$select":{"$columns":["name"],"$where":{"pid":%q}}}}`, channel, s.pid)
	if err := s.rdb.Publish(ctx, s.fetch, req).Err(); err != nil {
		s.t.Fatal(err)
	}
	st.expect(s.t, `{"name":"created"}`)
	return st
}

// expect requires the next message on the channel to be want.
func (st *stream) expect(tb testing.TB, want string) {
	tb.Helper()
	select {
	case m := <-st.msgs:
		if m.Payload != want {
			tb.Fatalf("%s: got %s, want %s", st.channel, m.Payload, want)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s: no message, want %s", st.channel, want)
	}
}

// env is the environment of a run of the binary with the server's token.
func (s *adminServer) env() []string { return []string{"EVENTSOURCE_ADMIN_TOKEN=" + s.token} }

// actorsJSON runs 'actors --json' and decodes what it printed.
func (s *adminServer) actorsJSON(tb testing.TB, args ...string) []supervision.Entry {
	tb.Helper()
	res := runBinary(tb, s.env(), append([]string{"actors", "--admin", s.admin, "--json"}, args...)...)
	if res.code != 0 {
		tb.Fatalf("actors --json: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	var entries []supervision.Entry
	if err := json.Unmarshal([]byte(res.stdout), &entries); err != nil {
		tb.Fatalf("actors --json printed %q: %v", res.stdout, err)
	}
	return entries
}

func TestActorsCommand(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t, "tok-"+randomHex(8))
	streams := []*stream{s.open("b"), s.open("a"), s.open("c")}
	want := make([]string, len(streams))
	for i, st := range streams {
		want[i] = "stream:" + st.channel
	}
	slices.Sort(want)
	waitFor(t, 10*time.Second, func() error {
		entries := s.actorsJSON(t, "--state", "waiting")
		if len(entries) != 3 {
			return fmt.Errorf("%d streams waiting, want 3: %+v", len(entries), entries)
		}
		return nil
	})

	t.Run("tree", func(t *testing.T) {
		res := runBinary(t, s.env(), "actors", "--admin", s.admin)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit status %d\nstderr: %s", res.code, res.stderr)
		}
		lines := outputLines(t, res.stdout)
		if len(lines) != 4 {
			t.Fatalf("printed %d lines, want the router and 3 streams:\n%s", len(lines), res.stdout)
		}
		if f := strings.Fields(lines[0]); len(f) != 4 || f[0] != "router" || f[1] != "running" || f[2] != "age" {
			t.Errorf("first line %q, want the router running with its age", lines[0])
		}
		for i, line := range lines[1:] {
			branch := "├─ "
			if i == 2 {
				branch = "└─ "
			}
			if !strings.HasPrefix(line, branch+want[i]+" ") {
				t.Errorf("line %d = %q, want %q first (children sorted by name)", i+1, line, branch+want[i])
			}
			f := strings.Fields(strings.TrimPrefix(line, branch))
			wantFields := []string{want[i], "waiting", "rows", "1", "credit", "0", "unaccepted", "1", "deadline", "", "age", ""}
			if len(f) != len(wantFields) {
				t.Errorf("line %d = %q, want the fields %q", i+1, line, wantFields)
				continue
			}
			for j, w := range wantFields {
				if w != "" && f[j] != w {
					t.Errorf("line %d field %d = %q, want %q (line %q)", i+1, j, f[j], w, line)
				}
			}
			// About 5 minutes left to accept.
			if !strings.HasPrefix(f[9], "29") && !strings.HasPrefix(f[9], "300") {
				t.Errorf("line %d: deadline %s, want about 300s", i+1, f[9])
			}
		}
		// Columns line up: the state and the age start at the same rune on
		// every line.
		col := func(line, word string) int {
			i := strings.Index(line, word)
			return len([]rune(line[:max(i, 0)]))
		}
		for _, line := range lines[1:] {
			if col(line, "waiting") != col(lines[0], "running") || col(line, "age ") != col(lines[0], "age ") {
				t.Errorf("columns do not line up:\n%s", res.stdout)
				break
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		res := runBinary(t, s.env(), "actors", "--admin", s.admin, "--kind", "stream", "--prefix", streams[1].channel)
		lines := outputLines(t, res.stdout)
		if res.code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "stream:"+streams[1].channel+" ") {
			t.Fatalf("exit status %d, printed %q, want the one stream at the top\nstderr: %s", res.code, res.stdout, res.stderr)
		}
		if got := s.actorsJSON(t, "--kind", "router"); len(got) != 1 || got[0].Name != "router" {
			t.Fatalf("--kind router: %+v", got)
		}
	})

	t.Run("json", func(t *testing.T) {
		entries := s.actorsJSON(t)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
			if e.Kind == "stream" && (e.Parent != "router" || e.State != "waiting" || e.RowsSent != 1 || e.Unaccepted != 1 || e.Deadline == nil) {
				t.Errorf("entry %+v, want a waiting child of the router with one row unaccepted", e)
			}
		}
		if !slices.Equal(names, append([]string{"router"}, want...)) {
			t.Errorf("names %q, want the router and %q", names, want)
		}
	})

	t.Run("token", func(t *testing.T) {
		res := runBinary(t, []string{"EVENTSOURCE_ADMIN_TOKEN="}, "actors", "--admin", s.admin)
		if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "wants a token") {
			t.Errorf("without a token: exit status %d, stdout %q, stderr %q; want 1 and a word about the token", res.code, res.stdout, res.stderr)
		}
		res = runBinary(t, s.env(), "actors", "--admin", s.admin, "--token", "wrong")
		if res.code != 1 || !strings.Contains(res.stderr, "refused the token") {
			t.Errorf("with a wrong --token: exit status %d, stderr %q", res.code, res.stderr)
		}
		res = runBinary(t, []string{"EVENTSOURCE_ADMIN_TOKEN="}, "actors", "--admin", "http://"+s.admin+"/", "--token", s.token, "--kind", "router")
		if res.code != 0 || !strings.HasPrefix(res.stdout, "router ") {
			t.Errorf("with --token and a URL: exit status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
	})

	t.Run("watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "actors", "--admin", s.admin, "--watch", "--interval", "50ms", "--kind", "router")
		cmd.Env = append(os.Environ(), s.env()...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) == 5 { // router, ----, router, ----, router
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			t.Errorf("after Ctrl-C: %v (want exit status 0)\nstderr: %s", err, stderr.String())
		}
		if len(lines) != 5 {
			t.Fatalf("printed %q, want three refreshes", lines)
		}
		for i, line := range lines {
			if i%2 == 1 && line != strings.TrimSuffix(watchSeparator, "\n") || i%2 == 0 && !strings.HasPrefix(line, "router ") {
				t.Fatalf("printed %q, want refreshes of the router line separated by %q", lines, watchSeparator)
			}
		}
	})

	t.Run("stop", func(t *testing.T) {
		victim := streams[0]
		name := "stream:" + victim.channel
		res := runBinary(t, s.env(), "actors", "stop", "--admin", s.admin, name)
		if res.code != 0 || res.stdout != "stopped "+name+"\n" {
			t.Fatalf("exit status %d, stdout %q, want %q\nstderr: %s", res.code, res.stdout, "stopped "+name+"\n", res.stderr)
		}
		victim.expect(t, `"error"`)
		waitFor(t, 10*time.Second, func() error {
			var names []string
			for _, e := range s.actorsJSON(t, "--kind", "stream") {
				names = append(names, e.Name)
			}
			if slices.Contains(names, name) || len(names) != 2 {
				return fmt.Errorf("streams %q, want the two others", names)
			}
			return nil
		})
		// Flags may follow the name too.
		res = runBinary(t, s.env(), "actors", "stop", name, "--admin", s.admin)
		if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "no running stream named "+name) {
			t.Fatalf("stopping it again: exit status %d, stdout %q, stderr %q; want 1 and not found", res.code, res.stdout, res.stderr)
		}
		// The others still wait and still stream.
		for _, st := range streams[1:] {
			if err := s.rdb.Publish(context.Background(), st.channel, `"accepted"`).Err(); err != nil {
				t.Fatal(err)
			}
			st.expect(t, `"accepted"`) // our own, heard back
			st.expect(t, `{"name":"paid"}`)
		}
	})

	// The clients end their streams (the stopped one has none left): only
	// the router is left.
	for _, st := range streams {
		if err := s.rdb.Publish(context.Background(), st.channel, `"end"`).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		res := runBinary(t, s.env(), "actors", "--admin", s.admin)
		if lines := outputLines(t, res.stdout); res.code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "router ") {
			return fmt.Errorf("exit status %d, printed %q, want the router alone", res.code, res.stdout)
		}
		return nil
	})
}

// registryBackend serves a bare registry through the real admin handler:
// enough actors to need several pages without running that many streams.
type registryBackend struct{ reg *supervision.Registry }

func (b registryBackend) Actors(f supervision.Filter, offset, limit int) ([]supervision.Entry, int) {
	return b.reg.List(f, offset, limit)
}
func (b registryBackend) StopActor(context.Context, string) (bool, error)    { return false, nil }
func (b registryBackend) Ready(context.Context) error                        { return nil }
func (registryBackend) ServerID() string                                     { return "test" }
func (registryBackend) Replicas(context.Context) ([]replicas.Replica, error) { return nil, nil }

func registryServer(t *testing.T, streams int) *httptest.Server {
	t.Helper()
	reg := supervision.NewRegistry()
	reg.Add("router", "", "router", "", "running")
	for i := range streams {
		ch := fmt.Sprintf("ch-%05d", i)
		l := reg.Add("stream:"+ch, "router", "stream", ch, "streaming")
		l.AddRows(int64(i))
	}
	// A grandchild and an error, to draw a deeper tree.
	reg.Add("session:s-1", "stream:ch-00000", "session", "", "open").SetError("client went away")
	srv := httptest.NewServer(admin.Handler(registryBackend{reg}, nil, "", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return srv
}

func TestActorsPagesThroughEveryEntry(t *testing.T) {
	t.Parallel()
	const streams = 2345 // three pages
	srv := registryServer(t, streams)
	res := runBinary(t, nil, "actors", "--admin", srv.URL, "--json")
	if res.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", res.code, res.stderr)
	}
	var entries []supervision.Entry
	if err := json.Unmarshal([]byte(res.stdout), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != streams+2 {
		t.Fatalf("--json printed %d entries, want %d", len(entries), streams+2)
	}

	res = runBinary(t, nil, "actors", "--admin", strings.TrimPrefix(srv.URL, "http://"))
	lines := outputLines(t, res.stdout)
	if res.code != 0 || len(lines) != streams+2 {
		t.Fatalf("exit status %d, %d lines, want %d\nstderr: %s", res.code, len(lines), streams+2, res.stderr)
	}
	wantHead := []string{"router", "├─ stream:ch-00000", "│  └─ session:s-1", "├─ stream:ch-00001"}
	for i, w := range wantHead {
		if !strings.HasPrefix(lines[i], w+" ") {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[2], `error "client went away"`) {
		t.Errorf("line 2 = %q, want the last error", lines[2])
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, fmt.Sprintf("└─ stream:ch-%05d ", streams-1)) || !strings.Contains(last, fmt.Sprintf("rows %d ", streams-1)) {
		t.Errorf("last line %q", last)
	}
	if t.Failed() {
		t.Logf("head:\n%s", strings.Join(lines[:6], "\n"))
	}
}

// cancelOnWrite cancels a context once something is written: one refresh.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func TestActorsWatchOnATerminalRedraws(t *testing.T) {
	t.Parallel()
	srv := registryServer(t, 2)
	base, err := adminURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &cancelOnWrite{cancel: cancel}
	v := actorsView{client: &adminClient{base: base, http: srv.Client()}, tty: true, out: out}
	if err := v.watch(ctx, time.Hour, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := out.buf.String()
	if !strings.HasPrefix(got, clearScreen+"eventsource actors · "+srv.URL+" · 4 actors · ") {
		t.Fatalf("a refresh on a terminal is %q, want it to clear the screen and name the server", got)
	}
	if !strings.Contains(got, "\n\nrouter ") || !strings.Contains(got, "└─ stream:ch-00001 ") || strings.Contains(got, watchSeparator) {
		t.Fatalf("a refresh on a terminal is %q, want the tree and no separator", got)
	}
}

func TestActorsMisuse(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: a command that wrongly got as far as
	// asking would fail with status 1, not 2.
	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"unknown flag", []string{"actors", "--bogus"}, []string{"bogus", "usage: eventsource actors"}},
		{"stray argument", []string{"actors", "--admin", "127.0.0.1:1", "tree"}, []string{`unexpected argument "tree"`}},
		{"admin without a port", []string{"actors", "--admin", "localhost"}, []string{"--admin", "usage: eventsource actors"}},
		{"admin of another scheme", []string{"actors", "--admin", "ftp://127.0.0.1:1"}, []string{"--admin", "scheme"}},
		{"interval without watch", []string{"actors", "--admin", "127.0.0.1:1", "--interval", "2s"}, []string{"--interval needs --watch"}},
		{"interval of zero", []string{"actors", "--admin", "127.0.0.1:1", "--watch", "--interval", "0s"}, []string{"--interval 0s is not positive"}},
		{"bad interval", []string{"actors", "--watch", "--interval", "soon"}, []string{"interval", "usage: eventsource actors"}},
		{"stop without a name", []string{"actors", "stop", "--admin", "127.0.0.1:1"}, []string{"give the name", "usage: eventsource actors stop"}},
		{"stop with two names", []string{"actors", "stop", "stream:a", "stream:b"}, []string{`unexpected argument "stream:b"`}},
		{"stop with an unknown flag", []string{"actors", "stop", "--kind", "stream", "stream:a"}, []string{"kind", "usage: eventsource actors stop"}},
		{"stop with a bad admin", []string{"actors", "stop", "--admin", "nohostport", "stream:a"}, []string{"--admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, nil, tt.args...)
			if res.code != 2 {
				t.Errorf("exit status %d, want 2", res.code)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not mention %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", res.stderr)
			}
		})
	}

	// Not a misuse: no server there is status 1.
	res := runBinary(t, nil, "actors", "--admin", "127.0.0.1:1")
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "eventsource: actors:") {
		t.Errorf("no server: exit status %d, stdout %q, stderr %q; want 1 and the error", res.code, res.stdout, res.stderr)
	}
}

// TestActorsStopNotFound needs no streams: the real handler answers 404.
func TestActorsStopNotFound(t *testing.T) {
	t.Parallel()
	srv := registryServer(t, 1)
	res := runBinary(t, nil, "actors", "stop", "--admin", srv.URL, "stream:nobody/with/slashes")
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "no running stream named stream:nobody/with/slashes") {
		t.Fatalf("exit status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}
