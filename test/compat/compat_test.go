// Package compat_test checks wire compatibility with the original Node
// eventsource: it starts the server in-process on a fresh database and runs
// flows.js, which speaks to it with the npm redis client only, as a Node
// service of the original's time did.
package compat_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
)

// TestNodeReadmeFlows runs the example flows of the original README against
// the server: persist one document and an array, fetch with "accepted", fetch
// with the legacy fetch-next acknowledgement, and end a stream from the client.
func TestNodeReadmeFlows(t *testing.T) {
	requireNode(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, dbName := testserver.Database(t, "es_compat")
	prefix := "compat-" + testserver.RandomHex(6) + "-"
	cfg := testserver.Config(t, dbName, prefix)
	srv := testserver.Start(t, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))

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

	shutCtx, shutCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer shutCancel()
	if err := srv.Shutdown(shutCtx); err != nil {
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
