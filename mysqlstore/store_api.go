package mysqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/sqlbuild"
)

// Store runs the statements of the actors on one pool.
type Store struct {
	DB *sql.DB
	// Statements, if not nil, runs page queries as cached prepared
	// statements (one exchange per page instead of three).
	Statements *Statements
}

// ReadPage reads one page of s as values (Page.Rows).
func (st Store) ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (Page, error) {
	return st.read(ctx, s, p, RowOptions{DecodeJSON: decodeJSON, Table: s.Table})
}

// ReadPayloads reads one page of s as the rows' JSON (Page.Payloads): what a
// stream publishes.
func (st Store) ReadPayloads(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (Page, error) {
	return st.read(ctx, s, p, RowOptions{DecodeJSON: decodeJSON, Table: s.Table, Encode: true, Rows: p.Size})
}

func (st Store) read(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, opts RowOptions) (Page, error) {
	query, args, err := s.PageSQL(p)
	if err != nil {
		return Page{}, err
	}
	var q Querier = st.DB
	if st.Statements != nil {
		q = st.Statements
	}
	page, err := ReadPage(ctx, q, query, args, opts)
	if err != nil && s.Seeks() && !p.NoSeek && indexGone(err) {
		// The index the catalog saw was dropped or renamed: read without
		// naming it, slower but right.
		p.NoSeek = true
		return st.read(ctx, s, p, opts)
	}
	return page, err
}

// indexGone reports MySQL's "Key 'x' doesn't exist in table 'y'".
func indexGone(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == 1176
}
