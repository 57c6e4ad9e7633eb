// Package tlsdb starts, for a test, a MariaDB server of its own that
// accepts only TLS connections (require_secure_transport), with its
// certificates from testcerts and root without a password: what a managed
// MySQL requires. It has a fresh data directory, listens on a free port of
// 127.0.0.1 and is stopped when the test ends. It never touches the MariaDB
// on the default port.
package tlsdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
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

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/internal/testcerts"
)

// Server is a running MariaDB.
type Server struct {
	Host  string // 127.0.0.1
	Port  int
	User  string // root, without a password
	Certs testcerts.Files
	cmd   *exec.Cmd
	exit  chan error
}

// Start starts a server and stops it when the test ends; it skips the test
// when MariaDB is not installed. It takes a second or two.
func Start(tb testing.TB) *Server {
	tb.Helper()
	mariadbd, err := exec.LookPath("mariadbd")
	if err != nil {
		mariadbd = "/usr/sbin/mariadbd"
	}
	install, ierr := exec.LookPath("mariadb-install-db")
	if _, err := os.Stat(mariadbd); err != nil || ierr != nil {
		tb.Skip("mariadbd or mariadb-install-db is not installed (scripts/services.sh installs MariaDB): no TLS MariaDB to test against")
	}
	// Short: the socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "es-tlsdb-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	certs, err := testcerts.Write(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"} // mariadbd refuses root otherwise
	}
	data := filepath.Join(dir, "data")
	// A temporary directory of its own: mariadbd removes the leftover
	// temporary tables of its tmpdir when it starts, which in the shared
	// /tmp are the live ones of the machine's MariaDB.
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}, asRoot...)
	installCmd := exec.Command(install, args...)
	installCmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if out, err := installCmd.CombinedOutput(); err != nil {
		tb.Fatalf("tlsdb: mariadb-install-db: %v\n%s", err, out)
	}
	// A free port may be taken between finding and listening: try again.
	var errs []error
	for range 3 {
		s, err := start(mariadbd, dir, data, certs, asRoot)
		if err == nil {
			tb.Cleanup(s.stop)
			return s
		}
		errs = append(errs, err)
	}
	tb.Fatal(errors.Join(errs...))
	return nil
}

func start(mariadbd, dir, data string, certs testcerts.Files, extra []string) (*Server, error) {
	port, err := localcluster.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Port: port, User: "root", Certs: certs, exit: make(chan error, 1)}
	log := filepath.Join(dir, "mariadb-"+strconv.Itoa(port)+".err")
	args := append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin",
		"--ssl-cert=" + certs.ServerCert, "--ssl-key=" + certs.ServerKey, "--ssl-ca=" + certs.CA,
		"--require-secure-transport=ON", "--innodb-buffer-pool-size=16M", "--performance-schema=OFF",
		"--log-error=" + log, "--pid-file=" + filepath.Join(dir, "mariadb.pid"), "--tmpdir=" + filepath.Join(dir, "tmp")}, extra...)
	s.cmd = exec.Command(mariadbd, args...)
	s.cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("tlsdb: start mariadbd: %w", err)
	}
	go func() { s.exit <- s.cmd.Wait() }()

	mc := mysql.NewConfig()
	mc.Net, mc.Addr, mc.User, mc.Timeout = "tcp", s.addr(), s.User, time.Second
	mc.TLS = s.clientTLS()
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("tlsdb: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return s, nil
		}
		select {
		case werr := <-s.exit:
			text, _ := os.ReadFile(log)
			return nil, fmt.Errorf("tlsdb: mariadbd on port %d exited (%v): %s", port, werr, text)
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("tlsdb: mariadbd on port %d does not answer over TLS: %w", port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// clientTLS trusts the CA.
func (s *Server) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(s.Certs.CA); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// stop kills mariadbd: its data directory goes with the test, so a clean
// shutdown (seconds of flushing) would buy nothing.
func (s *Server) stop() {
	_ = s.cmd.Process.Kill()
	<-s.exit
}
