package mysqlstore

import (
	"context"
	"database/sql"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Store runs the statements of the actors on one pool.
type Store struct {
	DB *sql.DB
}

// Snapshot reads the highest key of the table of s.
func (st Store) Snapshot(ctx context.Context, s *sqlbuild.Select) (int64, error) {
	return Snapshot(ctx, st.DB, s)
}

// ReadPage reads one page of s.
func (st Store) ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) ([]messages.Row, int64, error) {
	query, args, err := s.PageSQL(p)
	if err != nil {
		return nil, 0, err
	}
	page, err := ReadPage(ctx, st.DB, query, args, RowOptions{DecodeJSON: decodeJSON, Table: s.Table})
	return page.Rows, page.LastKey, err
}
