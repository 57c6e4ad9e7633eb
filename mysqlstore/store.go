// Package mysqlstore connects to MySQL or MariaDB, applies the schema, reads
// the live catalog of allowed tables, and runs the statements sqlbuild makes.
//
// A *sql.DB is safe for concurrent use; nothing here holds a connection
// beyond one call.
package mysqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/sqlbuild"
)

// Config says how to reach the database.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	Charset  string
	// Database is the default schema of the connections; empty connects to
	// none (migrate connects so, to create it).
	Database string
	// PoolSize bounds open connections (0: 16).
	PoolSize int
	// TLS is how connections speak TLS: "" or "false" not at all, "true"
	// verified with the system's roots, "skip-verify" encrypted but not
	// verified, "custom" verified with TLSCA (a PEM file; empty: the
	// system's roots), presenting the client certificate TLSCert and
	// TLSKey if set (see tls.go).
	TLS                    string
	TLSCA, TLSCert, TLSKey string
	// StatementTimeout, if positive, bounds every statement on the
	// database's side (MariaDB's max_statement_time, MySQL's
	// max_execution_time for selects): a read abandoned at its deadline
	// stops running there too, instead of holding a core until it is done.
	StatementTimeout time.Duration
}

// Open returns a pool that speaks UTC both ways: the session time zone is
// +00:00 so NOW(6) stores UTC, and DATETIME values scan as UTC times, which
// the wire encodes as ISO-8601 with a Z like the original.
func Open(cfg Config) (*sql.DB, error) {
	mc := mysql.NewConfig()
	mc.Net = "tcp"
	mc.Addr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	mc.User = cfg.User
	mc.Passwd = cfg.Password
	mc.DBName = cfg.Database
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.Timeout = 5 * time.Second
	mc.Params = map[string]string{"time_zone": "'+00:00'"}
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("open mysql %s: %w", mc.Addr, err)
	}
	mc.TLS = tlsConfig
	if cfg.Charset != "" {
		if !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(cfg.Charset) {
			return nil, fmt.Errorf("open mysql: charset %q is not a charset name", cfg.Charset)
		}
		if err := mc.Apply(mysql.Charset(cfg.Charset, "")); err != nil {
			return nil, fmt.Errorf("open mysql: charset %q: %w", cfg.Charset, err)
		}
	}
	if cfg.StatementTimeout > 0 {
		name, value, err := statementTimeout(mc, cfg.StatementTimeout)
		if err != nil {
			return nil, err
		}
		mc.Params[name] = value
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("open mysql %s: %w", mc.Addr, err)
	}
	db := sql.OpenDB(connector)
	pool := cfg.PoolSize
	if pool <= 0 {
		pool = 16
	}
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(pool)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// statementTimeout names the session variable that bounds a statement on
// this server, and its value for d: MariaDB and MySQL call it differently,
// so it asks the server which it is.
func statementTimeout(mc *mysql.Config, d time.Duration) (name, value string, err error) {
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return "", "", fmt.Errorf("open mysql %s: %w", mc.Addr, err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), mc.Timeout)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", "", fmt.Errorf("connect to mysql %s: %w", mc.Addr, err)
	}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return "max_statement_time", strconv.FormatFloat(d.Seconds(), 'f', 3, 64), nil
	}
	return "max_execution_time", strconv.FormatInt(d.Milliseconds(), 10), nil
}

//go:embed migrations/*.sql
var migrations embed.FS

var identifier = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// Migrate creates the database, the event table and the table of durable
// consumers if they are missing, and brings an event table of an earlier
// release up to date. It is idempotent and returns what it changed, one
// line per change, for the operator to read (nothing when the tables were
// already current).
func Migrate(ctx context.Context, db *sql.DB, database string) ([]string, error) {
	if !identifier.MatchString(database) {
		return nil, fmt.Errorf("migrate: database name %q is not a plain identifier", database)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+database+"` DEFAULT CHARACTER SET utf8mb4"); err != nil {
		return nil, fmt.Errorf("migrate: create database %s: %w", database, err)
	}
	existed, err := tableExists(ctx, db, database, "event")
	if err != nil {
		return nil, err
	}
	hadConsumers, err := tableExists(ctx, db, database, consumerTable)
	if err != nil {
		return nil, err
	}
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read embedded migrations: %w", err)
	}
	for _, entry := range entries {
		text, err := migrations.ReadFile("migrations/" + entry.Name())
		if err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", entry.Name(), err)
		}
		stmt := strings.ReplaceAll(string(text), "{{db}}", database)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("migrate: apply %s to %s: %w", entry.Name(), database, err)
		}
	}
	var changes []string
	changed, err := allowNullData(ctx, db, database)
	if err != nil {
		return nil, err
	}
	if changed {
		changes = append(changes, fmt.Sprintf("%s.event: data may now hold NULL, as documents without data (or with null) store it", database))
	}
	added, err := addSafeWrites(ctx, db, database, "event")
	if err != nil {
		return nil, err
	}
	if !existed {
		return nil, nil // created as it is now: nothing changed
	}
	changes = append(changes, added...)
	if !hadConsumers {
		changes = append(changes, fmt.Sprintf("%s.%s: created, for durable consumers", database, consumerTable))
	}
	return changes, nil
}

// tableExists reports whether database holds table.
func tableExists(ctx context.Context, db *sql.DB, database, table string) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
		database, table).Scan(&n); err != nil {
		return false, fmt.Errorf("migrate: look for %s.%s: %w", database, table, err)
	}
	return n > 0, nil
}

// allowNullData lets the data column of an event table made by an earlier
// release (data JSON NOT NULL) hold SQL NULL, which the original server
// stored for documents without data. An online rebuild: reads and writes
// go on while it runs, for a time that grows with the table.
func allowNullData(ctx context.Context, db *sql.DB, database string) (bool, error) {
	var nullable string
	err := db.QueryRowContext(ctx, `SELECT IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'event' AND COLUMN_NAME = 'data'`, database).Scan(&nullable)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("migrate: read %s.event.data: %w", database, err)
	case nullable == "YES":
		return false, nil
	}
	stmt := "ALTER TABLE `" + database + "`.`event` MODIFY `data` JSON NULL, ALGORITHM=INPLACE, LOCK=NONE"
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return false, fmt.Errorf("migrate: let %s.event.data hold NULL: %w", database, err)
	}
	return true, nil
}

// EventTable describes the event table that Migrate creates in database,
// indexes included, for tools that build SQL without connecting
// (eventsource sql): as LoadCatalog reads it from a migrated database.
func EventTable(database string) *sqlbuild.Table {
	return &sqlbuild.Table{Schema: database, Name: "event", Key: "id", Columns: []sqlbuild.Column{
		{Name: "timestamp", TimeDigits: 6, Keyset: true}, {Name: "pid", Keyset: true}, {Name: "domain", Keyset: true},
		{Name: "name", Keyset: true}, {Name: "data", JSON: true, Nullable: true}, {Name: "id", Keyset: true},
		{Name: EventIDColumn, Nullable: true, Invisible: true}, {Name: VersionColumn, Nullable: true, Invisible: true},
	}, Indexes: []sqlbuild.Index{
		{Name: "domain", Columns: []string{"domain"}}, {Name: "domain_name", Columns: []string{"domain", "name"}},
		{Name: EventIDColumn, Columns: []string{EventIDColumn}},
		{Name: "name", Columns: []string{"name"}}, {Name: "pid", Columns: []string{"pid"}},
		{Name: "timestamp", Columns: []string{"timestamp"}},
	}}
}
