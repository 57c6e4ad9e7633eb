package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// eventColumns are the columns of the event JSON, in its order:
//
//	{"id": 12, "timestamp": "...Z", "pid": "p1", "domain": "orders", "name": "created", "data": {...}}
var eventColumns = []string{"id", "timestamp", "pid", "domain", "name", "data"}

// Event is one stored event, encoded once and shared by every subscriber
// it goes to. Immutable.
type Event struct {
	ID     int64
	Pid    string
	Domain string
	Name   string
	// JSON is the event JSON, on one line.
	JSON []byte
	// Frame is the event as a GET /events message, encoded once for all
	// the streams it goes to.
	Frame []byte
}

// eventFromRow reads a row of eventColumns, read with JSON decoded.
func eventFromRow(row messages.Row) (*Event, error) {
	if len(row.Columns) != len(eventColumns) {
		return nil, fmt.Errorf("event row has %d columns, want %d", len(row.Columns), len(eventColumns))
	}
	ev := &Event{}
	switch id := row.Values[0].(type) {
	case int64:
		ev.ID = id
	case uint64:
		ev.ID = int64(id)
	default:
		return nil, fmt.Errorf("event id is %T", row.Values[0])
	}
	ev.Pid, _ = row.Values[2].(string)
	ev.Domain, _ = row.Values[3].(string)
	ev.Name, _ = row.Values[4].(string)
	row = compactJSON(row)
	ev.JSON = row.AppendJSON(make([]byte, 0, 160))
	ev.Frame = appendFrame(make([]byte, 0, len(ev.JSON)+len(ev.Name)+40), strconv.FormatInt(ev.ID, 10), ev.Name, ev.JSON)
	return ev, nil
}

// compactJSON returns row with its JSON values compacted: stored JSON
// keeps the client's text, newlines included, and an SSE message reads
// best on one data line.
func compactJSON(row messages.Row) messages.Row {
	copied := false
	for i, v := range row.Values {
		raw, ok := v.(json.RawMessage)
		if !ok || bytes.IndexAny(raw, "\n\r\t ") < 0 {
			continue
		}
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			continue
		}
		if !copied {
			row.Values, copied = append([]any(nil), row.Values...), true
		}
		row.Values[i] = json.RawMessage(buf.Bytes())
	}
	return row
}

// EventInput is one event a client posts: POST /events and persist tasks.
type EventInput struct {
	Pid, Domain, Name string
	// EventID is the client's id for the event ("" for none): a post
	// that is sent again with the same event ids and content is answered
	// from what is stored, and nothing is stored twice.
	EventID string
	// Data is the event's data as the client sent it: any JSON value (null
	// is stored as SQL NULL).
	Data *ordjson.Value
}

// decodeEvents reads one event or an array of them from a decoded body,
// and checks each.
func decodeEvents(v *ordjson.Value) ([]EventInput, error) {
	items := []*ordjson.Value{v}
	switch v.Kind {
	case ordjson.Array:
		if len(v.Items) == 0 {
			return nil, badRequest("events: the array is empty")
		}
		items = v.Items
	case ordjson.Object:
	default:
		return nil, badRequest("events: want an event object or an array of them")
	}
	events := make([]EventInput, len(items))
	firstEventID := map[string]int{}
	for i, item := range items {
		what := fmt.Sprintf("event %d", i)
		if err := objectMembers(item, what, "pid", "domain", "name", "data", "eventId"); err != nil {
			return nil, err
		}
		e := &events[i]
		for _, f := range []struct {
			name string
			into *string
		}{{"pid", &e.Pid}, {"domain", &e.Domain}, {"name", &e.Name}} {
			var err error
			if *f.into, err = stringMember(item, f.name, what); err != nil {
				return nil, err
			}
			if *f.into == "" {
				return nil, badRequest("%s: %q must be a non-empty string", what, f.name)
			}
		}
		if e.Data = item.Get("data"); e.Data == nil {
			return nil, badRequest("%s: \"data\" is required (any JSON value)", what)
		}
		if id := item.Get("eventId"); id != nil {
			if id.Kind != ordjson.String || !validEventID(id.Text) {
				return nil, badRequest("%s: \"eventId\" must be a string of 1 to %d printable ASCII characters", what, sqlbuild.MaxEventID)
			}
			if j, ok := firstEventID[id.Text]; ok {
				return nil, badRequest("%s: \"eventId\" %q is also the event id of event %d", what, id.Text, j)
			}
			firstEventID[id.Text] = i
			e.EventID = id.Text
		}
	}
	return events, nil
}

// validEventID reports whether id is 1 to sqlbuild.MaxEventID printable
// ASCII characters, as the builder wants it (checked here too so that the
// client is told about its event, not about the $insert made of it).
func validEventID(id string) bool {
	if id == "" || len(id) > sqlbuild.MaxEventID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// insertQuery is the $insert of events into table, as the builder reads
// it.
func insertQuery(table string, events []EventInput) *ordjson.Value {
	docs := make([]*ordjson.Value, len(events))
	for i, e := range events {
		data := e.Data
		if data.Kind == ordjson.String {
			// The builder reads a string for a JSON column as JSON text
			// (what Redis clients send); over HTTP data is the value
			// itself, so a string goes as the JSON text of that string.
			data = ordjson.NewString(string(ordjson.AppendString(nil, data.Text)))
		}
		docs[i] = ordjson.NewObject(
			ordjson.Member{Key: "pid", Value: ordjson.NewString(e.Pid)},
			ordjson.Member{Key: "domain", Value: ordjson.NewString(e.Domain)},
			ordjson.Member{Key: "name", Value: ordjson.NewString(e.Name)},
			ordjson.Member{Key: "data", Value: data},
		)
		if e.EventID != "" {
			docs[i].Members = append(docs[i].Members, ordjson.Member{Key: "eventId", Value: ordjson.NewString(e.EventID)})
		}
	}
	return ordjson.NewObject(ordjson.Member{Key: "$insert", Value: ordjson.NewObject(
		ordjson.Member{Key: "$into", Value: ordjson.NewString(table)},
		ordjson.Member{Key: "$documents", Value: ordjson.NewArray(docs...)},
	)})
}

// jsonMarshal encodes v as JSON.stringify would: no HTML escaping, no
// trailing newline.
func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
