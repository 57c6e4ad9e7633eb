package mysqlstore

import (
	"context"
	"database/sql"

	"github.com/eventsource/eventsource/sqlbuild"
)

// Store runs the statements of the actors on one pool.
type Store struct {
	DB *sql.DB
}

// ReadPage reads one page of s.
func (st Store) ReadPage(ctx context.Context, s *sqlbuild.Select, p sqlbuild.Page, decodeJSON bool) (Page, error) {
	query, args, err := s.PageSQL(p)
	if err != nil {
		return Page{}, err
	}
	return ReadPage(ctx, st.DB, query, args, RowOptions{DecodeJSON: decodeJSON, Table: s.Table})
}
