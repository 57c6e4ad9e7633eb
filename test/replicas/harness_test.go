package replicas_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/mysqlstore"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deployment is what the servers of one test share: a database, request
// channels of their own, and the Redis every process talks to.
type deployment struct {
	t       *testing.T
	db      *sql.DB
	dbName  string
	prefix  string
	rdb     redis.UniversalClient
	redisAt string // host:port of the Redis the servers use
	// cluster, when set, are the seed nodes the servers use instead.
	cluster []string
	// extra are flags every server of the deployment gets.
	extra []string
}

func newDeployment(t *testing.T, extra ...string) *deployment {
	t.Helper()
	db, err := mysqlstore.Open(mysqlstore.Config{Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4", PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, db: db, dbName: "es_replicas_" + randomHex(6), prefix: "es-replicas-test:" + randomHex(6) + ":",
		redisAt: "127.0.0.1:6379", extra: extra}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+d.dbName+"`"); err != nil {
			t.Errorf("drop database %s: %v", d.dbName, err)
		}
		db.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := mysqlstore.Migrate(ctx, db, d.dbName); err != nil {
		t.Fatalf("migrate (is MariaDB up?): %v", err)
	}
	d.rdb = redis.NewClient(&redis.Options{Addr: d.redisAt})
	t.Cleanup(func() { _ = d.rdb.Close() })
	return d
}

// onCluster has the deployment's servers use the cluster's first masters
// as seeds, and the test's own client (requests, collector) the last one.
func (d *deployment) onCluster(addrs []string) {
	_ = d.rdb.Close()
	d.cluster = addrs[:len(addrs)-1]
	d.redisAt = addrs[len(addrs)-1]
	d.rdb = redis.NewClient(&redis.Options{Addr: d.redisAt})
	d.t.Cleanup(func() { _ = d.rdb.Close() })
}

func (d *deployment) channel(name string) string { return d.prefix + "c:" + name }

func (d *deployment) fetchChannel() string   { return d.prefix + "fetch" }
func (d *deployment) persistChannel() string { return d.prefix + "persist" }

// serverArgs are the serve flags of the deployment's servers.
func (d *deployment) serverArgs() []string {
	return append([]string{"serve",
		"--fetch-channel", d.prefix + "fetch", "--persist-channel", d.prefix + "persist",
		"--fetch-next-channel", d.prefix + "fetch-next", "--commit-channel", d.prefix + "committed",
		"--finished-channel", d.prefix + "finished",
		"--admin", "127.0.0.1:0", "--log-json", "--shutdown-grace", "2s", "--mysql-pool", "4",
		"--redis-cluster", strings.Join(d.cluster, ",")}, d.extra...)
}

// proc is one server process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []string
	exited chan struct{}
	err    error
	// id and admin come from its log: its server id and admin address.
	id, admin string
}

