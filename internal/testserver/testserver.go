// Package testserver starts real eventsource servers for tests: a fresh
// database on the local MariaDB, request channels and a Redis client name
// no other test shares, and shutdown when the test ends. Tests of every
// package run in parallel on the same Redis and MariaDB, so nothing here
// is shared between calls.
package testserver

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// env is the default configuration with the MYSQL_* and REDIS_* variables
// applied, so tests follow the same settings as the server.
func env(tb testing.TB) server.Config {
	tb.Helper()
	cfg := server.DefaultConfig()
	if err := cfg.FromEnv(os.Getenv); err != nil {
		tb.Fatalf("environment: %v", err)
	}
	return cfg
}

// Database migrates a fresh database named prefix_<hex> and drops it when
// the test ends. The returned pool has no default database.
func Database(tb testing.TB, prefix string) (*sql.DB, string) {
	tb.Helper()
	storeCfg := env(tb).MySQL.StoreConfig()
	storeCfg.Database, storeCfg.PoolSize = "", 2
	db, err := mysqlstore.Open(storeCfg)
	if err != nil {
		tb.Fatal(err)
	}
	name := prefix + "_" + RandomHex(6)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := mysqlstore.Migrate(ctx, db, name); err != nil {
		tb.Fatalf("migrate %s (is MariaDB up? run scripts/services.sh): %v", name, err)
	}
	return db, name
}

// Config is the server configuration for database dbName, with request
// channels prefix+"fetch", prefix+"persist", prefix+"fetch-next", commit
// channel prefix+"committed" and a Redis client name of its own.
func Config(tb testing.TB, dbName, prefix string) server.Config {
	tb.Helper()
	cfg := env(tb)
	cfg.MySQL.Database = dbName
	cfg.MySQL.PoolSize = 4
	cfg.Tables = []string{dbName + ".event"}
	cfg.FetchChannel, cfg.PersistChannel, cfg.FetchNextChannel = prefix+"fetch", prefix+"persist", prefix+"fetch-next"
	cfg.CommitChannel = prefix + "committed"
	cfg.FinishedChannel = prefix + "finished"
	cfg.Redis.ClientName = "es-test-" + RandomHex(4)
	cfg.ShutdownGrace = 2 * time.Second
	return cfg
}

// Start starts a server and shuts it down when the test ends. A nil logger
// discards the server's logs.
func Start(tb testing.TB, cfg server.Config, logger *slog.Logger, opts ...server.Option) *server.Server {
	tb.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(cfg, logger, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return srv
}
