package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/internal/tlsredis"
	"github.com/eventsource/eventsource/server"
)

// tlsRedisConfig points cfg at srv: TLS with its CA and client
// certificate, as its ACL user.
func tlsRedisConfig(cfg *server.Config, srv *tlsredis.Server) {
	cfg.Redis.Cluster = nil
	cfg.Redis.Host, cfg.Redis.Port, cfg.Redis.DB = srv.Host, srv.Port, 0
	cfg.Redis.Username, cfg.Redis.Password = tlsredis.Username, tlsredis.Password
	cfg.Redis.TLS = server.RedisTLS{Enabled: true, CA: srv.Certs.CA, Cert: srv.Certs.ClientCert, Key: srv.Certs.ClientKey}
}

// A Redis that speaks only TLS, wants client certificates and has its
// default user off: the server's go-redis client, subscriber and
// publisher all reach it as the ACL user, and a client configured with
// TLS persists and fetches through it.
func TestRedisTLSAndACLUser(t *testing.T) {
	t.Parallel()
	srv := tlsredis.Start(t)
	_, dbName := testserver.Database(t, "es_tls")
	prefix := "tls" + randomHex(4) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	tlsRedisConfig(&cfg, srv)
	testserver.Start(t, cfg, testLogger(t))

	tlsConfig, err := client.TLSConfig(srv.Certs.CA, srv.Certs.ClientCert, srv.Certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: tlsredis.Username, Password: tlsredis.Password, TLSConfig: tlsConfig})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(cfg.FetchChannel), client.WithPersistChannel(cfg.PersistChannel), client.WithReason())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ok, err := c.Persist(ctx, client.Document{PID: "p1", Domain: "tls", Name: "created", Data: map[string]int{"n": 1}})
	if err != nil {
		t.Fatalf("persist over TLS: %v", err)
	}
	if ok.InsertID <= 0 {
		t.Fatalf("persist: insertId %d", ok.InsertID)
	}
	var names []string
	for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"domain":"tls","pid":"p1"}}}`) {
		if err != nil {
			t.Fatalf("fetch over TLS: %v", err)
		}
		var ev struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(row.Raw(), &ev); err != nil {
			t.Fatal(err)
		}
		names = append(names, ev.Name)
	}
	if len(names) != 1 || names[0] != "created" {
		t.Fatalf("fetched %q, want the persisted event", names)
	}

	// Every connection of the server is the ACL user's: its go-redis
	// pool, the subscriber and the publishing lane (redisbus dials its
	// own, with the same options).
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var mine int
	for line := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
		if strings.Contains(line, " name="+cfg.Redis.ClientName+" ") {
			mine++
			if !strings.Contains(line, " user="+tlsredis.Username+" ") {
				t.Errorf("a server connection is not the ACL user's: %s", line)
			}
		}
	}
	if mine < 3 {
		t.Errorf("%d server connections named %s, want at least 3 (go-redis, subscriber, publisher):\n%s", mine, cfg.Redis.ClientName, list)
	}
}

// Without TLS, or without the ACL user, the server does not start.
func TestRedisTLSRefusals(t *testing.T) {
	t.Parallel()
	srv := tlsredis.Start(t)
	_, dbName := testserver.Database(t, "es_tls")
	tests := []struct {
		name   string
		change func(*server.Config)
		want   string // in Start's error
	}{
		{"no TLS", func(c *server.Config) { c.Redis.TLS = server.RedisTLS{} }, "connect to redis"},
		{"no client certificate", func(c *server.Config) { c.Redis.TLS.Cert, c.Redis.TLS.Key = "", "" }, "connect to redis"},
		{"default user", func(c *server.Config) { c.Redis.Username = "" }, "WRONGPASS"},
		{"wrong server name", func(c *server.Config) { c.Redis.TLS.ServerName = "redis.example" }, "not redis.example"},
		{"missing CA file", func(c *server.Config) { c.Redis.TLS.CA += ".missing" }, "read CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testserver.Config(t, dbName, "tls"+randomHex(4)+":")
			tlsRedisConfig(&cfg, srv)
			tt.change(&cfg)
			s, err := server.New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = s.Start(ctx)
			s.Shutdown(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want a Redis connection error with %q", err, tt.want)
			}
		})
	}
}
