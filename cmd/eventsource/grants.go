package main

import (
	"flag"
	"fmt"
	"strings"
)

// defaultServeUser is the account serveGrants names unless --serve-user
// says otherwise.
const defaultServeUser = "'eventsource'@'%'"

// bindServeUser adds migrate's --serve-user.
func bindServeUser(fs *flag.FlagSet) *string {
	return fs.String("serve-user", defaultServeUser, "MySQL `account` ('user'@'host', user@host or user) whose least privileges for serve are printed after migrating")
}

// serveGrants are the least privileges that `eventsource serve` needs on
// database, as GRANT statements to user, with what they leave out and why:
//
//   - the event table: SELECT (fetches, follows' frontier, the consumer
//     lag, the answers to retried event ids, read LOCK IN SHARE MODE) and
//     INSERT (persists);
//   - eventsource_consumer: SELECT (FOR UPDATE too), INSERT (ON DUPLICATE
//     KEY UPDATE), UPDATE and DELETE, for durable consumers;
//   - nothing on event_stream: the trigger event_version, which numbers
//     each insert there, runs with the privileges of its DEFINER, the
//     account that created it (migrate's), whatever the inserting account
//     may do; so that account must outlive the trigger;
//   - SHOW VIEW on the database, for the catalog: information_schema shows
//     an account the columns and keys of the tables it has privileges on,
//     but MariaDB shows CHECK constraints, where its JSON columns are
//     json_valid(`data`) checks on LONGTEXT, only to an account with a
//     table privilege on the whole database (MySQL's JSON type needs
//     none). Without one, serve takes data for text. SHOW VIEW reads and
//     changes no data.
func serveGrants(database, user string) string {
	account := quoteAccount(user)
	db := "`" + strings.ReplaceAll(database, "`", "``") + "`"
	var b strings.Builder
	fmt.Fprintf(&b, "\n-- Least privileges of eventsource serve on %s, for its MYSQL_USER %s:\n", db, account)
	fmt.Fprintf(&b, "-- CREATE USER IF NOT EXISTS %s IDENTIFIED BY '<password>' REQUIRE SSL;\n", account)
	fmt.Fprintf(&b, "GRANT SELECT, INSERT ON %s.`event` TO %s;\n", db, account)
	fmt.Fprintf(&b, "GRANT SELECT, INSERT, UPDATE, DELETE ON %s.`eventsource_consumer` TO %s;\n", db, account)
	b.WriteString("-- MariaDB shows the CHECK (json_valid) that makes a column JSON only to accounts with a privilege on the whole\n")
	b.WriteString("-- database: without one, serve reads data as text. SHOW VIEW reads and changes no data (MySQL needs none).\n")
	fmt.Fprintf(&b, "GRANT SHOW VIEW ON %s.* TO %s;\n", db, account)
	fmt.Fprintf(&b, "-- Nothing on %s.`event_stream`: the trigger event_version keeps it with the rights of its DEFINER,\n", db)
	b.WriteString("-- the account that ran this migrate, which must keep existing.\n")
	b.WriteString("-- Other tables given to serve --tables need SELECT; INSERT to persist into them; UPDATE if in --writable-tables.\n")
	return b.String()
}

// quoteAccount turns 'user'@'host', user@host or user (host '%') into a
// quoted account name.
func quoteAccount(s string) string {
	user, host := s, "%"
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, host = s[:i], s[i+1:]
	}
	unquote := func(v string) string {
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"' || v[0] == '`') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		return v
	}
	quote := func(v string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
	}
	return quote(unquote(user)) + "@" + quote(unquote(host))
}
