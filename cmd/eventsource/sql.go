package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

func init() {
	register("sql", "print the SQL and bound values the server would run for a query", runSQL)
}

// statement is what `eventsource sql` prints.
type statement struct {
	SQL    string `json:"sql"`
	Values []any  `json:"values"`
	// Page is the first page a stream reads, with its snapshot bound as a
	// placeholder value (fetch only, on a table with a key).
	Page       string `json:"page,omitempty"`
	PageValues []any  `json:"page_values,omitempty"`
}

func runSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := configFromEnv(stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("sql", "--query '{\"$select\":{...}}' [flags]", stderr)
	query := fs.String("query", "", "the query: a JSON object with $select or $insert")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	explain := fs.Bool("explain", false, "also print MySQL's EXPLAIN of the query")
	offline := fs.Bool("offline", false, "do not connect: show the SQL for the schema eventsource migrate creates")
	tables := fs.String("tables", strings.Join(cfg.Tables, ","), "allowed tables, as the server's --tables")
	pageSize := fs.Int("page-size", cfg.PageSize, "rows per page, as the server's --page-size")
	readDomains := fs.String("read-domains", "", "as for a token that may read only these domains (comma-separated): the SQL the HTTP gateway runs for it")
	writeDomains := fs.String("write-domains", "", "as for a token that may write only these domains (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *query == "" {
		fmt.Fprintln(stderr, "eventsource sql: --query is required")
		fs.Usage()
		return errUsage
	}
	raw, err := parseQueryArg("query", *query)
	if err != nil {
		return reportArgError(fs, err)
	}
	if *explain && *offline {
		return reportArgError(fs, &argError{"explain", "needs a database: not with --offline"})
	}
	names := strings.Split(*tables, ",")
	for _, name := range names {
		if _, _, err := sqlbuild.SplitTableName(name); err != nil {
			return reportArgError(fs, &argError{"tables", err.Error()})
		}
	}

	// The SQL depends on the live tables (their indexes above all), so
	// build against the live catalog when the database is reachable, as
	// the server does; without one, against the schema migrate creates.
	var db *sql.DB
	if !*offline {
		if db, err = reachDatabase(ctx, cfg.MySQL.StoreConfig()); err != nil {
			if *explain {
				return err
			}
			fmt.Fprintf(stderr, "eventsource sql: no database reachable: showing the SQL for the schema eventsource migrate creates (%v)\n", err)
		} else {
			defer db.Close()
		}
	}
	catalog, err := sqlCatalog(ctx, db, names, cfg.WritableTables, *explain, stderr)
	if err != nil {
		return err
	}
	st, err := buildStatement(sqlbuild.NewBuilder(catalog, cfg.Query), raw, uint64(*pageSize),
		domainScope(catalog.Default(), *readDomains, *writeDomains))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		printStatement(stdout, st)
	}
	if *explain {
		return printExplain(ctx, stdout, db, st)
	}
	return nil
}

// reachDatabase opens a connection to MySQL and checks that it answers,
// within a few seconds. Tables are named with their schema, so it needs no
// default database.
func reachDatabase(ctx context.Context, storeCfg mysqlstore.Config) (*sql.DB, error) {
	storeCfg.Database, storeCfg.PoolSize = "", 1
	db, err := mysqlstore.Open(storeCfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to mysql %s:%d: %w", storeCfg.Host, storeCfg.Port, err)
	}
	return db, nil
}

// sqlCatalog is the catalog of the allowed tables: their live columns and
// indexes when db is set, as the server loads them; the schema migrate
// creates for a table the database lacks (saying so on stderr, unless
// explain needs the table), and for every table when db is nil.
func sqlCatalog(ctx context.Context, db *sql.DB, names, writable []string, explain bool, stderr io.Writer) (*sqlbuild.Catalog, error) {
	list := make([]*sqlbuild.Table, 0, len(names))
	for _, name := range names {
		var t *sqlbuild.Table
		if db != nil {
			live, err := mysqlstore.LoadCatalog(ctx, db, []string{name})
			switch {
			case errors.Is(err, mysqlstore.ErrNoTable) && !explain:
				fmt.Fprintf(stderr, "eventsource sql: no table %s: showing the SQL for the schema eventsource migrate creates\n", name)
			case err != nil:
				return nil, err
			default:
				t = live.Default()
			}
		}
		if t == nil {
			schema, table, err := sqlbuild.SplitTableName(name)
			if err != nil {
				return nil, err
			}
			t = mysqlstore.EventTable(schema)
			t.Name = table
		}
		t.Writable = slices.Contains(writable, t.QualifiedName())
		list = append(list, t)
	}
	return sqlbuild.NewCatalog(list...)
}

// domainScope is the scope of a token limited to domains of the event
// table t: reads, writes or both (an empty list leaves that side whole).
func domainScope(t *sqlbuild.Table, read, write string) sqlbuild.Scope {
	var s sqlbuild.Scope
	name := t.QualifiedName()
	if read != "" {
		s.ReadTables = []string{name}
		s.Read = map[string][]sqlbuild.RowFilter{name: {{Column: "domain", Values: strings.Split(read, ",")}}}
	}
	if write != "" {
		s.WriteTables = []string{name}
		s.Write = map[string][]sqlbuild.RowFilter{name: {{Column: "domain", Values: strings.Split(write, ",")}}}
	}
	return s
}

// buildStatement translates a $select or an $insert, whichever the query
// is, in scope.
func buildStatement(b *sqlbuild.Builder, raw []byte, pageSize uint64, scope sqlbuild.Scope) (statement, error) {
	query, err := b.Parse(raw)
	if err != nil {
		return statement{}, err
	}
	if query.Get("$insert") != nil {
		ins, err := b.Insert(query, scope)
		if err != nil {
			return statement{}, err
		}
		text, values, err := ins.SQL()
		if err != nil {
			return statement{}, err
		}
		return statement{SQL: text, Values: values}, nil
	}
	sel, err := b.Select(query, scope)
	if err != nil {
		return statement{}, err
	}
	text, values, err := sel.SQL()
	if err != nil {
		return statement{}, err
	}
	st := statement{SQL: text, Values: values}
	if sel.Table.Key != "" {
		page := sqlbuild.Page{Snapshot: 1<<63 - 1, Size: pageSize, Offset: sel.Offset}
		if sel.Limit > 0 && sel.Limit < pageSize {
			page.Size = sel.Limit
		}
		if st.Page, st.PageValues, err = sel.PageSQL(page); err != nil {
			return statement{}, err
		}
	}
	return st, nil
}

func printStatement(w io.Writer, st statement) {
	values, _ := json.Marshal(st.Values)
	fmt.Fprintf(w, "%s\n-- values: %s\n", st.SQL, values)
	if st.Page != "" {
		values, _ := json.Marshal(st.PageValues)
		fmt.Fprintf(w, "-- first page of a stream:\n%s\n-- values: %s\n", st.Page, values)
	}
}

// printExplain prints MySQL's EXPLAIN of the statement as a table.
func printExplain(ctx context.Context, w io.Writer, db *sql.DB, st statement) error {
	rows, err := db.QueryContext(ctx, "EXPLAIN "+st.SQL, st.Values...)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "-- explain:")
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("explain: %w", err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = "NULL"
			if v.Valid {
				cells[i] = v.String
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	return errors.Join(tw.Flush())
}
