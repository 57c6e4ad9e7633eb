package mysqlstore

import (
	"context"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// A persist refused by MySQL itself did not commit; one whose connection
// died, or whose deadline passed, may have.
func TestMayHaveCommitted(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"duplicate key", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{"wrapped refusal", fmt.Errorf("commit persist batch of 3: %w", &mysql.MySQLError{Number: 1213}), false},
		{"connection lost", mysql.ErrInvalidConn, true},
		{"connection killed", &mysql.MySQLError{Number: 1927, Message: "Connection was killed"}, true},
		{"query interrupted", fmt.Errorf("insert: %w", &mysql.MySQLError{Number: 1317}), true},
		{"server shut down", &mysql.MySQLError{Number: 1053}, true},
		{"bad connection", driver.ErrBadConn, true},
		{"deadline", fmt.Errorf("commit: %w", context.DeadlineExceeded), true},
	} {
		if got := mayHaveCommitted(tc.err); got != tc.want {
			t.Errorf("%s: mayHaveCommitted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
