// Package mysql_test checks migrate-user.sql and serve-user.sql on the
// local MariaDB, in the order deploy/README.md gives: the migrate account
// can migrate (twice: the second run reads what the
// first made), and a server logged in as the serve account gets through
// every path that touches MySQL (persists over Redis and HTTP, a retried
// persist, expected versions through the trigger, fetches, a durable
// consumer and the operators' consumer endpoints) without a privilege
// error, while the serve account can change no schema.
package mysql_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/server"
)

// The names the files use, which the test replaces with its own.
const (
	fileDatabase = "`eventsource`."
	fileMigrate  = "'eventsource_migrate'@'10.0.0.%'"
	fileServe    = "'eventsource'@'10.0.0.%'"
	filePassMig  = "'CHANGE-ME-migrate'"
	filePassSrv  = "'CHANGE-ME-serve'"
)

// lockedBuffer collects the server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// statements splits a file into its statements, comments left out.
func statements(t *testing.T, text string) []string {
	t.Helper()
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "--") {
			lines = append(lines, line)
		}
	}
	var out []string
	for s := range strings.SplitSeq(strings.Join(lines, "\n"), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := map[string]string{}
	for _, name := range []string{"migrate-user.sql", "serve-user.sql"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for _, name := range []string{fileDatabase, fileMigrate, filePassMig} {
		if !strings.Contains(files["migrate-user.sql"], name) {
			t.Fatalf("migrate-user.sql no longer names %s: update the test's names", name)
		}
	}
	for _, name := range []string{fileDatabase, fileServe, filePassSrv} {
		if !strings.Contains(files["serve-user.sql"], name) {
			t.Fatalf("serve-user.sql no longer names %s: update the test's names", name)
		}
	}

	// The administrator: whoever the tests log in as (root here).
	base := server.DefaultConfig()
	if err := base.FromEnv(os.Getenv); err != nil {
		t.Fatal(err)
	}
	adminCfg := base.MySQL.StoreConfig()
	adminCfg.Database, adminCfg.PoolSize = "", 2
	admin, err := mysqlstore.Open(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })

	suffix := testserver.RandomHex(5)
	dbName := "es_grants_" + suffix
	migUser, srvUser := "es_gm_"+suffix, "es_gs_"+suffix
	migPass, srvPass := "m-"+testserver.RandomHex(8), "s-"+testserver.RandomHex(8)
	replace := strings.NewReplacer(
		fileDatabase, "`"+dbName+"`.",
		fileMigrate, "'"+migUser+"'@'%'",
		fileServe, "'"+srvUser+"'@'%'",
		filePassMig, "'"+migPass+"'",
		filePassSrv, "'"+srvPass+"'",
	)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, stmt := range []string{
			"DROP DATABASE IF EXISTS `" + dbName + "`",
			"DROP USER IF EXISTS '" + migUser + "'@'%'",
			"DROP USER IF EXISTS '" + srvUser + "'@'%'",
		} {
			if _, err := admin.ExecContext(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	run := func(name string) {
		t.Helper()
		for i, stmt := range statements(t, replace.Replace(files[name])) {
			_, err := admin.ExecContext(ctx, stmt)
			var me *gomysql.MySQLError
			if i == 0 && name == "migrate-user.sql" && errors.As(err, &me) && (me.Number == 1227 || me.Number == 1044) {
				t.Skipf("MYSQL_USER %s may not create accounts, so the grants are not tried: %v", base.MySQL.User, err)
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", name, stmt, err)
			}
		}
	}
	run("migrate-user.sql")

	open := func(user, pass, database string) *sql.DB {
		t.Helper()
		c := base.MySQL.StoreConfig()
		c.User, c.Password, c.Database, c.PoolSize = user, pass, database, 2
		db, err := mysqlstore.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}

	// eventsource migrate, as the migrate account, from nothing; then
	// again, as after an upgrade.
	mig := open(migUser, migPass, "")
	for round := 1; round <= 2; round++ {
		changes, err := mysqlstore.Migrate(ctx, mig, dbName)
		if err != nil {
			t.Fatalf("migrate (run %d) as the migrate account: %v", round, err)
		}
		if round == 2 && len(changes) > 0 {
			t.Errorf("the second migrate changed %q", changes)
		}
	}

	run("serve-user.sql")

	// The serve account changes no schema, no stored event and no stream
	// version.
	srvDB := open(srvUser, srvPass, dbName)
	denied := regexp.MustCompile(`(?i)denied`)
	for _, stmt := range []string{
		"ALTER TABLE `" + dbName + "`.`event` ADD COLUMN x INT",
		"DROP TABLE `" + dbName + "`.`eventsource_consumer`",
		"UPDATE `" + dbName + "`.`event` SET name = 'x'",
		"DELETE FROM `" + dbName + "`.`event`",
		"INSERT INTO `" + dbName + "`.`event_stream` (`domain`, `pid`, `version`) VALUES ('d', 'p', 7)",
		"UPDATE `" + dbName + "`.`event_stream` SET `version` = 7",
		"CREATE TABLE `" + dbName + "`.`x` (a INT)",
	} {
		if _, err := srvDB.ExecContext(ctx, stmt); err == nil || !denied.MatchString(err.Error()) {
			t.Errorf("the serve account ran %s: %v", stmt, err)
		}
	}

	// A server logged in as the serve account.
	logs := &lockedBuffer{}
	prefix := "es-grants-" + suffix + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.MySQL.User, cfg.MySQL.Password = srvUser, srvPass
	cfg.Admin = "127.0.0.1:0"
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	t.Cleanup(func() { rdb.Close() })

	// talk sends one request and accepts each row until a terminal; it
	// returns the terminal and the messages before it.
	talk := func(requestChannel, channel, request string) (string, []string) {
		t.Helper()
		ps := rdb.Subscribe(ctx, channel)
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := ps.Channel()
		if err := rdb.Publish(ctx, requestChannel, request).Err(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			select {
			case m := <-msgs:
				switch {
				case m.Payload == `"accepted"`: // our own, heard back
				case m.Payload == `"end"`, m.Payload == `"timeout"`, strings.HasPrefix(m.Payload, `"error"`),
					strings.HasPrefix(m.Payload, `{"error"`):
					return m.Payload, got
				case strings.HasPrefix(m.Payload, `{"fieldCount"`):
					got = append(got, m.Payload) // a persist's reply; "end" follows
				default:
					got = append(got, m.Payload)
					if err := rdb.Publish(ctx, channel, `"accepted"`).Err(); err != nil {
						t.Fatal(err)
					}
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s: no terminal after %q", channel, got)
			}
		}
	}
	request := func(channel, fields string) string {
		return fmt.Sprintf(`{"channel":%q,"reason":true,%s}`, prefix+channel, fields)
	}
	expectEnd := func(what, end string, got []string, rows int) {
		t.Helper()
		if end != `"end"` || len(got) != rows {
			t.Errorf("%s: %d messages %q, then %s; want %d and \"end\"", what, len(got), got, end, rows)
		}
	}

	// Persists over Redis: new events with JSON objects in data (MariaDB
	// shows the serve account the json_valid check), the same again (a
	// retry: the stored ids are read back), and expected versions (checked
	// by the trigger, which writes event_stream as its definer).
	persist := request("p1", `"query":{"$insert":{"$documents":[`+
		`{"eventId":"g-1","pid":"p","domain":"d","name":"a","data":{"n":1}},`+
		`{"eventId":"g-2","pid":"p","domain":"d","name":"b","data":{"n":2}}]}}`)
	end, got := talk(cfg.PersistChannel, prefix+"p1", persist)
	expectEnd("persist", end, got, 1)
	end, got = talk(cfg.PersistChannel, prefix+"p1", persist)
	expectEnd("retried persist", end, got, 1)
	if len(got) == 1 && !strings.Contains(got[0], `"duplicate":true`) {
		t.Errorf("the retried persist was not a duplicate: %s", got[0])
	}
	end, got = talk(cfg.PersistChannel, prefix+"p2", request("p2",
		`"expect":{"domain":"d","pid":"p","version":2},"query":{"$insert":{"$documents":{"pid":"p","domain":"d","name":"c","data":null}}}`))
	expectEnd("persist expecting version 2", end, got, 1)
	end, _ = talk(cfg.PersistChannel, prefix+"p3", request("p3",
		`"expect":{"domain":"d","pid":"p","version":1},"query":{"$insert":{"$documents":{"pid":"p","domain":"d","name":"c","data":null}}}`))
	if !strings.Contains(end, "conflict") {
		t.Errorf("a persist expecting a stale version ended with %s, want a conflict", end)
	}

	// Over HTTP: a persist with If-Match, and a stale one.
	httpBase := "http://" + srv.HTTPAddr().String()
	for ifMatch, want := range map[string]int{"3": http.StatusCreated, "1": http.StatusConflict} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, httpBase+"/events",
			strings.NewReader(`{"pid":"p","domain":"d","name":"h","data":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", ifMatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST /events If-Match: %s: %s %s, want %d", ifMatch, resp.Status, body, want)
		}
	}

	// Fetches: by pid (keyset pages on its index), ordered (keyset on
	// timestamp), and the versions the trigger gave.
	end, got = talk(cfg.FetchChannel, prefix+"f1", request("f1", `"query":{"$select":{"$where":{"pid":"p"}}}`))
	expectEnd("fetch by pid", end, got, 4)
	end, got = talk(cfg.FetchChannel, prefix+"f2", request("f2", `"window":1,"query":{"$select":{"$orderBy":{"timestamp":-1},"$limit":2}}`))
	expectEnd("ordered fetch", end, got, 2)
	end, got = talk(cfg.FetchChannel, prefix+"f3", request("f3", `"query":{"$select":{"$columns":["version"],"$where":{"domain":"d","pid":"p"},"$orderBy":{"id":1}}}`))
	expectEnd("fetch of versions", end, got, 4)
	if strings.Join(got, ",") != `{"version":1},{"version":2},{"version":3},{"version":4}` {
		t.Errorf("versions %q, want 1 to 4", got)
	}

	// A durable consumer: created, held, its position recorded on "end".
	consumer := request("c1", `"consumer":"grants","query":{"$select":{"$columns":["id","name"],"$where":{"domain":"d"}}}`)
	end, got = talk(cfg.FetchChannel, prefix+"c1", consumer)
	expectEnd("consumer fetch", end, got, 4)
	end, got = talk(cfg.FetchChannel, prefix+"c1", consumer)
	expectEnd("consumer fetch after its end", end, got, 0)

	// The operators' endpoints: list (with the lag), reset, delete.
	adminBase := "http://" + srv.AdminAddr().String()
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/consumers", "", http.StatusOK},
		{http.MethodPost, "/consumers/grants/reset", `{"position":1}`, http.StatusOK},
		{http.MethodDelete, "/consumers/grants", "", http.StatusNoContent},
		{http.MethodGet, "/readyz", "", http.StatusOK},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, adminBase+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %s %s, want %d", c.method, c.path, resp.Status, body, c.want)
		}
	}

	// Nothing the server did in the background (lease renewals, the
	// followers' reads of the highest id) was refused either.
	if m := regexp.MustCompile(`(?i).*(command denied|access denied|privilege).*`).FindString(logs.String()); m != "" {
		t.Errorf("the server logged a privilege error: %s", m)
	}
}
