package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Server is one standalone redis-server of the tests' own, which they may
// kill, restart, pause and resume: a Redis outage, for real.
type Server struct {
	// Addr is 127.0.0.1:port; a restart keeps it.
	Addr string
	port int
	dir  string
	cmd  *exec.Cmd
}

// StartServer starts a redis-server on a free port, with nothing on disk
// (a restart comes back empty, as a Redis without persistence does).
func StartServer() (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("localcluster: redis-server is not installed (scripts/services.sh installs Redis): %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "eventsource-redis-")
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(ports[0]), port: ports[0], dir: dir}
	if err := s.Restart(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Restart starts the server again on its port (after Kill), and waits
// until it answers.
func (s *Server) Restart() error {
	p := strconv.Itoa(s.port)
	s.cmd = exec.Command("redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", "redis.log")
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("localcluster: start redis-server on %s: %w", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return waitPing(ctx, s.Addr)
}

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Pause freezes the server (SIGSTOP): its connections stay open and
// nothing answers on them. Resume continues it.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("localcluster: redis-server on %s is not running", s.Addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("localcluster: signal redis-server on %s: %w", s.Addr, err)
	}
	return nil
}

// Stop ends the server and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
	s.Kill()
	_ = os.RemoveAll(s.dir)
}
