package ordjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeKeepsOrderAndNumbers(t *testing.T) {
	in := `{"z":1,"a":{"y":[true,null,"s"],"b":9007199254740993},"m":1.50}`
	v, err := Decode([]byte(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(v.AppendJSON(nil)); got != in {
		t.Fatalf("round trip\n got %s\nwant %s", got, in)
	}
	if keys := []string{v.Members[0].Key, v.Members[1].Key, v.Members[2].Key}; strings.Join(keys, ",") != "z,a,m" {
		t.Fatalf("key order %v", keys)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		limits Limits
		limit  bool
	}{
		{"depth", `{"a":{"b":{"c":1}}}`, Limits{MaxDepth: 2}, true},
		{"nodes", `[1,2,3,4]`, Limits{MaxNodes: 4}, true},
		{"duplicate key", `{"a":1,"a":2}`, Limits{}, false},
		{"trailing data", `{} {}`, Limits{}, false},
		{"truncated", `{"a":`, Limits{}, false},
		{"empty", ``, Limits{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), tt.limits)
			if err == nil {
				t.Fatal("decoded; want an error")
			}
			if errors.Is(err, ErrLimit) != tt.limit {
				t.Fatalf("errors.Is(ErrLimit) = %v for %v", !tt.limit, err)
			}
		})
	}
}

func TestAppendJSONDoesNotEscapeHTML(t *testing.T) {
	v := &Value{Kind: String, Text: `<a href="x">&</a>`}
	if got, want := string(v.AppendJSON(nil)), `"<a href=\"x\">&</a>"`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"$select":{"$where":{"pid":"x"}}}`))
	f.Add([]byte(`[1,{"a":null}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data, Limits{MaxDepth: 32, MaxNodes: 1000})
		if err != nil {
			return
		}
		again, err := Decode(v.AppendJSON(nil), Limits{})
		if err != nil {
			t.Fatalf("re-decode of own output: %v", err)
		}
		if string(again.AppendJSON(nil)) != string(v.AppendJSON(nil)) {
			t.Fatal("output not stable")
		}
	})
}

// TestAppendStringRoundTrips checks what AppendString writes (JSON.stringify's
// bytes, which messages' tests compare with Node.js) against encoding/json:
// valid UTF-8 comes back as it went in, and nothing but valid JSON comes out.
func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "tab\tnewline\ncr\rbs\bff\f", "\x00\x01\x1f\x7f",
		"<html> & stuff", "\u2028 and \u2029", "caf\u00e9 \U0001F600", "bad \xff utf8 \xe2\x82", "\xed\xa0\x80",
	} {
		checkAppendString(t, s)
	}
}

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	out := AppendString(nil, s)
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("AppendString(%q) = %s: not a JSON string: %v", s, out, err)
	}
	if !utf8.Valid(out) {
		t.Fatalf("AppendString(%q) = %q: not valid UTF-8", s, out)
	}
	if utf8.ValidString(s) && back != s {
		t.Fatalf("AppendString(%q) = %s decodes to %q", s, out, back)
	}
}

// BenchmarkAppendString encodes a row's text: an event's JSON data and its
// pid.
func BenchmarkAppendString(b *testing.B) {
	data := []byte(`{"n": 12345, "text": "abcdefghijabcdefghijabcdefghij", "more": "some longer plain text value here"}`)
	pid := []byte("bench-abcdef0123-p-42")
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(data) + len(pid)))
	for b.Loop() {
		buf = AppendString(buf[:0], data)
		buf = AppendString(buf, pid)
	}
}

// toAny turns a Value into what encoding/json's Decode with UseNumber gives.
func toAny(v *Value) any {
	switch v.Kind {
	case Null:
		return nil
	case Bool:
		return v.Bool
	case Number:
		return json.Number(v.Text)
	case String:
		return v.Text
	case Array:
		out := make([]any, len(v.Items))
		for i, item := range v.Items {
			out[i] = toAny(item)
		}
		return out
	default:
		out := make(map[string]any, len(v.Members))
		for _, m := range v.Members {
			out[m.Key] = toAny(m.Value)
		}
		return out
	}
}

// The decoder accepts what encoding/json accepts and reads the same values
// (duplicate keys aside, which it refuses).
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":[1,-0.5e+10,0,1E3,true,false,null,"x\u00e9\ud83d\ude00\n\/"]}`, ` [ ] `, `{}`, `"\ud800"`, `"\ud800\u0041"`,
		`"\udc00\ud800"`, "\"\xff\"", `01`, `1.`, `-`, `.5`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `tru`, `nul`,
		`"\x"`, `"\u12"`, `"\u12zz"`, "\"a\x01\"", `[1 2]`, `{1:2}`, `"unterminated`, `-01`, `1e+`, `0.0e-0`,
	} {
		t.Run(in, func(t *testing.T) { checkAgainstEncodingJSON(t, []byte(in)) })
	}
}

func checkAgainstEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	v, err := Decode(data, Limits{})
	if err != nil && strings.HasPrefix(err.Error(), "duplicate key") {
		return
	}
	if valid := json.Valid(data); valid != (err == nil) {
		t.Fatalf("Decode(%q) error %v, encoding/json valid %v", data, err, valid)
	}
	if err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if got := toAny(v); !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %#v, encoding/json %#v", data, got, want)
	}
}

func FuzzDecodeAgreesWithEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"$insert":{"$documents":[{"pid":"p","data":{"a":[1,2.5,"\u00e9"]}}]}}`))
	f.Add([]byte(`"\ud83d\ude00\ud800"`))
	f.Fuzz(func(t *testing.T, data []byte) { checkAgainstEncodingJSON(t, data) })
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b\\c\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) { checkAppendString(t, s) })
}

// EachMember reads the members Decode reads, values as their raw text.
func TestEachMember(t *testing.T) {
	for _, in := range []string{
		`{"channel":"c1","query":{"$select":{"$where":{"pid":"p\"}]{"}}},"reason":true,"window":32}`,
		` { "a" : [1, {"b": "]"}, "c"] , "z":null,"n":-1.5e3,"e":{} }`,
		`{"k\u00e9y":"v\\"}`,
		`{}`,
	} {
		want, err := Decode([]byte(in), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var got []Member
		err = EachMember([]byte(in), func(key string, raw []byte) bool {
			v, err := Decode(raw, Limits{})
			if err != nil {
				t.Fatalf("%s: member %q raw %q: %v", in, key, raw, err)
			}
			got = append(got, Member{Key: key, Value: v})
			return true
		})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(NewObject(got...).AppendJSON(nil)) != string(want.AppendJSON(nil)) {
			t.Fatalf("%s: members %s, Decode %s", in, NewObject(got...).AppendJSON(nil), want.AppendJSON(nil))
		}
	}
	for _, bad := range []string{``, `[1]`, `{"a"`, `{"a":"x`, `{1:2}`} {
		if err := EachMember([]byte(bad), func(string, []byte) bool { return true }); err == nil {
			t.Errorf("EachMember(%q) took it", bad)
		}
	}
}
