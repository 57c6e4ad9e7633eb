package messages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/ordjson"
)

func TestRowAppendJSON(t *testing.T) {
	t.Parallel()
	ts := time.Date(2020, 4, 6, 11, 35, 18, 414123456, time.UTC)
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	minus5 := time.FixedZone("UTC-5", -5*60*60)
	tests := []struct {
		name string
		row  messages.Row
		want string
	}{
		{
			name: "empty row",
			row:  messages.Row{},
			want: `{}`,
		},
		{
			name: "column order kept",
			row: messages.Row{
				Columns: []string{"zeta", "alpha", "mid", "id"},
				Values:  []any{"z", "a", "m", int64(1)},
			},
			want: `{"zeta":"z","alpha":"a","mid":"m","id":1}`,
		},
		{
			name: "an event row as the original sent it",
			row: messages.Row{
				Columns:    []string{"timestamp", "pid", "domain", "name", "data", "id"},
				Values:     []any{time.Date(2020, 4, 6, 11, 35, 18, 311991000, time.UTC), "order-1", "shop", "created", `{"total": 42}`, int64(1)},
				TimeDigits: []int{6, 0, 0, 0, 0, 0},
			},
			want: `{"timestamp":"2020-04-06T11:35:18.311991Z","pid":"order-1","domain":"shop","name":"created","data":"{\"total\": 42}","id":1}`,
		},
		{
			name: "quotes and backslashes",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{`say "hi" \ C:\path\`}},
			want: `{"s":"say \"hi\" \\ C:\\path\\"}`,
		},
		{
			name: "control characters",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{"\x00\x01\b\t\n\v\f\r\x1b\x1f\x20\x7f"}},
			want: `{"s":"\u0000\u0001\b\t\n\u000b\f\r\u001b\u001f ` + "\x7f" + `"}`,
		},
		{
			name: "HTML characters are not escaped",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{"<script>a && b</script>"}},
			want: `{"s":"<script>a && b</script>"}`,
		},
		{
			name: "U+2028 and U+2029 are not escaped",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{"a\u2028b\u2029c"}},
			want: "{\"s\":\"a\u2028b\u2029c\"}",
		},
		{
			name: "emoji and other scripts verbatim",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{"🚀 ø 日本 👩‍👩‍👧"}},
			want: `{"s":"🚀 ø 日本 👩‍👩‍👧"}`,
		},
		{
			name: "invalid UTF-8 becomes U+FFFD",
			row:  messages.Row{Columns: []string{"s"}, Values: []any{"a\xffb\xc0c"}},
			want: "{\"s\":\"a\ufffdb\ufffdc\"}",
		},
		{
			name: "escaped column names",
			row:  messages.Row{Columns: []string{`we"ird`, "new\nline", "ü"}, Values: []any{int64(1), int64(2), int64(3)}},
			want: `{"we\"ird":1,"new\nline":2,"ü":3}`,
		},
		{
			name: "bytes as a string",
			row:  messages.Row{Columns: []string{"b"}, Values: []any{[]byte("raw \"bytes\" <&>")}},
			want: `{"b":"raw \"bytes\" <&>"}`,
		},
		{
			name: "time with 3 digits by default",
			row:  messages.Row{Columns: []string{"t"}, Values: []any{ts}},
			want: `{"t":"2020-04-06T11:35:18.414Z"}`,
		},
		{
			name: "time with 3 digits when fewer are asked",
			row:  messages.Row{Columns: []string{"t", "u"}, Values: []any{ts, ts}, TimeDigits: []int{0, 1}},
			want: `{"t":"2020-04-06T11:35:18.414Z","u":"2020-04-06T11:35:18.414Z"}`,
		},
		{
			name: "time with 6 digits",
			row:  messages.Row{Columns: []string{"t"}, Values: []any{ts}, TimeDigits: []int{6}},
			want: `{"t":"2020-04-06T11:35:18.414123Z"}`,
		},
		{
			name: "time without fraction keeps its zeros",
			row: messages.Row{
				Columns:    []string{"t", "u"},
				Values:     []any{time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
				TimeDigits: []int{0, 6},
			},
			want: `{"t":"2020-01-02T03:04:05.000Z","u":"2020-01-02T03:04:05.000000Z"}`,
		},
		{
			name: "non-UTC time is written in UTC with Z",
			row: messages.Row{
				Columns:    []string{"t", "u"},
				Values:     []any{ts.In(plus2), ts.In(minus5)},
				TimeDigits: []int{0, 6},
			},
			want: `{"t":"2020-04-06T11:35:18.414Z","u":"2020-04-06T11:35:18.414123Z"}`,
		},
		{
			name: "non-UTC time across midnight",
			row:  messages.Row{Columns: []string{"t"}, Values: []any{time.Date(2021, 1, 1, 1, 30, 0, 5_000_000, plus2)}},
			want: `{"t":"2020-12-31T23:30:00.005Z"}`,
		},
		{
			name: "TimeDigits shorter than Columns",
			row:  messages.Row{Columns: []string{"a", "t"}, Values: []any{"x", ts}, TimeDigits: []int{6}},
			want: `{"a":"x","t":"2020-04-06T11:35:18.414Z"}`,
		},
		{
			name: "integers",
			row: messages.Row{
				Columns: []string{"max", "min", "zero", "umax"},
				Values:  []any{int64(math.MaxInt64), int64(math.MinInt64), int64(0), uint64(math.MaxUint64)},
			},
			want: `{"max":9223372036854775807,"min":-9223372036854775808,"zero":0,"umax":18446744073709551615}`,
		},
		{
			name: "NaN and infinities are null",
			row: messages.Row{
				Columns: []string{"nan", "inf", "ninf"},
				Values:  []any{math.NaN(), math.Inf(1), math.Inf(-1)},
			},
			want: `{"nan":null,"inf":null,"ninf":null}`,
		},
		{
			name: "booleans and null",
			row:  messages.Row{Columns: []string{"t", "f", "n"}, Values: []any{true, false, nil}},
			want: `{"t":true,"f":false,"n":null}`,
		},
		{
			name: "json.RawMessage verbatim",
			row: messages.Row{
				Columns: []string{"data", "list", "text", "num"},
				Values: []any{
					json.RawMessage(`{"b": 1,  "a":[2, {"<&>":"\u2028"}]}`),
					json.RawMessage(`[]`),
					json.RawMessage(`"x"`),
					json.RawMessage(`12345678901234567890123`),
				},
			},
			want: `{"data":{"b": 1,  "a":[2, {"<&>":"\u2028"}]},"list":[],"text":"x","num":12345678901234567890123}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.row.AppendJSON(nil)
			if string(got) != tt.want {
				t.Fatalf("AppendJSON:\n got %s\nwant %s", got, tt.want)
			}
			// AppendJSON appends: what is in buf stays.
			if got := tt.row.AppendJSON([]byte("prefix:")); string(got) != "prefix:"+tt.want {
				t.Fatalf("AppendJSON(prefix) = %s", got)
			}
			m, err := tt.row.MarshalJSON()
			if err != nil || string(m) != tt.want {
				t.Fatalf("MarshalJSON = %s, %v; want %s", m, err, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("AppendJSON wrote invalid JSON: %s", got)
			}
		})
	}
}

// floatCases are numbers and what JSON.stringify writes for them in Node.js
// (Number.prototype.toString): plain decimals from 1e-6 up to 1e21, an
// exponent without leading zeros outside, and -0 as 0.
var floatCases = []struct {
	v    float64
	want string
}{
	{1.5, `1.5`},
	{0.1, `0.1`},
	{-2.25, `-2.25`},
	{100, `100`},
	{1e6, `1000000`},
	{123456789.123, `123456789.123`},
	{1e20, `100000000000000000000`},
	{12345678901234567890, `12345678901234567000`},
	{1e21, `1e+21`},
	{-1.5e300, `-1.5e+300`},
	{1.7976931348623157e308, `1.7976931348623157e+308`},
	{0.00001, `0.00001`},
	{0.000001, `0.000001`},
	{1e-7, `1e-7`},
	{-2.5e-8, `-2.5e-8`},
	{1.2345e-100, `1.2345e-100`},
	{5e-324, `5e-324`},
	{0, `0`},
	{math.Copysign(0, -1), `0`},
}

func TestRowFloat(t *testing.T) {
	t.Parallel()
	for _, tt := range floatCases {
		row := messages.Row{Columns: []string{"x"}, Values: []any{tt.v}}
		if got, want := string(row.AppendJSON(nil)), `{"x":`+tt.want+`}`; got != want {
			t.Errorf("float64 %v: got %s, want %s", tt.v, got, want)
		}
	}
}

func TestRowUnknownTypeFallsBackToJSON(t *testing.T) {
	t.Parallel()
	row := messages.Row{Columns: []string{"n", "bad"}, Values: []any{int(7), make(chan int)}}
	if got, want := string(row.AppendJSON(nil)), `{"n":7,"bad":null}`; got != want {
		t.Fatalf("AppendJSON = %s, want %s", got, want)
	}
}

func TestAppendTime(t *testing.T) {
	t.Parallel()
	ts := time.Date(2020, 4, 6, 11, 35, 18, 414123456, time.FixedZone("x", 3600))
	tests := []struct {
		digits int
		want   string
	}{
		{0, "2020-04-06T10:35:18.414Z"},
		{3, "2020-04-06T10:35:18.414Z"},
		{6, "2020-04-06T10:35:18.414123Z"},
		{9, "2020-04-06T10:35:18.414123456Z"},
	}
	for _, tt := range tests {
		if got := string(messages.AppendTime(nil, ts, tt.digits)); got != tt.want {
			t.Errorf("AppendTime(%d) = %s, want %s", tt.digits, got, tt.want)
		}
	}
}

// AppendTime writes what the layouts of time.Format write, for any time.
func TestAppendTimeMatchesFormat(t *testing.T) {
	t.Parallel()
	layouts := map[int]string{3: "2006-01-02T15:04:05.000Z", 6: "2006-01-02T15:04:05.000000Z", 9: "2006-01-02T15:04:05.000000000Z"}
	times := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 2, 3, 4, 5, 6, 7, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 2, 29, 23, 59, 59, 999500000, time.FixedZone("", -5*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(400*365*24*3600)-50*365*24*3600, rng.Int64N(1e9)))
	}
	for _, ts := range times {
		for digits, layout := range layouts {
			if got, want := string(messages.AppendTime(nil, ts, digits)), ts.UTC().Format(layout); got != want {
				t.Fatalf("AppendTime(%v, %d) = %s, want %s", ts, digits, got, want)
			}
		}
	}
}

func BenchmarkAppendTime(b *testing.B) {
	ts := time.Date(2026, 12, 2, 17, 0, 0, 123456789, time.UTC)
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = messages.AppendTime(buf[:0], ts, 3)
	}
}

// stringCases are strings whose JSON.stringify bytes AppendString must
// reproduce.
var stringCases = []string{
	"",
	"plain",
	`"`,
	`\`,
	`\"`,
	`a"b\c`,
	"/",
	"</script>",
	"<>&'",
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
	"\x20\x7f",
	"\u0080\u00a0\u00ff",
	"\u2028\u2029",
	"\ufeff",
	"\ufffd",
	"\uffff",
	"🚀",
	"👩‍👩‍👧",
	"日本語",
	"mixed \"é\" \t 🚀 \u2028 <&> \x1f end",
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<>&/'", `"<>&/'"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"🚀", `"🚀"`},
		{"\xff", "\"\ufffd\""},
		{"a\xc0\xafb", "\"a\ufffd\ufffdb\""},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // an encoded surrogate
	}
	for _, tt := range tests {
		if got := string(ordjson.AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// Whatever goes in, what comes out is valid UTF-8 and valid JSON that
	// decodes back to the input (with invalid bytes replaced).
	for _, s := range append(stringCases, "a\xffb", "\xe2\x82", "\xf0\x9f\x9a") {
		got := ordjson.AppendString(nil, s)
		if !utf8.Valid(got) {
			t.Errorf("AppendString(%q) = %q is not valid UTF-8", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("AppendString(%q) = %s is not a JSON string: %v", s, got, err)
			continue
		}
		if utf8.ValidString(s) && back != s {
			t.Errorf("AppendString(%q) decodes to %q", s, back)
		}
	}
}

// nodeStringify runs JSON.stringify in Node.js on each element of the JSON
// array input and returns what it wrote for each. It skips the test when
// node is not on PATH.
func nodeStringify(t *testing.T, input []byte) []string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The answer is itself a JSON array of strings, so any byte JSON.stringify
	// writes (U+2028 included) comes back intact.
	cmd := exec.CommandContext(ctx, node, "-e", `
		let text = "";
		process.stdin.setEncoding("utf8");
		process.stdin.on("data", (chunk) => { text += chunk; });
		process.stdin.on("end", () => {
			process.stdout.write(JSON.stringify(JSON.parse(text).map((v) => JSON.stringify(v))));
		});`)
	cmd.Stdin = bytes.NewReader(input)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	return got
}

// TestAppendStringMatchesNode compares AppendString with JSON.stringify in
// Node.js, the original server's encoder.
func TestAppendStringMatchesNode(t *testing.T) {
	t.Parallel()
	// encoding/json round-trips valid UTF-8 strings exactly.
	input, err := json.Marshal(stringCases)
	if err != nil {
		t.Fatal(err)
	}
	want := nodeStringify(t, input)
	if len(want) != len(stringCases) {
		t.Fatalf("node returned %d strings, want %d", len(want), len(stringCases))
	}
	for i, s := range stringCases {
		if got := string(ordjson.AppendString(nil, s)); got != want[i] {
			t.Errorf("AppendString(%q):\n got %q\nnode %q", s, got, want[i])
		}
	}
}

// TestRowFloatMatchesNode checks the floatCases table against Node.js.
func TestRowFloatMatchesNode(t *testing.T) {
	t.Parallel()
	// Shortest round-trip decimals, which JavaScript parses to the same
	// doubles; -0 keeps its sign.
	parts := make([]string, len(floatCases))
	for i, tt := range floatCases {
		parts[i] = strconv.FormatFloat(tt.v, 'g', -1, 64)
	}
	want := nodeStringify(t, []byte("["+strings.Join(parts, ",")+"]"))
	if len(want) != len(floatCases) {
		t.Fatalf("node returned %d numbers, want %d", len(want), len(floatCases))
	}
	for i, tt := range floatCases {
		row := messages.Row{Columns: []string{"x"}, Values: []any{tt.v}}
		if got := string(row.AppendJSON(nil)); got != `{"x":`+want[i]+`}` {
			t.Errorf("float64 %v: got %s, node wrote %s", tt.v, got, want[i])
		}
		if want[i] != tt.want {
			t.Errorf("float64 %v: the table says %s, node wrote %s", tt.v, tt.want, want[i])
		}
	}
}

func TestOKEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   messages.OK
		want string
	}{
		{
			name: "one row",
			ok:   messages.NewOK(1, 7),
			want: `{"fieldCount":0,"affectedRows":1,"insertId":7,"serverStatus":2,"warningCount":0,"message":"","protocol41":true,"changedRows":0}`,
		},
		{
			name: "several rows, & not escaped",
			ok:   messages.NewOK(2, 1),
			want: `{"fieldCount":0,"affectedRows":2,"insertId":1,"serverStatus":2,"warningCount":0,"message":"&Records: 2  Duplicates: 0  Warnings: 0","protocol41":true,"changedRows":0}`,
		},
		{
			name: "table without AUTO_INCREMENT",
			ok:   messages.NewOK(3, 0),
			want: `{"fieldCount":0,"affectedRows":3,"insertId":0,"serverStatus":2,"warningCount":0,"message":"&Records: 3  Duplicates: 0  Warnings: 0","protocol41":true,"changedRows":0}`,
		},
		{
			name: "64-bit insert id",
			ok:   messages.NewOK(1, math.MaxInt64),
			want: `{"fieldCount":0,"affectedRows":1,"insertId":9223372036854775807,"serverStatus":2,"warningCount":0,"message":"","protocol41":true,"changedRows":0}`,
		},
		{
			name: "message with HTML characters",
			ok:   messages.OK{Message: "<a&b>"},
			want: `{"fieldCount":0,"affectedRows":0,"insertId":0,"serverStatus":0,"warningCount":0,"message":"<a&b>","protocol41":false,"changedRows":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(tt.ok.Encode()); got != tt.want {
				t.Fatalf("Encode:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
