package client

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/eventsource/eventsource/messages"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		reason  bool
		want    kind
		wantErr *ServerError
	}{
		{name: "row", payload: `{"pid":"p","id":1}`, want: kindObject},
		{name: "row with spaces", payload: " \n{\"a\":1}", want: kindObject},
		{name: "end", payload: `"end"`, want: kindEnd},
		{name: "end escaped", payload: `"\u0065nd"`, want: kindEnd},
		{name: "timeout", payload: `"timeout"`, want: kindTimeout},
		{name: "error", payload: `"error"`, want: kindError, wantErr: &ServerError{}},
		{name: "error with reasons on", payload: `"error"`, reason: true, want: kindError, wantErr: &ServerError{}},
		{name: "reply", payload: `{"error":"db","message":"the database failed"}`, reason: true, want: kindError,
			wantErr: &ServerError{Reason: messages.ReasonDB, Message: "the database failed"}},
		{name: "reply without message", payload: `{"error":"refused"}`, reason: true, want: kindError,
			wantErr: &ServerError{Reason: messages.ReasonRefused}},
		{name: "reply-like row without reasons", payload: `{"error":"db"}`, want: kindObject},
		{name: "row with an error column", payload: `{"error":"x","id":1}`, reason: true, want: kindObject},
		{name: "empty error", payload: `{"error":""}`, reason: true, want: kindObject},
		{name: "accepted echo", payload: `"accepted"`, want: kindIgnore},
		{name: "unknown string", payload: `"notice"`, want: kindIgnore},
		{name: "number", payload: `42`, want: kindIgnore},
		{name: "garbage", payload: `"unterminated`, want: kindIgnore},
		{name: "empty", payload: ``, want: kindIgnore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, serr := classify([]byte(tt.payload), tt.reason)
			if got != tt.want {
				t.Errorf("kind = %d, want %d", got, tt.want)
			}
			switch {
			case tt.wantErr == nil && serr != nil:
				t.Errorf("server error = %+v, want none", serr)
			case tt.wantErr != nil && (serr == nil || *serr != *tt.wantErr):
				t.Errorf("server error = %+v, want %+v", serr, tt.wantErr)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, seed := range []string{`"end"`, `{"error":"db"}`, `{"a":1}`, `"`, `{`, ``} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, payload string, reason bool) {
		k, serr := classify([]byte(payload), reason)
		if (k == kindError) != (serr != nil) {
			t.Errorf("kind %d with server error %v", k, serr)
		}
	})
}

func TestServerErrorIs(t *testing.T) {
	tests := []struct {
		err     *ServerError
		timeout bool
		text    string
	}{
		{err: &ServerError{}, text: "server error"},
		{err: &ServerError{Reason: messages.ReasonBadRequest, Message: "bad"}, text: "server error: bad_request: bad"},
		{err: &ServerError{Reason: messages.ReasonTimeout}, timeout: true, text: "server error: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if !errors.Is(tt.err, ErrServer) {
				t.Error("does not match ErrServer")
			}
			if errors.Is(tt.err, ErrTimeout) != tt.timeout {
				t.Errorf("matches ErrTimeout = %v, want %v", !tt.timeout, tt.timeout)
			}
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestRowFields(t *testing.T) {
	r := Row{raw: json.RawMessage(`{"z":1,"a":{"n":[1,2]},"id":9007199254740993}`)}
	fields, err := r.Fields()
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{"z", json.RawMessage(`1`)}, {"a", json.RawMessage(`{"n":[1,2]}`)}, {"id", json.RawMessage(`9007199254740993`)}}
	if len(fields) != len(want) {
		t.Fatalf("fields = %q, want %q", fields, want)
	}
	for i := range want {
		if fields[i].Name != want[i].Name || string(fields[i].Value) != string(want[i].Value) {
			t.Errorf("field %d = %s:%s, want %s:%s", i, fields[i].Name, fields[i].Value, want[i].Name, want[i].Value)
		}
	}
	var m map[string]any
	if err := r.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if id := m["id"].(json.Number).String(); id != "9007199254740993" {
		t.Errorf("id decoded as %s, want 9007199254740993 exactly", id)
	}
	if _, err := (Row{raw: json.RawMessage(`[1]`)}).Fields(); err == nil {
		t.Error("Fields of an array: no error")
	}
}

// Row.JSON reads a JSON column sent as JSON text in a string (no
// WithDecode) or as a JSON value (WithDecode), and tells the two apart by
// how the row was fetched, not by guessing.
func TestRowJSON(t *testing.T) {
	type object = map[string]any
	tests := []struct {
		name    string
		raw     string
		decoded bool
		column  string
		into    func() any // a pointer to decode into
		want    any        // what it points to afterwards
		wantErr bool
	}{
		{name: "text", raw: `{"data":"{\"n\":1,\"a\":[true]}"}`, column: "data",
			into: func() any { return new(object) }, want: object{"n": json.Number("1"), "a": []any{true}}},
		{name: "value", raw: `{"data":{"n":1,"a":[true]}}`, decoded: true, column: "data",
			into: func() any { return new(object) }, want: object{"n": json.Number("1"), "a": []any{true}}},
		{name: "text into a struct", raw: `{"id":1,"data":"{\"n\":2}"}`, column: "data",
			into: func() any { return new(struct{ N int }) }, want: struct{ N int }{2}},
		{name: "text of a string", raw: `{"data":"\"abc\""}`, column: "data",
			into: func() any { return new(string) }, want: "abc"},
		{name: "string value", raw: `{"data":"abc"}`, decoded: true, column: "data",
			into: func() any { return new(string) }, want: "abc"},
		{name: "string value that looks like JSON text", raw: `{"data":"[1]"}`, decoded: true, column: "data",
			into: func() any { return new(string) }, want: "[1]"},
		{name: "text of a big number", raw: `{"data":"9007199254740993"}`, column: "data",
			into: func() any { return new(any) }, want: any(json.Number("9007199254740993"))},
		{name: "null", raw: `{"data":null}`, column: "data",
			into: func() any { return new(object) }, want: object(nil)},
		{name: "null decoded", raw: `{"data":null}`, decoded: true, column: "data",
			into: func() any { return new(object) }, want: object(nil)},
		{name: "a number column", raw: `{"id":7}`, column: "id",
			into: func() any { return new(int64) }, want: int64(7)},
		{name: "a string column", raw: `{"name":"created"}`, column: "name",
			into: func() any { return new(object) }, wantErr: true},
		{name: "no such column", raw: `{"data":"{}"}`, column: "nope",
			into: func() any { return new(object) }, wantErr: true},
		{name: "text of the wrong shape", raw: `{"data":"[1]"}`, column: "data",
			into: func() any { return new(object) }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Row{raw: json.RawMessage(tt.raw), decoded: tt.decoded}
			dst := tt.into()
			err := r.JSON(tt.column, dst)
			if tt.wantErr {
				if err == nil {
					t.Errorf("no error; decoded %#v", reflect.ValueOf(dst).Elem().Interface())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(dst).Elem().Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}
}