// start runs a server and waits until it serves.
func (d *deployment) start(name string, args ...string) *proc {
	d.t.Helper()
	cmd := exec.Command(binary, append(d.serverArgs(), args...)...)
	cmd.Env = append(os.Environ(), "MYSQL_DATABASE="+d.dbName, "REDIS_HOST=127.0.0.1", "REDIS_PORT="+strings.Split(d.redisAt, ":")[1])
	stderr, err := cmd.StderrPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	p := &proc{t: d.t, name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	d.t.Cleanup(p.stop)
	waitFor(d.t, name+" to serve", 60*time.Second, func() bool {
		select {
		case <-p.exited:
			d.t.Fatalf("%s exited: %v\n%s", name, p.err, p.log())
		default:
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, line := range p.logs {
			var entry struct{ Msg, Server, Addr string }
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue
			}
			switch entry.Msg {
			case "admin listening":
				p.admin = entry.Addr
			case "eventsource serving":
				p.id = entry.Server
			}
		}
		return p.id != "" && p.admin != ""
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// stop ends the process: SIGTERM, then SIGKILL if it lingers. A stopped
// (SIGSTOP) process is continued first.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if strings.Contains(p.log(), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race:\n%s", p.name, p.log())
	}
}

// streams lists the channels of the streams the server serves, from its
// admin listener.
func (p *proc) streams() []string {
	p.t.Helper()
	res, err := http.Get("http://" + p.admin + "/actors?kind=stream&limit=1000")
	if err != nil {
		p.t.Fatalf("GET /actors of %s: %v", p.name, err)
	}
	defer res.Body.Close()
	var body struct {
		Server string
		Actors []struct{ Channel, State string }
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		p.t.Fatalf("GET /actors of %s: %v", p.name, err)
	}
	if body.Server != p.id {
		p.t.Fatalf("GET /actors of %s names server %q, want %q", p.name, body.Server, p.id)
	}
	var out []string
	for _, a := range body.Actors {
		out = append(out, a.Channel)
	}
	return out
}

// collector hears everything published on the deployment's response
// channels, in order per channel.
type collector struct {
	d    *deployment
	ps   *redis.PubSub
	mu   sync.Mutex
	msgs map[string][]string
	// changed is closed, and replaced, whenever a message arrives.
	changed chan struct{}
}

func (d *deployment) collect() *collector {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.collectFrom(ctx, d.rdb.PSubscribe(ctx, d.prefix+"c:*"))
}

// collectExact is collect for the given channels only, subscribed by
// name: a server counts these subscribers (PUBSUB NUMSUB), which it does
// not for a pattern's. More may be added with subscribe.
func (d *deployment) collectExact(channels ...string) *collector {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.collectFrom(ctx, d.rdb.Subscribe(ctx, channels...))
}

// subscribe adds channels to an exact collector and waits for Redis to
// confirm them.
func (c *collector) subscribe(t *testing.T, channels ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ps.Subscribe(ctx, channels...); err != nil {
		t.Fatalf("subscribe %v: %v", channels, err)
	}
	for {
		n, err := c.d.rdb.PubSubNumSub(ctx, channels...).Result()
		if err != nil {
			t.Fatal(err)
		}
		all := true
		for _, ch := range channels {
			all = all && n[ch] > 0
		}
		if all {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (d *deployment) collectFrom(ctx context.Context, ps *redis.PubSub) *collector {
	d.t.Helper()
	if _, err := ps.Receive(ctx); err != nil {
		d.t.Fatalf("subscribe: %v", err)
	}
	c := &collector{d: d, ps: ps, msgs: map[string][]string{}, changed: make(chan struct{})}
	go func() {
		for m := range ps.Channel(redis.WithChannelSize(1 << 16)) {
			c.mu.Lock()
			c.msgs[m.Channel] = append(c.msgs[m.Channel], m.Payload)
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	d.t.Cleanup(func() { _ = ps.Close() })
	return c
}

// heard is what was published on channel so far, the client's own
// "accepted" left out.
func (c *collector) heard(channel string) []string {
	got, _ := c.heardNow(channel)
	return got
}

// heardNow is heard, and the signal of the next message.
func (c *collector) heardNow(channel string) ([]string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(c.msgs[channel]), func(m string) bool { return m == `"accepted"` }), c.changed
}

// wait waits until cond holds of what channel heard, or timeout.
func (c *collector) wait(channel string, timeout time.Duration, cond func([]string) bool) ([]string, error) {
	deadline := time.After(timeout)
	for {
		got, changed := c.heardNow(channel)
		if cond(got) {
			return got, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return got, fmt.Errorf("%s heard %q", channel, got)
		}
	}
}

// isTerminal tells a terminal message: "end", "timeout", "error", or an
// error object.
func isTerminal(m string) bool {
	return m == `"end"` || m == `"timeout"` || m == `"error"` || strings.HasPrefix(m, `{"error":`)
}

// ended reports whether messages end with a terminal.
func ended(msgs []string) bool { return len(msgs) > 0 && isTerminal(msgs[len(msgs)-1]) }

// publish sends a request or a control message.
func (d *deployment) publish(channel string, payload any) {
	d.t.Helper()
	b, ok := payload.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			d.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.rdb.Publish(ctx, channel, b).Err(); err != nil {
		d.t.Fatalf("publish on %s: %v", channel, err)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s in vain for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
