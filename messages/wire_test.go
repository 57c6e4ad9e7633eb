package messages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
)

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	limits := messages.RequestLimits{MaxBytes: 256, MaxChannel: 16, MaxWindow: 8, MaxQueryDepth: 3, MaxQueryValues: 6}
	// pad makes a valid request longer than limits.MaxBytes.
	pad := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		payload string
		// unlimited decodes with the zero RequestLimits instead of limits.
		unlimited bool
		wantErr   error // nil, ErrBadRequest or ErrNoChannel
		want      messages.ReceivedRequest
	}{
		{
			name:    "valid",
			payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":"p"}}}}`,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{"$where":{"pid":"p"}}}`)},
		},
		{
			name:    "valid with whitespace and unknown fields",
			payload: " {\n \"channel\" : \"c1\" , \"extra\": [1,2], \"query\" : {\"$select\":{}} }\n",
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{}}`)},
		},
		{
			name:    "opt-in fields",
			payload: `{"channel":"c1","query":{"$select":{}},"reason":true,"decode":true,"window":8}`,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{}}`), Reason: true, Decode: true, Window: 8},
		},
		{
			name:    "follow, consumer, reset and expect",
			payload: `{"channel":"c1","query":{"$select":{}},"follow":true,"consumer":"shop.totals:v2-a_b","reset":true,"expect":{"domain":"d","pid":"p","version":3}}`,
			want: messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{}}`), Follow: true, Consumer: "shop.totals:v2-a_b", Reset: true,
				Expect: &messages.Expectation{Domain: "d", PID: "p", Version: 3}},
		},
		{
			name:    "a consumer name with a space",
			payload: `{"channel":"c1","query":{"$select":{}},"consumer":"a b"}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "follow not a boolean",
			payload: `{"channel":"c1","query":{"$select":{}},"follow":1}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "an expectation with a negative version",
			payload: `{"channel":"c1","query":{"$select":{}},"expect":{"domain":"d","pid":"p","version":-1}}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "opt-in fields off",
			payload: `{"channel":"c1","query":{"$select":{}},"reason":false,"decode":false,"window":0}`,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{}}`)},
		},
		{
			name:    "channel of exactly the maximum length",
			payload: `{"channel":"0123456789abcdef","query":{}}`,
			want:    messages.ReceivedRequest{Channel: "0123456789abcdef", Query: tree(`{}`)},
		},
		{
			name:      "no limits",
			payload:   `{"channel":"` + pad + `","query":{},"window":100000}`,
			unlimited: true,
			want:      messages.ReceivedRequest{Channel: pad, Query: tree(`{}`), Window: 100000},
		},
		{
			name:    "too big with the channel first",
			payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":"` + pad + `"}}}}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "too big with the channel after the query",
			payload: `{"query":{"$select":{"$where":{"pid":"` + pad + `"}}},"channel":"c1"}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "too big and truncated after the channel",
			payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":"` + pad,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "too big without a channel",
			payload: `{"query":{"$select":{"$where":{"pid":"` + pad + `"}}}}`,
			wantErr: messages.ErrNoChannel,
		},
		{
			name:    "too big with an unusable channel",
			payload: `{"channel":"` + pad + `","query":{}}`,
			wantErr: messages.ErrNoChannel,
		},
		{
			name:    "too big and not JSON",
			payload: pad,
			wantErr: messages.ErrNoChannel,
		},
		{name: "not JSON", payload: `hello`, wantErr: messages.ErrNoChannel},
		{name: "empty", payload: ``, wantErr: messages.ErrNoChannel},
		{name: "JSON string", payload: `"accepted"`, wantErr: messages.ErrNoChannel},
		{name: "JSON array", payload: `[{"channel":"c1"}]`, wantErr: messages.ErrNoChannel},
		{name: "no channel", payload: `{"query":{"$select":{}}}`, wantErr: messages.ErrNoChannel},
		{name: "empty channel", payload: `{"channel":"","query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel too long", payload: `{"channel":"0123456789abcdefg","query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel with a newline", payload: `{"channel":"a\nb","query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel with DEL", payload: `{"channel":"a\u007fb","query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel a number", payload: `{"channel":5,"query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel null", payload: `{"channel":null,"query":{}}`, wantErr: messages.ErrNoChannel},
		{name: "channel an object", payload: `{"channel":{"a":1},"query":{}}`, wantErr: messages.ErrNoChannel},
		{
			name:    "missing query",
			payload: `{"channel":"c1","reason":true}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Reason: true},
		},
		{
			name:    "null query",
			payload: `{"channel":"c1","query":null,"decode":true}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`null`), Decode: true},
		},
		{
			name:    "string query",
			payload: `{"channel":"c1","query":"SELECT * FROM event","reason":true}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`"SELECT * FROM event"`), Reason: true},
		},
		{
			name:    "array query",
			payload: `{"channel":"c1","query":[{"$select":{}}]}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`[{"$select":{}}]`)},
		},
		{
			name:    "number query",
			payload: `{"channel":"c1","query":42}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`42`)},
		},
		{
			name:    "window negative",
			payload: `{"channel":"c1","query":{},"window":-1,"reason":true}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{}`), Window: -1, Reason: true},
		},
		{
			name:    "window over the maximum",
			payload: `{"channel":"c1","query":{},"window":9}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{}`), Window: 9},
		},
		// A field of the wrong type fails json.Unmarshal as a whole; the
		// channel is still found so the client hears "error".
		{
			name:    "window a string",
			payload: `{"channel":"c1","query":{},"window":"3"}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "reason a string, channel last",
			payload: `{"query":{"$select":{}},"reason":"yes","channel":"c1"}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "window fractional",
			payload: `{"channel":"c1","query":{},"window":1.5}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "truncated JSON after the channel",
			payload: `{"channel":"c1","query":{"$select":`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "query at the depth limit",
			payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":"p"}}}}`,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{"$where":{"pid":"p"}}}`)},
		},
		{
			name:    "query over the depth limit",
			payload: `{"channel":"c1","query":{"$select":{"$where":{"pid":{"$eq":"p"}}}},"reason":true}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Reason: true},
		},
		{
			name:    "query at the values limit",
			payload: `{"channel":"c1","query":{"$select":{"$columns":["a","b","c"]}},"window":2,"reason":false}`,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{"$columns":["a","b","c"]}}`), Window: 2},
		},
		{
			name:    "query over the values limit",
			payload: `{"channel":"c1","query":{"$select":{"$columns":["a","b","c","d"]}}}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1", Query: tree(`{"$select":{"$columns":["a","b","c","d"]}}`)},
		},
		{
			name:    "duplicate key",
			payload: `{"channel":"c1","query":{"$select":{}},"query":{"$select":{}}}`,
			wantErr: messages.ErrBadRequest,
			want:    messages.ReceivedRequest{Channel: "c1"},
		},
		{
			name:    "wrong type and no channel",
			payload: `{"query":{},"window":"3"}`,
			wantErr: messages.ErrNoChannel,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lim := limits
			if tt.unlimited {
				lim = messages.RequestLimits{}
			}
			got, err := messages.DecodeRequest([]byte(tt.payload), lim)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("DecodeRequest: unexpected error %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("DecodeRequest: error %v, want one wrapping %q", err, tt.wantErr)
			}
			// The two classes exclude each other: the router answers one on
			// the channel and only logs the other.
			if errors.Is(err, messages.ErrBadRequest) && errors.Is(err, messages.ErrNoChannel) {
				t.Fatalf("error %v wraps both ErrBadRequest and ErrNoChannel", err)
			}
			if errors.Is(err, messages.ErrNoChannel) && got.Channel != "" {
				t.Errorf("Channel = %q with ErrNoChannel, want empty", got.Channel)
			}
			if !requestEqual(got, tt.want) {
				t.Errorf("DecodeRequest = %+v (query %s), want %+v (query %s)", got, got.Query.AppendJSON(nil), tt.want, tt.want.Query.AppendJSON(nil))
			}
		})
	}
}

// tree decodes a query for the want of a case.
func tree(query string) *ordjson.Value {
	v, err := ordjson.Decode([]byte(query), ordjson.Limits{})
	if err != nil {
		panic(err)
	}
	return v
}

func requestEqual(a, b messages.ReceivedRequest) bool {
	return a.Channel == b.Channel && bytes.Equal(a.Query.AppendJSON(nil), b.Query.AppendJSON(nil)) &&
		a.Reason == b.Reason && a.Decode == b.Decode && a.Window == b.Window
}

func TestDecodeRequestDefaultLimits(t *testing.T) {
	t.Parallel()
	lim := messages.DefaultRequestLimits()
	if lim.MaxBytes != 1<<20 || lim.MaxChannel <= 0 || lim.MaxWindow <= 0 {
		t.Fatalf("DefaultRequestLimits = %+v, want 1 MiB and positive channel and window bounds", lim)
	}
	big := `{"channel":"c1","query":{"$select":{"$where":{"pid":"` + strings.Repeat("y", 1<<20) + `"}}}}`
	req, err := messages.DecodeRequest([]byte(big), lim)
	if !errors.Is(err, messages.ErrBadRequest) || req.Channel != "c1" {
		t.Fatalf("request over 1 MiB: got %+v, %v; want channel c1 and ErrBadRequest", req.Channel, err)
	}
	justUnder := `{"channel":"c1","query":{"$select":{"$where":{"pid":"` + strings.Repeat("y", 1<<19) + `"}}}}`
	if _, err := messages.DecodeRequest([]byte(justUnder), lim); err != nil {
		t.Fatalf("request under 1 MiB: %v", err)
	}
}

func TestValidateChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		channel string
		max     int
		ok      bool
	}{
		{"plain", "my-channel", 0, true},
		{"with colons and spaces", "eventsource:abc 123", 0, true},
		{"unicode", "kanal-ø-日本-🚀", 0, true},
		{"exactly max", "abcd", 4, true},
		{"max counts bytes", "øø", 4, true},
		{"max counts bytes, over", "øøø", 5, false},
		{"over max", "abcde", 4, false},
		{"no limit", strings.Repeat("a", 100000), 0, true},
		{"empty", "", 0, false},
		{"NUL", "a\x00b", 0, false},
		{"newline", "a\nb", 0, false},
		{"tab", "a\tb", 0, false},
		{"unit separator", "a\x1fb", 0, false},
		{"DEL", "a\x7fb", 0, false},
		{"invalid UTF-8", "a\xffb", 0, false},
		{"truncated UTF-8", "a\xe2\x82", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := messages.ValidateChannel(tt.channel, tt.max)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateChannel(%q, %d) = %v, want ok=%v", tt.channel, tt.max, err, tt.ok)
			}
		})
	}
}

func TestParseControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    messages.Control
	}{
		{`"accepted"`, messages.ControlAccepted},
		{`"end"`, messages.ControlEnd},
		{` "accepted"`, messages.ControlAccepted},
		{"\"accepted\"\n", messages.ControlAccepted},
		{"\t\r\n\"end\" \n", messages.ControlEnd},
		{`"\u0061ccepted"`, messages.ControlAccepted},
		{`"\u0065nd"`, messages.ControlEnd},
		{`"timeout"`, messages.ControlNone},
		{`"error"`, messages.ControlNone},
		{`"Accepted"`, messages.ControlNone},
		{`"END"`, messages.ControlNone},
		{`" accepted"`, messages.ControlNone},
		{`"accepted "`, messages.ControlNone},
		{`""`, messages.ControlNone},
		{`"accepted`, messages.ControlNone},
		{`"accepted""end"`, messages.ControlNone},
		{`accepted`, messages.ControlNone},
		{`end`, messages.ControlNone},
		{``, messages.ControlNone},
		{`   `, messages.ControlNone},
		{`null`, messages.ControlNone},
		{`true`, messages.ControlNone},
		{`1`, messages.ControlNone},
		{`["accepted"]`, messages.ControlNone},
		{`{"accepted":true}`, messages.ControlNone},
		{`{"channel":"c1"}`, messages.ControlNone},
		{`{"error":"timeout","message":"no accepted"}`, messages.ControlNone},
		{`{"timestamp":"2020-04-06T11:35:18.414Z","pid":"p","name":"end"}`, messages.ControlNone},
		{`{"fieldCount":0,"affectedRows":1,"insertId":1,"serverStatus":2,"warningCount":0,"message":"","protocol41":true,"changedRows":0}`, messages.ControlNone},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			t.Parallel()
			if got := messages.ParseControl([]byte(tt.payload)); got != tt.want {
				t.Fatalf("ParseControl(%q) = %d, want %d", tt.payload, got, tt.want)
			}
			if got := messages.ParseControl(tt.payload); got != tt.want {
				t.Fatalf("ParseControl of the string %q = %d, want %d", tt.payload, got, tt.want)
			}
		})
	}
}

