package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/internal/tlsdb"
	"github.com/eventsource/eventsource/internal/tlsredis"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

func TestServeGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user, account string
	}{
		{defaultServeUser, "'eventsource'@'%'"},
		{"app", "'app'@'%'"},
		{"app@10.0.%", "'app'@'10.0.%'"},
		{"`app`@`localhost`", "'app'@'localhost'"},
		{`"o'neil"@'%'`, `'o''neil'@'%'`},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			text := serveGrants("shop", tt.user)
			for _, want := range []string{
				"GRANT SELECT, INSERT ON `shop`.`event` TO " + tt.account + ";\n",
				"GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.`eventsource_consumer` TO " + tt.account + ";\n",
				"GRANT SHOW VIEW ON `shop`.* TO " + tt.account + ";\n",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("serveGrants lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "GRANT SELECT, INSERT ON `shop`.`event_stream`") || strings.Count(text, "\nGRANT ") != 3 {
				t.Errorf("serveGrants grants more than the two tables and SHOW VIEW:\n%s", text)
			}
		})
	}
}

// tlsServerConfig is a server configuration on the test's database dbName
// (of the local MariaDB) and on the TLS Redis rs, as its ACL user.
func tlsServerConfig(t *testing.T, rs *tlsredis.Server, dbName, prefix string) server.Config {
	cfg := testserver.Config(t, dbName, prefix)
	cfg.Redis.Cluster = nil
	cfg.Redis.Host, cfg.Redis.Port, cfg.Redis.DB = rs.Host, rs.Port, 0
	cfg.Redis.Username, cfg.Redis.Password = tlsredis.Username, tlsredis.Password
	cfg.Redis.TLS = server.RedisTLS{Enabled: true, CA: rs.Certs.CA, Cert: rs.Certs.ClientCert, Key: rs.Certs.ClientKey}
	return cfg
}

// persist, fetch and replicas reach a Redis that requires TLS, a client
// certificate and an ACL user, by flags or by REDIS_URL and REDIS_TLS_*.
func TestClientCommandsOverTLS(t *testing.T) {
	t.Parallel()
	rs := tlsredis.Start(t)
	_, dbName := testserver.Database(t, "es_eventsource")
	prefix := "es-eventsource-tls:" + randomHex(6) + ":"
	testserver.Start(t, tlsServerConfig(t, rs, dbName, prefix), nil)
	pid := "tls-" + randomHex(4)

	flags := []string{"--redis", rs.Addr(), "--redis-tls", "--redis-tls-ca", rs.Certs.CA,
		"--redis-tls-cert", rs.Certs.ClientCert, "--redis-tls-key", rs.Certs.ClientKey}
	acl := []string{"REDIS_USERNAME=" + tlsredis.Username, "REDIS_PASSWORD=" + tlsredis.Password}
	res := runBinary(t, acl, append([]string{"persist", "--persist-channel", prefix + "persist",
		"--pid", pid, "--domain", "tls", "--name", "created", "--data", `{"n":1}`}, flags...)...)
	if res.code != 0 || !strings.Contains(res.stdout, `"affectedRows":1`) {
		t.Fatalf("persist with TLS flags: exit status %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	url := []string{"REDIS_URL=rediss://" + tlsredis.Username + ":" + tlsredis.Password + "@" + rs.Addr(),
		"REDIS_TLS_CA=" + rs.Certs.CA, "REDIS_TLS_CERT=" + rs.Certs.ClientCert, "REDIS_TLS_KEY=" + rs.Certs.ClientKey}
	res = runBinary(t, url, "fetch", "--fetch-channel", prefix+"fetch", "--pid", pid, "--timeout", "20s")
	if res.code != 0 || !strings.Contains(res.stdout, `"name":"created"`) {
		t.Fatalf("fetch by REDIS_URL: exit status %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	env := append([]string{"REDIS_HOST=" + rs.Host, "REDIS_PORT=" + strconv.Itoa(rs.Port), "REDIS_TLS=true",
		"REDIS_TLS_CA=" + rs.Certs.CA, "REDIS_TLS_CERT=" + rs.Certs.ClientCert, "REDIS_TLS_KEY=" + rs.Certs.ClientKey}, acl...)
	res = runBinary(t, env, "replicas", "--fetch-channel", prefix+"fetch", "--json")
	if res.code != 0 || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("replicas by REDIS_TLS*: exit status %d, stdout %q (want one server)\nstderr: %s", res.code, res.stdout, res.stderr)
	}

	res = runBinary(t, nil, "replicas", "--redis-tls-ca", rs.Certs.CA)
	if res.code != 2 || !strings.Contains(res.stderr, "REDIS_TLS is off") {
		t.Fatalf("a CA without --redis-tls: exit status %d\nstderr: %s\nwant a usage error", res.code, res.stderr)
	}
}

