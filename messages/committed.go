package messages

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DefaultCommitChannel is the reserved Redis channel on which every server
// announces the events it committed.
const DefaultCommitChannel = "eventsource:committed"

// DefaultFinishedChannel is the reserved Redis channel on which every
// server announces the end of each response channel's claim; the payload is
// the channel's name. Sent by the script that publishes a terminal,
// received by every server's router; on the wire.
const DefaultFinishedChannel = "eventsource:finished"

// Committed names the rows one commit added to one table, as inclusive id
// ranges in commit order. Sent by the server that committed (whichever side,
// Redis or HTTP, asked for the persist), received by the HTTP gateway of
// every server on the same Redis, which reads those rows once and fans them
// out to its SSE subscribers; on the wire, on the commit channel:
//
//	{"table": "eventsource.event", "ranges": [[12, 14], [15, 15]]}
type Committed struct {
	Table  string     `json:"table"`
	Ranges [][2]int64 `json:"ranges,omitempty"`
	// Uncertain, with no ranges, says that rows may have been committed
	// to Table whose ids are not known (a persist's connection died while
	// it committed): a listener reads the table again to know.
	Uncertain bool `json:"uncertain,omitempty"`
}

// MaxCommittedRanges bounds the ranges a notification may carry: a batch
// has at most a few hundred requests, one range each.
const MaxCommittedRanges = 4096

// Encode writes the notification.
func (c Committed) Encode() []byte {
	b, _ := json.Marshal(c) // strings and integers always encode
	return b
}

// DecodeCommitted reads a notification, refusing one that names no table,
// holds an empty or reversed range, or too many of them.
func DecodeCommitted(payload []byte) (Committed, error) {
	var c Committed
	if err := json.Unmarshal(payload, &c); err != nil {
		return Committed{}, fmt.Errorf("decode commit notification: %w", err)
	}
	switch {
	case c.Table == "":
		return Committed{}, errors.New("commit notification names no table")
	case c.Uncertain && len(c.Ranges) > 0:
		return Committed{}, errors.New("an uncertain commit notification names ids")
	case len(c.Ranges) == 0 && !c.Uncertain:
		return Committed{}, errors.New("commit notification names no ids")
	case len(c.Ranges) > MaxCommittedRanges:
		return Committed{}, fmt.Errorf("commit notification has %d ranges, more than %d", len(c.Ranges), MaxCommittedRanges)
	}
	for _, r := range c.Ranges {
		if r[0] <= 0 || r[1] < r[0] {
			return Committed{}, fmt.Errorf("commit notification range [%d, %d] is not a range of ids", r[0], r[1])
		}
	}
	return c, nil
}

// Count is the number of ids in c's ranges.
func (c Committed) Count() int64 {
	var n int64
	for _, r := range c.Ranges {
		n += r[1] - r[0] + 1
	}
	return n
}