// The server parses every message heard on a response channel, its own
// rows included: the common ones cost no allocation.
func TestParseControlAllocatesNothing(t *testing.T) {
	for _, payload := range []string{
		`"accepted"`, `"end"`,
		`{"timestamp":"2020-04-06T11:35:18.414Z","pid":"p","name":"end","data":"{\"n\": 1}"}`,
	} {
		b := []byte(payload)
		if n := testing.AllocsPerRun(100, func() { messages.ParseControl(b) }); n != 0 {
			t.Errorf("ParseControl(%q) made %v allocations, want 0", payload, n)
		}
	}
}

func TestControlBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got  []byte
		want string
	}{
		{messages.AcceptedJSON, `"accepted"`},
		{messages.EndJSON, `"end"`},
		{messages.TimeoutJSON, `"timeout"`},
		{messages.ErrorJSON, `"error"`},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("payload %q, want %q", tt.got, tt.want)
		}
		var s string
		if err := json.Unmarshal(tt.got, &s); err != nil {
			t.Errorf("payload %q is not a JSON string: %v", tt.got, err)
		}
	}
}

func TestErrorPayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		withReason bool
		reason     messages.Reason
		message    string
		want       string
	}{
		{"default", false, messages.ReasonDB, "database failed", `"error"`},
		{"default ignores the reason", false, messages.ReasonTimeout, "", `"error"`},
		{"opt-in", true, messages.ReasonBadRequest, "query.$select: unknown column", `{"error":"bad_request","message":"query.$select: unknown column"}`},
		{"opt-in without message", true, messages.ReasonRefused, "", `{"error":"refused"}`},
		{"opt-in internal", true, messages.ReasonInternal, "internal error", `{"error":"internal","message":"internal error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := messages.ErrorPayload(tt.withReason, tt.reason, tt.message)
			if string(got) != tt.want {
				t.Fatalf("ErrorPayload(%v, %q, %q) = %s, want %s", tt.withReason, tt.reason, tt.message, got, tt.want)
			}
			if tt.withReason {
				var reply messages.ErrorReply
				if err := json.Unmarshal(got, &reply); err != nil || reply.Error != tt.reason || reply.Message != tt.message {
					t.Fatalf("ErrorPayload decodes to %+v, %v", reply, err)
				}
			}
		})
	}
	// A message with characters encoding/json escapes still round-trips.
	got := messages.ErrorPayload(true, messages.ReasonBadRequest, `a "quoted" <tag> & more`)
	var reply messages.ErrorReply
	if err := json.Unmarshal(got, &reply); err != nil || reply.Message != `a "quoted" <tag> & more` {
		t.Fatalf("ErrorPayload with special characters = %s: %+v, %v", got, reply, err)
	}
}

func TestDecodeRequestKeepsReasonOfABadRequest(t *testing.T) {
	req, err := messages.DecodeRequest([]byte(`{"channel":"c","reason":true,"window":"3","query":{}}`), messages.DefaultRequestLimits())
	if !errors.Is(err, messages.ErrBadRequest) {
		t.Fatalf("err = %v, want ErrBadRequest", err)
	}
	if req.Channel != "c" || !req.Reason {
		t.Fatalf("got %+v, want channel c with reason", req)
	}
}

// TestRequestAppendJSON checks the hand-written encoding against
// encoding/json's: both decode to the same request, and to the same bytes
// once the query is compact.
func TestRequestAppendJSON(t *testing.T) {
	query := json.RawMessage(`{"$insert":{"$table":"event","$documents":{"pid":"p\u00e9","data":"{\"a\":1}"}}}`)
	tests := []struct {
		name string
		req  messages.Request
	}{
		{"channel and query only", messages.Request{Channel: "ch-1", Query: query}},
		{"every opt-in", messages.Request{Channel: "ch-2", Query: query, Reason: true, Decode: true, Window: 32}},
		{"channel to escape", messages.Request{Channel: "a\"b\\c\u00e9", Query: query}},
		{"no query", messages.Request{Channel: "ch-3"}},
		{"negative window", messages.Request{Channel: "ch-4", Query: query, Window: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.req.AppendJSON(nil)
			want, err := json.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
			var back messages.Request
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if back.Channel != tt.req.Channel || back.Reason != tt.req.Reason || back.Decode != tt.req.Decode || back.Window != tt.req.Window {
				t.Errorf("decoded %+v, want %+v", back, tt.req)
			}
		})
	}
}

// PeekRequest finds the channel and the reason opt-in that DecodeRequest
// finds, without decoding the query; what it cannot find, DecodeRequest
// must be asked.
func TestPeekRequest(t *testing.T) {
	t.Parallel()
	limits := messages.RequestLimits{MaxBytes: 256, MaxChannel: 16}
	tests := []struct {
		name, payload string
		channel       string
		reason, ok    bool
	}{
		{"channel first", `{"channel":"c1","query":{"$select":{}}}`, "c1", false, true},
		{"channel last, reason", `{"query":{"$select":{"$where":{"pid":"}\"channel\":"}}},"reason":true,"channel":"c\u0032"}`, "c2", true, true},
		{"reason false", `{"reason":false,"channel":"c3","query":{}}`, "c3", false, true},
		{"no channel", `{"query":{}}`, "", false, false},
		{"channel a number", `{"channel":5,"query":{}}`, "", false, false},
		{"channel too long", `{"channel":"0123456789abcdefg","query":{}}`, "", false, false},
		{"not an object", `"end"`, "", false, false},
		{"too big", `{"channel":"c1","query":"` + strings.Repeat("x", 300) + `"}`, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			channel, reason, ok := messages.PeekRequest([]byte(tt.payload), limits)
			if channel != tt.channel || reason != tt.reason || ok != tt.ok {
				t.Fatalf("PeekRequest = %q, %v, %v; want %q, %v, %v", channel, reason, ok, tt.channel, tt.reason, tt.ok)
			}
			if !ok {
				return
			}
			req, err := messages.DecodeRequest([]byte(tt.payload), limits)
			if err == nil && (req.Channel != channel || req.Reason != reason) {
				t.Fatalf("DecodeRequest found %q, %v", req.Channel, req.Reason)
			}
		})
	}
}
