package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverProc is the server under soak: a child process with request
// channels, a database and listeners of its own.
type serverProc struct {
	cmd     *exec.Cmd
	admin   string // host:port of the admin listener
	http    string // host:port of the HTTP gateway
	logPath string
	env     []string

	exited chan struct{}
	err    error // of cmd.Wait, once exited is closed

	mu       sync.Mutex
	warnings int
	errors   int
	alarms   []string // panics, races, fatal errors: the first few lines
}

// channels are the server's request and reserved channels, under the
// run's prefix.
type channels struct {
	fetch, persist, fetchNext, commit, finished string
	// responses is the prefix of every response channel of the soak.
	responses string
}

func newChannels(prefix string) channels {
	return channels{
		fetch: prefix + "fetch", persist: prefix + "persist", fetchNext: prefix + "fetch-next",
		commit: prefix + "committed", finished: prefix + "finished", responses: prefix + "r:",
	}
}

// serverEnv is the environment of migrate and serve: ours, with the
// soak's MySQL, database and Redis spelled out.
func serverEnv(cfg Config, database string) ([]string, error) {
	host, port, err := net.SplitHostPort(cfg.RedisAddr)
	if err != nil {
		return nil, fmt.Errorf("redis address %q: %w", cfg.RedisAddr, err)
	}
	return append(os.Environ(),
		"MYSQL_HOST="+cfg.MySQL.Host, "MYSQL_PORT="+strconv.Itoa(cfg.MySQL.Port),
		"MYSQL_USER="+cfg.MySQL.User, "MYSQL_PASS="+cfg.MySQL.Password, "MYSQL_DATABASE="+database,
		"REDIS_HOST="+host, "REDIS_PORT="+port, "REDIS_PASSWORD="+cfg.RedisPassword,
		"REDIS_DB="+strconv.Itoa(cfg.RedisDB), "REDIS_CLUSTER=",
	), nil
}

// migrate creates the soak's database and table with the program itself.
func migrate(ctx context.Context, binary string, env []string, database string) error {
	cmd := exec.CommandContext(ctx, binary, "migrate", "--database", database)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s migrate: %w: %s", binary, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freePort finds a loopback port nobody listens on. Another process may
// take it before the server does; the server then fails to start, and
// says so.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startServer runs serve and waits until /readyz answers 200.
func startServer(ctx context.Context, cfg Config, env []string, ch channels, dir string) (*serverProc, error) {
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	gateway, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve",
		"--fetch-channel", ch.fetch, "--persist-channel", ch.persist, "--fetch-next-channel", ch.fetchNext,
		"--commit-channel", ch.commit, "--finished-channel", ch.finished,
		"--admin", admin, "--http", gateway, "--anonymous",
		"--accept-timeout", cfg.AcceptTimeout.String(), "--shutdown-grace", "5s",
		"--log-level", cfg.ServerLogLevel,
	}, cfg.ServerArgs...)
	s := &serverProc{admin: admin, http: gateway, logPath: filepath.Join(dir, "server.log"), env: env, exited: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	// Not CommandContext: the server gets SIGTERM and its grace from stop,
	// not a SIGKILL when ctx ends.
	s.cmd = exec.Command(cfg.Binary, args...)
	s.cmd.Env = env
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("server stderr: %w", err)
	}
	s.cmd.Stdout = logFile
	if err := s.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", cfg.Binary, err)
	}
	go func() {
		s.watchLog(stderr, logFile)
		s.err = s.cmd.Wait()
		_ = logFile.Close()
		close(s.exited)
	}()
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for !s.ready(wait) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("server exited before it was ready: %v (log: %s)", s.err, s.logPath)
		case <-wait.Done():
			s.stop()
			return nil, fmt.Errorf("server not ready within a minute (log: %s)", s.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s, nil
}

// watchLog copies the server's stderr to its log file and counts what
// matters in it.
func (s *serverProc) watchLog(stderr io.Reader, logFile *os.File) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		// Unbuffered: the soak reads the file back for evidence while the
		// server runs.
		_, _ = logFile.WriteString(line + "\n")
		s.mu.Lock()
		switch {
		case strings.Contains(line, "level=WARN"), strings.Contains(line, `"level":"WARN"`):
			s.warnings++
		case strings.Contains(line, "level=ERROR"), strings.Contains(line, `"level":"ERROR"`):
			s.errors++
		case strings.HasPrefix(line, "panic:"), strings.HasPrefix(line, "fatal error:"), strings.Contains(line, "WARNING: DATA RACE"):
			if len(s.alarms) < 5 {
				s.alarms = append(s.alarms, line)
			}
		}
		s.mu.Unlock()
	}
}

// logLines returns the first few lines of the server's log that contain
// s, as evidence.
func (s *serverProc) logLines(substr string, most int) []string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() && len(out) < most {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// logCounts reads what watchLog counted.
func (s *serverProc) logCounts() (warnings, errs int, alarms []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.warnings, s.errors, append([]string(nil), s.alarms...)
}

// ready tells whether /readyz answers 200.
func (s *serverProc) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.admin+"/readyz", nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// alive tells whether the process still runs.
func (s *serverProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the server's own grace, then kills it.
// It reports how the process ended.
func (s *serverProc) stop() error {
	if !s.alive() {
		return s.exitErr()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.exitErr()
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("server did not stop within 20 s of SIGTERM: killed")
	}
}

func (s *serverProc) exitErr() error {
	if s.err != nil {
		return fmt.Errorf("server exited: %w", s.err)
	}
	return nil
}

// localPorts lists the local TCP ports of the server's sockets, read from
// /proc: its file descriptors name socket inodes, and /proc/<pid>/net/tcp
// maps inodes to addresses. It is how the soak tells the server's Redis
// connections from those of another server with the same client name.
func (s *serverProc) localPorts() (map[int]bool, error) {
	pid := s.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, fmt.Errorf("list the server's sockets (needs Linux's /proc): %w", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				ports[int(port)] = true
			}
		}
		_ = f.Close()
	}
	return ports, nil
}
