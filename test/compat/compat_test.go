// Package compat_test checks wire compatibility with the original Node
// eventsource: it starts the server in-process on a fresh database and runs
// flows.js, which speaks to it with the npm redis client only, as a Node
// service of the original's time did.
package compat_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// TestNodeReadmeFlows runs the example flows of the original README against
// the server: persist one document and an array, fetch with "accepted", fetch
// with the legacy fetch-next acknowledgement, and end a stream from the client.
func TestNodeReadmeFlows(t *testing.T) {
	requireNode(t)

	cfg := server.DefaultConfig()
	if err := cfg.FromEnv(os.Getenv); err != nil {
		t.Fatalf("environment: %v", err)
	}
	suffix := randomHex(t)
	dbName := "es_compat_" + suffix
	prefix := "compat-" + suffix + "-"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	db, err := mysqlstore.Open(mysqlstore.Config{
		Host: cfg.MySQL.Host, Port: cfg.MySQL.Port, User: cfg.MySQL.User, Password: cfg.MySQL.Password,
		Charset: "utf8mb4", PoolSize: 2,
	})
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := mysqlstore.Migrate(ctx, db, dbName); err != nil {
		t.Fatalf("migrate %s (is MariaDB up? run scripts/services.sh): %v", dbName, err)
	}
	t.Cleanup(func() {
		dropCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(dropCtx, "DROP DATABASE IF EXISTS `"+dbName+"`"); err != nil {
			t.Errorf("drop database %s: %v", dbName, err)
		}
	})

	cfg.MySQL.Database = dbName
	cfg.Tables = []string{dbName + ".event"}
	cfg.FetchChannel = prefix + "fetch"
	cfg.PersistChannel = prefix + "persist"
	cfg.FetchNextChannel = prefix + "fetch-next"
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("server start: %v", err)
	}
	var shutdownOnce sync.Once
	var shutdownErr error
	shutdown := func() error {
		shutdownOnce.Do(func() {
			shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			shutdownErr = srv.Shutdown(shutCtx)
		})
		return shutdownErr
	}
	t.Cleanup(func() { _ = shutdown() }) // runs before the database is dropped

	cmd := exec.CommandContext(ctx, "node", "flows.js")
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+redisURL(cfg.Redis),
		"FETCH_CHANNEL="+cfg.FetchChannel,
		"PERSIST_CHANNEL="+cfg.PersistChannel,
		"FETCH_NEXT_CHANNEL="+cfg.FetchNextChannel,
		"PID="+prefix+"pid",
	)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("node flows.js exited with %d:\n%s", exit.ExitCode(), out)
		}
		t.Fatalf("node flows.js: %v\n%s", err, out)
	}
	t.Logf("node flows.js:\n%s", out)

	if err := shutdown(); err != nil {
		t.Errorf("server shutdown: %v", err)
	}
}

// requireNode skips the test when node or the npm dependencies are missing,
// except in CI (CI set), where a skipped compatibility test would hide a gap:
// there it fails.
func requireNode(t *testing.T) {
	t.Helper()
	var reason string
	if _, err := exec.LookPath("node"); err != nil {
		reason = "node is not on PATH (install Debian's nodejs and npm; make test does it)"
	} else if _, err := os.Stat("node_modules"); err != nil {
		reason = "test/compat/node_modules is missing (run npm ci in test/compat; make test does it)"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and the compatibility test cannot run: %s", reason)
	}
	t.Skipf("skipping the Node compatibility test: %s", reason)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// redisURL is the redis:// address of c for the npm redis client.
func redisURL(c server.RedisConfig) string {
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.Password != "" {
		u.User = url.UserPassword("", c.Password)
	}
	if c.DB != 0 {
		u.Path = "/" + strconv.Itoa(c.DB)
	}
	return u.String()
}
