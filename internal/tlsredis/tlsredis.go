// Package tlsredis starts, for a test, a redis-server of its own that
// speaks only TLS, asks clients for a certificate and knows one ACL user:
// what a managed Redis requires. It listens on a free port of 127.0.0.1,
// keeps nothing on disk and is stopped when the test ends. It never
// touches the Redis on the default port.
package tlsredis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/localcluster"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/testcerts"
)

// The ACL user of every server; the default user is off.
const (
	Username = "app"
	Password = "secret"
)

// Server is a running TLS Redis.
type Server struct {
	Host  string // 127.0.0.1
	Port  int
	Certs testcerts.Files
	cmd   *exec.Cmd
	exit  chan error
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// ClientTLS is a client's TLS configuration: the CA and the client
// certificate.
func (s *Server) ClientTLS() *tls.Config { return clientTLS(s.Certs) }

// Options are go-redis options that reach s as its ACL user over TLS.
func (s *Server) Options() *redis.Options {
	return &redis.Options{Addr: s.Addr(), Username: Username, Password: Password, TLSConfig: s.ClientTLS()}
}

// Start starts a server and stops it when the test ends; it skips the test
// when redis-server is not installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server is not installed (scripts/services.sh installs it): no TLS Redis to test against")
	}
	dir, err := os.MkdirTemp("", "eventsource-tlsredis-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	certs, err := testcerts.Write(dir)
	if err != nil {
		tb.Fatal(err)
	}
	acl := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(acl, []byte("user default off\nuser "+Username+" on >"+Password+" ~* &* +@all\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	// A free port may be taken between finding and listening: try again.
	var errs []error
	for range 3 {
		s, err := start(dir, acl, certs)
		if err == nil {
			tb.Cleanup(s.stop)
			return s
		}
		errs = append(errs, err)
	}
	tb.Fatal(errors.Join(errs...))
	return nil
}

func start(dir, acl string, certs testcerts.Files) (*Server, error) {
	port, err := localcluster.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Port: port, Certs: certs, exit: make(chan error, 1)}
	log := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	s.cmd = exec.Command("redis-server", "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey, "--tls-ca-cert-file", certs.CA,
		"--tls-auth-clients", "yes", "--aclfile", acl, "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", log)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("tlsredis: start redis-server: %w", err)
	}
	go func() { s.exit <- s.cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), Username: Username, Password: Password,
		TLSConfig: clientTLS(certs), MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return s, nil
		}
		select {
		case werr := <-s.exit:
			text, _ := os.ReadFile(log)
			return nil, fmt.Errorf("tlsredis: redis-server on port %d exited (%v): %s", port, werr, text)
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("tlsredis: redis-server on port %d does not answer over TLS: %w", port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// clientTLS trusts the CA and presents the client certificate (files
// Write has just written: they read).
func clientTLS(certs testcerts.Files) *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(certs.CA); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey); err == nil {
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func (s *Server) stop() {
	_ = s.cmd.Process.Kill()
	<-s.exit
}