// On a MariaDB that requires TLS, migrate (over TLS) prints grants that
// are all serve needs: a server whose MySQL user has only them persists
// (the version trigger writing event_stream), answers a retry and a
// conflict, fetches, and keeps a durable consumer.
func TestMigrateGrantsAreEnoughForServe(t *testing.T) {
	t.Parallel()
	my := tlsdb.Start(t)
	dbName := "es_grants_" + randomHex(4)
	user := "es_serve_" + randomHex(3)
	env := []string{"MYSQL_HOST=" + my.Host, "MYSQL_PORT=" + strconv.Itoa(my.Port), "MYSQL_USER=" + my.User,
		"MYSQL_DATABASE=" + dbName, "MYSQL_TLS=custom", "MYSQL_TLS_CA=" + my.Certs.CA}
	res := runBinary(t, env, "migrate", "--serve-user", user+"@%")
	if res.code != 0 {
		t.Fatalf("migrate over TLS: exit status %d\nstderr: %s", res.code, res.stderr)
	}
	var grants []string
	for line := range strings.SplitSeq(res.stdout, "\n") {
		if strings.HasPrefix(line, "GRANT ") {
			grants = append(grants, strings.TrimSuffix(line, ";"))
		}
	}
	if len(grants) != 3 {
		t.Fatalf("migrate printed %d GRANT statements, want 3:\n%s", len(grants), res.stdout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root, err := mysqlstore.Open(mysqlstore.Config{Host: my.Host, Port: my.Port, User: my.User, TLS: "custom", TLSCA: my.Certs.CA, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, stmt := range append([]string{"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw' REQUIRE SSL"}, grants...) {
		if _, err := root.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	prefix := "es-eventsource-grants:" + randomHex(6) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.MySQL.Host, cfg.MySQL.Port, cfg.MySQL.User, cfg.MySQL.Password = my.Host, my.Port, user, "pw"
	cfg.MySQL.TLS, cfg.MySQL.TLSCA = "custom", my.Certs.CA
	srv := testserver.Start(t, cfg, nil)
	opts, err := cfg.Redis.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts.ClientName = ""
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(cfg.FetchChannel), client.WithPersistChannel(cfg.PersistChannel), client.WithReason())
	defer c.Close()

	doc := client.Document{PID: "p1", Domain: "grants", Name: "created", Data: 1, EventID: "e1"}
	first, err := c.PersistExpecting(ctx, client.Expectation{Domain: "grants", PID: "p1", Version: 0}, doc)
	if err != nil {
		t.Fatalf("persist as %s (the trigger writes event_stream as its definer): %v", user, err)
	}
	again, err := c.PersistExpecting(ctx, client.Expectation{Domain: "grants", PID: "p1", Version: 0}, doc)
	if err != nil || !again.Duplicate || again.InsertID != first.InsertID {
		t.Fatalf("retry of event id e1: %+v %v, want the first reply as a duplicate", again, err)
	}
	_, err = c.PersistExpecting(ctx, client.Expectation{Domain: "grants", PID: "p1", Version: 0}, client.Document{PID: "p1", Domain: "grants", Name: "again", Data: 2})
	if !errors.Is(err, client.ErrConflict) {
		t.Fatalf("persist expecting version 0 of a stream at 1: %v, want a conflict", err)
	}
	// The catalog knows data for JSON (MariaDB: from its CHECK, which SHOW
	// VIEW on the database makes visible): decoded, it is a number.
	for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"domain":"grants"}}}`, client.WithDecode()) {
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if !strings.Contains(row.String(), `"data":1`) {
			t.Fatalf("fetched %s: data is not JSON to serve", row)
		}
	}
	rows := 0
	for _, err := range c.Fetch(ctx, `{"$select":{"$where":{"domain":"grants"}}}`, client.WithConsumer("mailer")) {
		if err != nil {
			t.Fatalf("fetch as durable consumer: %v", err)
		}
		rows++
	}
	if rows != 1 {
		t.Fatalf("fetched %d rows, want 1", rows)
	}
	consumers := srv.Consumers()
	if list, err := consumers.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("list consumers: %v %v", list, err)
	}
	if err := consumers.Reset(ctx, "mailer", 0); err != nil {
		t.Fatalf("reset consumer: %v", err)
	}
	if err := consumers.Delete(ctx, "mailer"); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}

	// And no more: the stream table is the trigger's alone.
	serve, err := mysqlstore.Open(mysqlstore.Config{Host: my.Host, Port: my.Port, User: user, Password: "pw", TLS: "custom", TLSCA: my.Certs.CA, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Close()
	var n int
	if err := serve.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+dbName+"`.`event_stream`").Scan(&n); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("%s reads event_stream (%d rows, %v): it should have no grant there", user, n, err)
	}
}
