package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/cursor"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Store runs the statements of the actors on one pool.
type Store struct {
	DB *sql.DB
	// Statements, if not nil, runs page queries as cached prepared
	// statements (one exchange per page instead of three).
	Statements *Statements
}

// ReadPage reads one page of s as values (cursor.Page.Rows).
func (st Store) ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (cursor.Page, error) {
	return st.read(ctx, s, p, RowOptions{DecodeJSON: decodeJSON, Table: s.Table, Keys: p.Keys})
}

// ReadPayloads reads one page of s as the rows' JSON (cursor.Page.Payloads): what a
// stream publishes.
func (st Store) ReadPayloads(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (cursor.Page, error) {
	return st.read(ctx, s, p, RowOptions{DecodeJSON: decodeJSON, Table: s.Table, Encode: true, Rows: p.Size, Keys: p.Keys})
}

func (st Store) read(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, opts RowOptions) (cursor.Page, error) {
	query, args, err := s.PageSQL(p)
	if err != nil {
		return cursor.Page{}, err
	}
	var q Querier = st.DB
	if st.Statements != nil {
		q = st.Statements
	}
	page, err := ReadPage(ctx, q, query, args, opts)
	if err != nil && s.Seeks(p) != "" && indexGone(err) {
		// The index the catalog saw was dropped or renamed: read without
		// naming it, slower but right, and say so, so that the stream's
		// later pages do not try it again.
		p.NoSeek = true
		page, err = st.read(ctx, s, p, opts)
		page.SeekGone = true
	}
	return page, err
}

// ChooseSeek asks MySQL's plan for page p of s which index it reads, and
// returns it if it is one of the select's SeekChoices: the stream's later
// pages then seek on it as a range from the last key. MySQL's own plan for
// such a page (say {"pid": "x", "domain": "d"}, with an index on pid and
// one on domain) looks the equalities up in the index and filters the
// key, which reads every earlier row of the stream again on each page; its
// choice of index is still the one its statistics favour. "" leaves the
// plan to MySQL: no choices, a plan on no single index, or a failed
// EXPLAIN (then the page query itself reports what is wrong).
func (st Store) ChooseSeek(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page) (string, error) {
	choices := s.SeekChoices()
	if len(choices) == 0 {
		return "", nil
	}
	p.Seek, p.NoSeek = "", true
	query, args, err := s.PageSQL(p)
	if err != nil {
		return "", err
	}
	var plan []byte
	if err := st.DB.QueryRowContext(ctx, "EXPLAIN FORMAT=JSON "+query, args...).Scan(&plan); err != nil {
		return "", fmt.Errorf("explain page: %w", err)
	}
	var tree any
	if err := json.Unmarshal(plan, &tree); err != nil {
		return "", fmt.Errorf("explain page: %w", err)
	}
	accesses := tableAccesses(tree, nil)
	if len(accesses) != 1 {
		return "", nil
	}
	key, _ := accesses[0]["key"].(string)
	switch accesses[0]["access_type"] {
	case "ref", "range":
		if slices.Contains(choices, key) {
			return key, nil
		}
	}
	return "", nil
}

// tableAccesses collects the table accesses ({"access_type": ...}) of an
// EXPLAIN FORMAT=JSON document.
func tableAccesses(v any, into []map[string]any) []map[string]any {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["access_type"]; ok {
			return append(into, v)
		}
		for _, child := range v {
			into = tableAccesses(child, into)
		}
	case []any:
		for _, child := range v {
			into = tableAccesses(child, into)
		}
	}
	return into
}

// indexGone reports MySQL's "Key 'x' doesn't exist in table 'y'".
func indexGone(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == 1176
}
