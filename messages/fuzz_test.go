package messages_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
)

// FuzzDecodeRequest checks DecodeRequest and PeekRequest on any payload
// (what a client, or anyone who can publish on a request channel, sends)
// under limits that the fuzzer picks too, zero meaning none:
//
//   - neither panics;
//   - an error wraps exactly one of ErrNoChannel and ErrBadRequest; with
//     ErrBadRequest the result names a usable channel, with ErrNoChannel
//     none (nobody is answered);
//   - a decoded request keeps the limits: the payload fits MaxBytes, the
//     channel is usable and fits MaxChannel, the window is in 0..MaxWindow,
//     the query is an object no deeper than MaxQueryDepth (the query
//     itself at depth 0, as sqlbuild counts) with at most MaxQueryValues
//     values, and a payload over MaxBytes is always refused;
//   - what PeekRequest finds is a usable channel; it finds the channel and
//     the reason opt-in that DecodeRequest finds whenever DecodeRequest
//     succeeds and, for any payload that is valid JSON (without duplicate
//     keys, which DecodeRequest refuses), whenever DecodeRequest names a
//     channel at all; on such a payload PeekRequest says ok exactly when
//     DecodeRequest names a channel;
//   - a decoded request, encoded again the client's way (Request.AppendJSON
//     with the query as compact JSON), is valid JSON that encoding/json
//     reads as the same envelope, and decodes under the same limits (but
//     MaxBytes: an escape may be longer than what it stands for) to the
//     same channel, opt-ins, window and query tree.
func FuzzDecodeRequest(f *testing.F) {
	type seed struct {
		payload        string
		maxBytes       uint16
		maxChannel     uint8
		maxWindow      uint16
		maxQueryDepth  uint8
		maxQueryValues uint16
	}
	for _, s := range []seed{
		{payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":"p"}}}}`, maxBytes: 1024, maxChannel: 64, maxWindow: 1024, maxQueryDepth: 32, maxQueryValues: 10000},
		{payload: `{"channel":"r-\u00e9\ud83d\ude00","query":{"$select":{"$from":"event","$columns":["pid","data"],"$where":{"id":{"$gt":9007199254740993}},"$orderBy":{"id":true}}},"reason":true,"decode":true,"window":32}`, maxBytes: 4096, maxChannel: 32, maxWindow: 64, maxQueryDepth: 8, maxQueryValues: 100},
		{payload: `{"query":{"$insert":{"$table":"event","$documents":[{"pid":"p","data":"{\"a\":1}"}]}},"channel":"persist-1"}`, maxBytes: 1024, maxChannel: 16, maxWindow: 8, maxQueryDepth: 5, maxQueryValues: 20},
		{payload: `{"channel":"c","reason":true,"window":"3","query":{}}`, maxBytes: 256, maxChannel: 16, maxWindow: 8, maxQueryDepth: 3, maxQueryValues: 6},
		{payload: `{"channel":"c","reason":true,"window":9,"query":{}}`, maxBytes: 256, maxChannel: 16, maxWindow: 8},
		{payload: `{"channel":"c","query":{"a":{"b":{"c":{"d":{"e":1}}}}}}`, maxBytes: 256, maxChannel: 16, maxWindow: 8, maxQueryDepth: 3, maxQueryValues: 100},
		{payload: `{"channel":"c","query":{"a":[1,2,3,4,5,6,7,8]}}`, maxBytes: 256, maxChannel: 16, maxWindow: 8, maxQueryDepth: 3, maxQueryValues: 6},
		{payload: `{"channel":"c","reason":true,"query":{"$select":{"$where":{"pid":"` + strings.Repeat("y", 300) + `"}}}}`, maxBytes: 256, maxChannel: 16},
		{payload: `{"channel":"0123456789abcdefg","query":{}}`, maxBytes: 256, maxChannel: 16},
		{payload: `{"channel":"a\u0001b","query":{}}`},
		{payload: `{"channel":"c","channel":"d","query":{}}`},
		{payload: `{"channel":5,"query":{}}`},
		{payload: `{"channel":"c","query":null,"decode":1}`},
		{payload: `{"channel":"c","query":{"$select":{}},"window":-0}`, maxWindow: 4},
		{payload: `{"channel":"c","query":{"$sel`},
		{payload: `"end"`},
		{payload: ``},
	} {
		f.Add([]byte(s.payload), s.maxBytes, s.maxChannel, s.maxWindow, s.maxQueryDepth, s.maxQueryValues)
	}
	f.Fuzz(func(t *testing.T, payload []byte, maxBytes uint16, maxChannel uint8, maxWindow uint16, maxQueryDepth uint8, maxQueryValues uint16) {
		limits := messages.RequestLimits{
			MaxBytes:       int(maxBytes),
			MaxChannel:     int(maxChannel),
			MaxWindow:      int(maxWindow),
			MaxQueryDepth:  int(maxQueryDepth),
			MaxQueryValues: int(maxQueryValues),
		}
		req, err := messages.DecodeRequest(payload, limits)
		channel, reason, ok := messages.PeekRequest(payload, limits)

		if ok {
			if verr := messages.ValidateChannel(channel, limits.MaxChannel); verr != nil {
				t.Fatalf("PeekRequest found channel %q, which is not usable: %v", channel, verr)
			}
			if limits.MaxBytes > 0 && len(payload) > limits.MaxBytes {
				t.Fatalf("PeekRequest took a payload of %d bytes over MaxBytes %d", len(payload), limits.MaxBytes)
			}
		}

		if err != nil {
			noChannel, bad := errors.Is(err, messages.ErrNoChannel), errors.Is(err, messages.ErrBadRequest)
			switch {
			case noChannel == bad:
				t.Fatalf("error %q wraps ErrNoChannel %v and ErrBadRequest %v, want exactly one", err, noChannel, bad)
			case bad:
				if verr := messages.ValidateChannel(req.Channel, limits.MaxChannel); verr != nil {
					t.Fatalf("bad request (%v) answered on channel %q, which is not usable: %v", err, req.Channel, verr)
				}
			case req.Channel != "":
				t.Fatalf("ErrNoChannel (%v) with channel %q", err, req.Channel)
			}
		}

		if validJSON(payload) && (limits.MaxBytes == 0 || len(payload) <= limits.MaxBytes) {
			if ok != (req.Channel != "") {
				t.Fatalf("valid JSON: PeekRequest = %q, %v, ok %v; DecodeRequest channel %q (%v)", channel, reason, ok, req.Channel, err)
			}
			if ok && (req.Channel != channel || req.Reason != reason) {
				t.Fatalf("valid JSON: PeekRequest = %q, reason %v; DecodeRequest = %q, reason %v (%v)", channel, reason, req.Channel, req.Reason, err)
			}
		}

		if err != nil {
			return
		}

		if limits.MaxBytes > 0 && len(payload) > limits.MaxBytes {
			t.Fatalf("decoded a payload of %d bytes over MaxBytes %d", len(payload), limits.MaxBytes)
		}
		if verr := messages.ValidateChannel(req.Channel, limits.MaxChannel); verr != nil {
			t.Fatalf("decoded channel %q is not usable: %v", req.Channel, verr)
		}
		if req.Window < 0 || (limits.MaxWindow > 0 && req.Window > limits.MaxWindow) {
			t.Fatalf("decoded window %d outside 0..%d", req.Window, limits.MaxWindow)
		}
		if req.Query == nil || req.Query.Kind != ordjson.Object {
			t.Fatalf("decoded query %v is not an object", req.Query)
		}
		if d := depth(req.Query); limits.MaxQueryDepth > 0 && d > limits.MaxQueryDepth {
			t.Fatalf("decoded query of depth %d over MaxQueryDepth %d", d, limits.MaxQueryDepth)
		}
		if n := req.Query.Count(); limits.MaxQueryValues > 0 && n > limits.MaxQueryValues {
			t.Fatalf("decoded query of %d values over MaxQueryValues %d", n, limits.MaxQueryValues)
		}
		if !ok || channel != req.Channel || reason != req.Reason {
			t.Fatalf("PeekRequest = %q, reason %v, ok %v; DecodeRequest = %q, reason %v", channel, reason, ok, req.Channel, req.Reason)
		}

		// Encoded again as a client would.
		again := messages.Request{
			Channel: req.Channel,
			Query:   req.Query.AppendJSON(nil),
			Reason:  req.Reason,
			Decode:  req.Decode,
			Window:  req.Window,
		}.AppendJSON(nil)
		var client messages.Request
		if err := json.Unmarshal(again, &client); err != nil {
			t.Fatalf("re-encoded request %s is not JSON encoding/json reads: %v", again, err)
		}
		if client.Channel != req.Channel || client.Reason != req.Reason || client.Decode != req.Decode || client.Window != req.Window {
			t.Fatalf("re-encoded request %s reads as %+v, want %+v", again, client, req)
		}
		relaxed := limits
		relaxed.MaxBytes = 0
		back, err := messages.DecodeRequest(again, relaxed)
		if err != nil {
			t.Fatalf("re-encoded request %s: %v", again, err)
		}
		if back.Channel != req.Channel || back.Reason != req.Reason || back.Decode != req.Decode || back.Window != req.Window {
			t.Fatalf("re-encoded request %s decodes to %+v, want %+v", again, back, req)
		}
		if !reflect.DeepEqual(back.Query, req.Query) {
			t.Fatalf("re-encoded request %s decodes to query %s, want %s", again, back.Query.AppendJSON(nil), req.Query.AppendJSON(nil))
		}
	})
}

// FuzzParseControl checks ParseControl, for bytes and for strings alike,
// against encoding/json: a payload is a control exactly when it is one
// JSON string (white space around it allowed, escapes read) whose text is
// "accepted" or "end"; anything else, rows above all, is ControlNone.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`"accepted"`, `"end"`, ` "accepted"`, "\t\r\n\"end\" \n", `"\u0061ccepted"`, `"\u0065nd"`, `"en\d"`,
		`"timeout"`, `"error"`, `"Accepted"`, `"accepted `, `"accepted""end"`, `accepted`, `null`, `["end"]`,
		`{"timestamp":"2020-04-06T11:35:18.414Z","pid":"p","name":"end"}`, "\"end\"\x00", "\"\xffend\"", ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		want := messages.ControlNone
		var v any
		if json.Unmarshal(payload, &v) == nil {
			switch v {
			case messages.Accepted:
				want = messages.ControlAccepted
			case messages.End:
				want = messages.ControlEnd
			}
		}
		if got := messages.ParseControl(payload); got != want {
			t.Fatalf("ParseControl(%q) = %d, want %d", payload, got, want)
		}
		if got := messages.ParseControl(string(payload)); got != want {
			t.Fatalf("ParseControl of the string %q = %d, want %d", payload, got, want)
		}
	})
}

// validJSON reports whether data is one JSON value as encoding/json reads
// it, and has no object with a key twice (ordjson refuses those).
func validJSON(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	v, err := ordjson.Decode(data, ordjson.Limits{})
	return err == nil && v != nil
}

// depth is how deeply v nests: 0 for a scalar or an empty container.
func depth(v *ordjson.Value) int {
	d := 0
	for _, item := range v.Items {
		d = max(d, 1+depth(item))
	}
	for _, m := range v.Members {
		d = max(d, 1+depth(m.Value))
	}
	return d
}

// Check the helpers the fuzz targets lean on, so that a target that finds
// nothing does not find nothing because of them.
func TestFuzzHelpers(t *testing.T) {
	for in, want := range map[string]int{`1`: 0, `{}`: 0, `[[]]`: 1, `{"a":[1,{"b":null}]}`: 3} {
		v, err := ordjson.Decode([]byte(in), ordjson.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := depth(v); got != want {
			t.Errorf("depth(%s) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[string]bool{`{"a":1}`: true, `{"a":1,"a":2}`: false, `{"a":1`: false, `[]`: true} {
		if got := validJSON([]byte(in)); got != want {
			t.Errorf("validJSON(%s) = %v, want %v", in, got, want)
		}
	}
}
