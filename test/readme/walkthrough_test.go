package readme_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/localcluster"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// TestWalkthrough runs the README's console blocks, in order, against a
// server of the test's own, and checks that each command prints what the
// README shows.
func TestWalkthrough(t *testing.T) {
	md := readFile(t, "README.md")
	var steps []block
	for _, b := range blocks(md) {
		if b.lang() == "console" {
			steps = append(steps, b)
		}
	}
	if len(steps) == 0 {
		t.Fatal("README.md has no ```console blocks")
	}
	env := newEnvironment(t)
	run := &runner{t: t, env: env, terminals: map[string]*terminal{}}
	var program []string // the last ```go block seen
	for _, b := range blocks(md) {
		if b.lang() == "go" {
			program = b.lines
			continue
		}
		if b.lang() != "console" {
			continue
		}
		run.block(b, program)
	}
	for name, term := range run.terminals {
		term.expectQuiet(t, name)
	}
}

// environment is the test's own server: a redis-server on a free port, a
// new database, the program serving on them.
type environment struct {
	redisPort string
	database  string
	admin     string // host:port of the admin listener
	http      string // host:port of the HTTP gateway
	vars      []string
}

func newEnvironment(t *testing.T) *environment {
	t.Helper()
	rs, err := localcluster.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	_, port, _ := net.SplitHostPort(rs.Addr)
	e := &environment{redisPort: port, database: "es_readme_" + randomHex(6)}
	e.vars = e.environ()
	dropDatabase(t, e.database)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	migrate := exec.CommandContext(ctx, binary, "migrate")
	migrate.Env = e.vars
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("eventsource migrate: %v\n%s", err, out)
	}
	e.serve(t)
	return e
}

// environ is this process's environment without any variable the server
// reads, then the test's: its Redis and its database. The MySQL server and
// account stay as the environment says (MYSQL_HOST, MYSQL_USER, ...).
func (e *environment) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		mysqlConn := name == "MYSQL_HOST" || name == "MYSQL_PORT" || name == "MYSQL_USER" || name == "MYSQL_PASS"
		if !mysqlConn && (strings.HasPrefix(name, "MYSQL_") || strings.HasPrefix(name, "REDIS_") || strings.HasPrefix(name, "EVENTSOURCE_")) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "REDIS_HOST=127.0.0.1", "REDIS_PORT="+e.redisPort, "MYSQL_DATABASE="+e.database)
}

// serve starts the server as `make run` does, on ports of its own, and
// waits until it serves.
func (e *environment) serve(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--http", "127.0.0.1:0", "--anonymous", "--admin", "127.0.0.1:0",
		"--log-json", "--shutdown-grace", "2s")
	cmd.Env = e.vars
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs []string
	ready := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		serving := false
		for sc.Scan() {
			mu.Lock()
			logs = append(logs, sc.Text())
			mu.Unlock()
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &entry) != nil {
				continue
			}
			switch entry.Msg {
			case "admin listening":
				e.admin = entry.Addr
			case "http gateway listening":
				e.http = entry.Addr
			case "eventsource serving":
				if !serving {
					serving = true
					close(ready)
				}
			}
		}
		exited <- cmd.Wait()
	}()
	log := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(logs, "\n")
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log())
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("eventsource serve exited: %v\n%s", err, log())
	case <-time.After(60 * time.Second):
		t.Fatalf("eventsource serve did not serve within 60 s\n%s", log())
	}
	if e.admin == "" || e.http == "" {
		t.Fatalf("no admin or HTTP address in the server's log\n%s", log())
	}
}

// rewrite points a README command at the test's services.
func (e *environment) rewrite(cmd string) string {
	switch {
	case strings.HasPrefix(cmd, "redis-cli "):
		cmd = "redis-cli -p " + e.redisPort + " " + strings.TrimPrefix(cmd, "redis-cli ")
	case strings.HasPrefix(cmd, "bin/eventsource "):
		cmd = binary + " " + strings.TrimPrefix(cmd, "bin/eventsource ")
	}
	cmd = strings.ReplaceAll(cmd, "http://127.0.0.1:9090", "http://"+e.admin)
	return strings.ReplaceAll(cmd, "http://127.0.0.1:8080", "http://"+e.http)
}

// runner runs the blocks in order; terminals are the named ones.
type runner struct {
	t         *testing.T
	env       *environment
	terminals map[string]*terminal
}

// command is one "$ " line of a block and the lines it prints.
type command struct {
	text string
	want []string
}

// parseBlock splits a console block into the lines it expects before any
// command (a running terminal's next output) and its commands.
func parseBlock(b block) (lead []string, cmds []command) {
	lines := b.lines
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "$ ") {
			if len(cmds) == 0 {
				lead = append(lead, line)
			} else {
				cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, line)
			}
			continue
		}
		text := strings.TrimPrefix(line, "$ ")
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + "\n" + lines[i]
		}
		cmds = append(cmds, command{text: text})
	}
	return lead, cmds
}

