package mysqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/sqlbuild"
)

// versionConflict reports whether err is the version trigger's refusal,
// and the stream's version it names.
func versionConflict(err error) (current int64, ok bool) {
	var refused *mysql.MySQLError
	if !errors.As(err, &refused) || refused.Number != 1644 || !strings.HasPrefix(refused.Message, ConflictSignal) {
		return 0, false
	}
	current, perr := strconv.ParseInt(strings.TrimPrefix(refused.Message, ConflictSignal), 10, 64)
	return current, perr == nil
}

// duplicateEventID reports whether err is the unique key on eventId
// refusing an id stored already (MariaDB names the key eventId, MySQL
// table.eventId).
func duplicateEventID(err error) bool {
	var refused *mysql.MySQLError
	return errors.As(err, &refused) && refused.Number == 1062 && strings.Contains(refused.Message, EventIDColumn+"'")
}

// storedEvent is an event found by its event id.
type storedEvent struct {
	id                int64
	pid, domain, name string
	data              []byte // nil for SQL NULL
}

// settle decides what a request with event ids or an expectation gets
// after its INSERT failed with failure, from what is stored under its
// event ids: a retry (every id stored with the same content) is answered
// as if it had committed, with nothing stored twice; a request that meets
// an id stored with other content, or a stream at another version, is a
// conflict; a request some of whose ids are stored stores only the others
// (unless it expects a version: then it is a conflict). It returns an
// error only when the transaction is lost.
func (b *Batcher) settle(ctx context.Context, tx *sql.Tx, ins *sqlbuild.Insert, failure error) (outcome, error) {
	current, versionRefused := versionConflict(failure)
	conflictOrFailure := func() outcome {
		if versionRefused {
			return outcome{err: &messages.ConflictError{Message: fmt.Sprintf("the stream is at version %d", current)}}
		}
		return outcome{err: failure}
	}
	ids := ins.EventIDs()
	if ids == nil || !(versionRefused || duplicateEventID(failure)) {
		return conflictOrFailure(), nil
	}
	stored, err := b.storedEvents(ctx, tx, ins.Table, ids)
	if err != nil {
		if tx != nil && transactionLost(err) {
			return outcome{}, err
		}
		return outcome{err: err}, nil
	}
	docs := ins.Events()
	docIDs := make([]int64, len(docs))
	var fresh []int
	for n, doc := range docs {
		s, ok := stored[doc.EventID]
		if doc.EventID == "" || !ok {
			fresh = append(fresh, n)
			continue
		}
		if !sameEvent(doc, s) {
			return outcome{err: &messages.ConflictError{Message: fmt.Sprintf("event id %q is stored with other content", doc.EventID)}}, nil
		}
		docIDs[n] = s.id
	}
	switch {
	case len(fresh) == len(docs):
		// None stored: the id that was in the way was rolled back since,
		// or the refusal was the version's alone.
		return conflictOrFailure(), nil
	case len(fresh) == 0:
		ok := messages.NewOK(0, docIDs[0])
		ok.Duplicate, ok.IDs = true, docIDs
		return outcome{ok: ok, ids: [][2]int64{}}, nil
	case ins.Expects():
		return outcome{err: &messages.ConflictError{Message: fmt.Sprintf("%d of the request's %d events are stored already", len(docs)-len(fresh), len(docs))}}, nil
	}
	// Store the others, in order.
	rest := ins.Subset(fresh)
	var added outcome
	if tx != nil && b.rowByRow(rest) {
		if err := b.execRows(ctx, tx, rest, &added); err != nil {
			return outcome{}, err
		}
	} else {
		first, affected, err := b.exec(ctx, tx, rest)
		switch {
		case err != nil && tx != nil && transactionLost(err):
			return outcome{}, err
		case err != nil:
			added = outcome{err: err}
		default:
			added = outcome{ok: messages.NewOK(affected, first), ids: [][2]int64{{first, first + affected - 1}}}
		}
	}
	if added.err != nil {
		return outcome{err: added.err}, nil
	}
	var newIDs []int64
	for _, r := range added.ids {
		for id := r[0]; id <= r[1]; id++ {
			newIDs = append(newIDs, id)
		}
	}
	if len(newIDs) != len(fresh) {
		return outcome{err: fmt.Errorf("insert into %s: %d ids for %d new events", ins.Table.QualifiedName(), len(newIDs), len(fresh))}, nil
	}
	for k, n := range fresh {
		docIDs[n] = newIDs[k]
	}
	ok := messages.NewOK(int64(len(fresh)), docIDs[0])
	ok.IDs = docIDs
	return outcome{ok: ok, ids: added.ids}, nil
}

// storedEvents reads the events stored under ids, by a locking read: it
// sees what other transactions committed since this one began, and what
// this one wrote.
func (b *Batcher) storedEvents(ctx context.Context, tx *sql.Tx, t *sqlbuild.Table, ids []string) (map[string]storedEvent, error) {
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			args = append(args, id)
		}
	}
	query := "SELECT `" + EventIDColumn + "`, `" + t.Key + "`, `pid`, `domain`, `name`, `data` FROM `" + t.Schema + "`.`" + t.Name +
		"` WHERE `" + EventIDColumn + "` IN (?" + strings.Repeat(", ?", len(args)-1) + ") LOCK IN SHARE MODE"
	var rows *sql.Rows
	var err error
	if tx != nil {
		rows, err = tx.QueryContext(ctx, query, args...)
	} else {
		rows, err = b.db.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("read the events stored under %d event ids in %s: %w", len(args), t.QualifiedName(), err)
	}
	defer rows.Close()
	stored := make(map[string]storedEvent, len(args))
	for rows.Next() {
		var eventID string
		var s storedEvent
		if err := rows.Scan(&eventID, &s.id, &s.pid, &s.domain, &s.name, &s.data); err != nil {
			return nil, fmt.Errorf("read the events stored under event ids in %s: %w", t.QualifiedName(), err)
		}
		stored[eventID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the events stored under event ids in %s: %w", t.QualifiedName(), err)
	}
	return stored, nil
}

// sameEvent reports whether a document is the event stored under its id:
// the same pid, domain and name, byte for byte, and equal data as JSON
// values (key order and number spelling aside).
func sameEvent(doc sqlbuild.EventDocument, s storedEvent) bool {
	if doc.Pid != s.pid || doc.Domain != s.domain || doc.Name != s.name {
		return false
	}
	if doc.Data == nil || s.data == nil {
		return doc.Data == nil && s.data == nil
	}
	return jsonEqual([]byte(*doc.Data), s.data)
}

// jsonEqual reports whether two JSON texts hold equal values: objects
// with the same members in any order, numbers of equal value however
// spelled.
func jsonEqual(a, b []byte) bool {
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	return errA == nil && errB == nil && sameValue(va, vb)
}

func decodeJSON(text []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !sameValue(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, okA := new(big.Rat).SetString(string(a))
		rb, okB := new(big.Rat).SetString(string(b))
		return okA && okB && ra.Cmp(rb) == 0
	default:
		return a == b
	}
}
