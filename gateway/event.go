package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/eventsource/eventsource/messages"
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
	Pid    string          `json:"pid"`
	Domain string          `json:"domain"`
	Name   string          `json:"name"`
	Data   json.RawMessage `json:"data"`
}

// decodeEvents reads one event or an array of them, and checks each.
func decodeEvents(body []byte) ([]EventInput, error) {
	body = bytes.TrimSpace(body)
	var items []json.RawMessage
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, badRequest("events: %s", jsonProblem(err))
		}
		if len(items) == 0 {
			return nil, badRequest("events: the array is empty")
		}
	case len(body) > 0 && body[0] == '{':
		items = []json.RawMessage{body}
	default:
		return nil, badRequest("events: want an event object or an array of them")
	}
	events := make([]EventInput, len(items))
	for i, raw := range items {
		if err := decodeStrict(raw, &events[i], fmt.Sprintf("event %d", i)); err != nil {
			return nil, err
		}
		if err := events[i].check(i); err != nil {
			return nil, err
		}
	}
	return events, nil
}

func (e EventInput) check(i int) error {
	for _, f := range []struct{ name, value string }{{"pid", e.Pid}, {"domain", e.Domain}, {"name", e.Name}} {
		if f.value == "" {
			return badRequest("event %d: %q must be a non-empty string", i, f.name)
		}
	}
	if len(bytes.TrimSpace(e.Data)) == 0 {
		return badRequest("event %d: \"data\" is required (any JSON value)", i)
	}
	return nil
}

// insertQuery is the $insert of events into table, for the builder.
func insertQuery(table string, events []EventInput) []byte {
	type doc struct {
		Pid    string          `json:"pid"`
		Domain string          `json:"domain"`
		Name   string          `json:"name"`
		Data   json.RawMessage `json:"data"`
	}
	docs := make([]doc, len(events))
	for i, e := range events {
		docs[i] = doc(e)
		// The builder reads a string for a JSON column as JSON text (what
		// Redis clients send); over HTTP data is the value itself, so a
		// string goes as the JSON text of that string.
		if data := bytes.TrimSpace(e.Data); len(data) > 0 && data[0] == '"' {
			docs[i].Data, _ = json.Marshal(string(data))
		}
	}
	var q struct {
		Insert struct {
			Into      string `json:"$into"`
			Documents []doc  `json:"$documents"`
		} `json:"$insert"`
	}
	q.Insert.Into, q.Insert.Documents = table, docs
	b, _ := json.Marshal(q) // strings and valid raw JSON always encode
	return b
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
