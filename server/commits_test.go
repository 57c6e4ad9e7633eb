package server

import (
	"fmt"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

func TestCommitNotes(t *testing.T) {
	events := &sqlbuild.Table{Schema: "es", Name: "event", Key: "id"}
	other := &sqlbuild.Table{Schema: "es", Name: "other", Key: "id"}
	added := func(t *sqlbuild.Table, first, last int64) mysqlstore.Committed {
		return mysqlstore.Committed{Table: t, First: first, Last: last}
	}
	// Every other id, as rows inserted one by one under an increment of 2.
	var spread []mysqlstore.Committed
	for i := range messages.MaxCommittedRanges + 3 {
		spread = append(spread, added(events, int64(1+2*i), int64(1+2*i)))
	}
	tests := []struct {
		name      string
		committed []mysqlstore.Committed
		want      []string // per notification: table, ranges
	}{
		{"consecutive requests merge", []mysqlstore.Committed{added(events, 1, 3), added(events, 4, 4), added(events, 5, 9)},
			[]string{"es.event [[1 9]]"}},
		{"a gap starts a range", []mysqlstore.Committed{added(events, 1, 3), added(events, 5, 5)},
			[]string{"es.event [[1 3] [5 5]]"}},
		{"one notification per table", []mysqlstore.Committed{added(events, 1, 1), added(other, 1, 2), added(events, 2, 2)},
			[]string{"es.event [[1 2]]", "es.other [[1 2]]"}},
		{"too many ranges for one notification", spread,
			[]string{fmt.Sprintf("es.event %d ranges from 1", messages.MaxCommittedRanges), fmt.Sprintf("es.event [[%d %[1]d] [%d %[2]d] [%d %[3]d]]", 1+2*messages.MaxCommittedRanges, 3+2*messages.MaxCommittedRanges, 5+2*messages.MaxCommittedRanges)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes := commitNotes(tt.committed)
			var got []string
			for _, n := range notes {
				if _, err := messages.DecodeCommitted(n.Encode()); err != nil {
					t.Errorf("a gateway refuses the notification: %v", err)
				}
				if len(n.Ranges) > 8 {
					got = append(got, fmt.Sprintf("%s %d ranges from %d", n.Table, len(n.Ranges), n.Ranges[0][0]))
					continue
				}
				got = append(got, fmt.Sprintf("%s %v", n.Table, n.Ranges))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