func (r *runner) block(b block, program []string) {
	t := r.t
	t.Helper()
	where := fmt.Sprintf("README.md:%d (%s)", b.line, b.section)
	lead, cmds := parseBlock(b)
	name := b.name()
	if name == "" {
		if len(lead) > 0 {
			t.Fatalf("%s: a ```console block without a terminal name must start with a \"$ \" command", where)
		}
		for _, c := range cmds {
			got := r.runCommand(where, c.text, program)
			compare(t, where+": $ "+c.text, c.want, got)
		}
		return
	}
	term := r.terminals[name]
	switch {
	case term == nil && len(cmds) != 1:
		t.Fatalf("%s: the first block of terminal %s must hold one command", where, name)
	case term == nil:
		if len(lead) > 0 {
			t.Fatalf("%s: terminal %s prints before its command", where, name)
		}
		term = startTerminal(t, r.env.rewrite(cmds[0].text), r.env.vars)
		r.terminals[name] = term
		lead = cmds[0].want
	case len(cmds) > 0:
		t.Fatalf("%s: terminal %s is still running its command; a later block of it shows output only", where, name)
	}
	term.expect(t, where+": terminal "+name, lead)
}

// runCommand runs one command to its end and returns its output lines.
func (r *runner) runCommand(where, text string, program []string) []string {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if text == "go run ." {
		if program == nil {
			t.Fatalf("%s: $ go run . with no ```go block above it", where)
		}
		dir := r.writeProgram(where, program)
		cmd = exec.CommandContext(ctx, "go", "run", "./"+dir)
	} else {
		cmd = exec.CommandContext(ctx, "bash", "-c", r.env.rewrite(text))
	}
	cmd.Env = r.env.vars
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: $ %s: %v\n%s", where, text, err, out)
	}
	return outputLines(string(out))
}

// writeProgram writes the README's Go program into a directory of this
// module (under testdata, which ./... leaves out), pointed at the test's
// Redis, and returns the directory, relative to this package.
func (r *runner) writeProgram(where string, program []string) string {
	t := r.t
	t.Helper()
	src := strings.Join(program, "\n") + "\n"
	const addr = `"127.0.0.1:6379"`
	if !strings.Contains(src, addr) {
		t.Fatalf("%s: the Go program does not dial %s, so the test cannot point it at its own Redis", where, addr)
	}
	src = strings.ReplaceAll(src, addr, `"127.0.0.1:`+r.env.redisPort+`"`)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "program-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.RemoveAll(dir)
		_ = os.Remove("testdata") // only if no other program is in it
	})
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(dir)
}

// terminal is a command that keeps running while the walkthrough goes on.
type terminal struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string // the complete lines it printed
	read int      // how many of them the README has shown so far
	done chan struct{}
}

func startTerminal(t *testing.T, text string, env []string) *terminal {
	t.Helper()
	cmd := exec.Command("bash", "-c", "exec "+text)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &terminal{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
	}()
	go func() {
		defer close(term.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			term.mu.Lock()
			term.out = append(term.out, sc.Text())
			term.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-term.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return term
}

// expect waits until the terminal has printed len(want) more lines and
// compares them with want.
func (term *terminal) expect(t *testing.T, where string, want []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		term.mu.Lock()
		n := len(term.out) - term.read
		term.mu.Unlock()
		if n >= len(want) {
			break
		}
		select {
		case <-term.done:
			deadline = time.Now() // it ended: nothing more will come
		default:
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	term.mu.Lock()
	end := min(len(term.out), term.read+len(want))
	got := append([]string(nil), term.out[term.read:end]...)
	term.read = end
	term.mu.Unlock()
	compare(t, where, want, got)
}

// expectQuiet checks that the terminal printed nothing the README does not
// show.
func (term *terminal) expectQuiet(t *testing.T, name string) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	term.mu.Lock()
	defer term.mu.Unlock()
	if extra := term.out[term.read:]; len(extra) > 0 {
		t.Errorf("terminal %s printed more than the README shows:\n%s", name, strings.Join(extra, "\n"))
	}
}

// outputLines splits a command's output into lines, without the last
// newline.
func outputLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

// matches reports whether got is the line the README shows: exactly, but
// for "…", which matches any text, and timestamps, which match any
// timestamp.
func matches(want, got string) bool {
	const anyTime = "\x00time\x00"
	want = timestamp.ReplaceAllLiteralString(want, anyTime)
	got = timestamp.ReplaceAllLiteralString(got, anyTime)
	if !strings.Contains(want, "…") {
		return want == got
	}
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

func compare(t *testing.T, where string, want, got []string) {
	t.Helper()
	ok := len(want) == len(got)
	for i := 0; ok && i < len(want); i++ {
		ok = matches(want[i], got[i])
	}
	if !ok {
		t.Errorf("%s:\nthe README shows:\n%s\nthe program printed:\n%s", where, strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dropDatabase drops the test's database when the test ends.
func dropDatabase(t *testing.T, name string) {
	t.Helper()
	cfg := server.DefaultConfig()
	if err := cfg.FromEnv(func(k string) string {
		if k == "MYSQL_HOST" || k == "MYSQL_PORT" || k == "MYSQL_USER" || k == "MYSQL_PASS" {
			return os.Getenv(k)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	store := cfg.MySQL.StoreConfig()
	store.Database, store.PoolSize = "", 1
	t.Cleanup(func() {
		db, err := mysqlstore.Open(store)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
}
