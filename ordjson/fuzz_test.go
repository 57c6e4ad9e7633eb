package ordjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeUnderLimits checks Decode under limits the fuzzer picks (zero:
// none) against an ordered reading of the same bytes by encoding/json's
// tokenizer (FuzzDecode and FuzzDecodeAgreesWithEncodingJSON read without
// limits and through a map, which loses order and duplicate keys):
//
//   - Decode never panics;
//   - what encoding/json refuses, Decode refuses;
//   - on what encoding/json accepts, the one documented difference is a
//     duplicate key, which Decode refuses; otherwise Decode accepts the
//     input exactly when it is within the limits (no value deeper than
//     MaxDepth, the top level being depth 0; at most MaxNodes values), its
//     error then wraps ErrLimit when there is no duplicate key, and the
//     tree has the same keys in the same order, the same strings and the
//     same number literals as encoding/json reads;
//   - a decoded tree is within the limits, and AppendJSON writes JSON that
//     encoding/json accepts and that decodes, under the same limits, to an
//     equal tree.
func FuzzDecodeUnderLimits(f *testing.F) {
	for _, s := range []struct {
		in       string
		maxDepth uint8
		maxNodes uint16
	}{
		{`{"$select":{"$from":"event","$columns":["pid","data"],"$where":{"id":{"$gt":9007199254740993}}}}`, 32, 10000},
		{`{"z":1,"a":{"y":[true,null,"s"],"b":-0.5e+10},"m":1.50}`, 2, 9},
		{`{"a":{"b":{"c":1}}}`, 2, 0},
		{`[1,2,3,4]`, 0, 4},
		{`{"a":1,"a":2}`, 0, 0},
		{`{"a":1,"\u0061":2}`, 1, 3},
		{"{\"\xff\":1,\"\xfe\":2}", 0, 0},
		{`"\ud83d\ude00\ud800\u0041\udc00"`, 0, 1},
		{`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, 32, 0},
		{`{"a":[1,]}`, 0, 0},
		{` 01 `, 0, 0},
		{``, 0, 0},
	} {
		f.Add([]byte(s.in), s.maxDepth, s.maxNodes)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxDepth uint8, maxNodes uint16) {
		limits := Limits{MaxDepth: int(maxDepth), MaxNodes: int(maxNodes)}
		v, err := Decode(data, limits)
		valid := json.Valid(data)
		if !valid {
			if err == nil {
				t.Fatalf("Decode(%q) = %s; encoding/json refuses it", data, v.AppendJSON(nil))
			}
			return
		}
		want, werr := tokenTree(data)
		if werr != nil {
			t.Fatalf("encoding/json validates %q but its tokenizer fails: %v", data, werr)
		}
		dup := duplicateKey(want)
		within := (limits.MaxDepth == 0 || nesting(want) <= limits.MaxDepth) &&
			(limits.MaxNodes == 0 || want.Count() <= limits.MaxNodes)
		switch {
		case err == nil && dup != "":
			t.Fatalf("Decode(%q) took duplicate key %q", data, dup)
		case err == nil && !within:
			t.Fatalf("Decode(%q) took %d values nested %d deep, over %+v", data, want.Count(), nesting(want), limits)
		case err != nil && dup == "" && within:
			t.Fatalf("Decode(%q): %v; encoding/json accepts it, within %+v", data, err, limits)
		case err != nil && dup == "" && !errors.Is(err, ErrLimit):
			t.Fatalf("Decode(%q) over %+v: %v, which does not wrap ErrLimit", data, limits, err)
		case err != nil:
			return
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("Decode(%q) = %s, encoding/json reads %s", data, v.AppendJSON(nil), want.AppendJSON(nil))
		}
		out := v.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("AppendJSON of Decode(%q) = %q: not JSON", data, out)
		}
		back, err := Decode(out, limits)
		if err != nil {
			t.Fatalf("AppendJSON of Decode(%q) = %s: %v", data, out, err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("AppendJSON of Decode(%q) = %s, which decodes to %s", data, out, back.AppendJSON(nil))
		}
	})
}

// FuzzEachMember checks EachMember, which PeekRequest runs on every
// request: it never panics, calls fn at most once per byte of input, stops
// when fn says so, and on an object that encoding/json accepts yields
// every member (duplicates included: it does not look for them) with its
// key and its raw value, which decodes to what encoding/json reads there.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{"channel":"c1","query":{"$select":{"$where":{"pid":"p\"}]{"}}},"reason":true,"window":32}`,
		` { "a" : [1, {"b": "]"}, "c"] , "z":null,"n":-1.5e3,"e":{} }`,
		`{"k\u00e9y":"v\\","k\u00e9y":1}`,
		`{"channel":"a" "reason":true}`,
		`{"a":}`,
		`{}`,
		`[1]`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, stopAfter uint8) {
		var keys []string
		var raws [][]byte
		err := EachMember(data, func(key string, raw []byte) bool {
			keys = append(keys, key)
			raws = append(raws, raw)
			if len(keys) > len(data) {
				t.Fatalf("EachMember(%q) called fn %d times", data, len(keys))
			}
			return stopAfter == 0 || len(keys) < int(stopAfter)
		})
		if stopAfter > 0 && len(keys) > int(stopAfter) {
			t.Fatalf("EachMember(%q) went on after fn returned false: %d calls", data, len(keys))
		}
		if !json.Valid(data) {
			return
		}
		want, werr := tokenTree(data)
		if werr != nil {
			t.Fatalf("encoding/json validates %q but its tokenizer fails: %v", data, werr)
		}
		if want.Kind != Object {
			if err == nil {
				t.Fatalf("EachMember(%q) took a %s", data, want.Kind)
			}
			return
		}
		if err != nil {
			t.Fatalf("EachMember(%q): %v", data, err)
		}
		n := len(want.Members)
		if stopAfter > 0 {
			n = min(n, int(stopAfter))
		}
		if len(keys) != n {
			t.Fatalf("EachMember(%q) yielded keys %q, want the first %d of %d", data, keys, n, len(want.Members))
		}
		for i, key := range keys {
			m := want.Members[i]
			if key != m.Key {
				t.Fatalf("EachMember(%q): key %d is %q, want %q", data, i, key, m.Key)
			}
			got, err := tokenTree(raws[i])
			if err != nil {
				t.Fatalf("EachMember(%q): raw value %q of %q: %v", data, raws[i], key, err)
			}
			if !reflect.DeepEqual(got, m.Value) {
				t.Fatalf("EachMember(%q): raw value of %q reads %s, want %s", data, key, got.AppendJSON(nil), m.Value.AppendJSON(nil))
			}
		}
	})
}

// tokenTree reads data with encoding/json's tokenizer into a Value, keys
// in order and duplicates kept: the reference the fuzz targets compare
// with.
func tokenTree(data []byte) (*Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := tokenValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("after the value: %v", err)
	}
	return v, nil
}

func tokenValue(dec *json.Decoder) (*Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		v := &Value{Kind: Array, Items: []*Value{}}
		if tok == '{' {
			v = &Value{Kind: Object, Members: []Member{}}
		}
		for dec.More() {
			if v.Kind == Object {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				item, err := tokenValue(dec)
				if err != nil {
					return nil, err
				}
				v.Members = append(v.Members, Member{Key: key.(string), Value: item})
				continue
			}
			item, err := tokenValue(dec)
			if err != nil {
				return nil, err
			}
			v.Items = append(v.Items, item)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return v, nil
	case string:
		return &Value{Kind: String, Text: tok}, nil
	case json.Number:
		return &Value{Kind: Number, Text: string(tok)}, nil
	case bool:
		return &Value{Kind: Bool, Bool: tok}, nil
	case nil:
		return &Value{Kind: Null}, nil
	}
	return nil, fmt.Errorf("token %v of type %T", tok, tok)
}

// nesting is how deep the deepest value of v sits, v being at depth 0: what
// Limits.MaxDepth bounds.
func nesting(v *Value) int {
	d := 0
	for _, item := range v.Items {
		d = max(d, 1+nesting(item))
	}
	for _, m := range v.Members {
		d = max(d, 1+nesting(m.Value))
	}
	return d
}

// duplicateKey returns a key that some object of v holds twice, or "" (a
// duplicated empty key is reported as `""`).
func duplicateKey(v *Value) string {
	seen := map[string]bool{}
	for _, m := range v.Members {
		if seen[m.Key] {
			if m.Key == "" {
				return `""`
			}
			return m.Key
		}
		seen[m.Key] = true
		if dup := duplicateKey(m.Value); dup != "" {
			return dup
		}
	}
	for _, item := range v.Items {
		if dup := duplicateKey(item); dup != "" {
			return dup
		}
	}
	return ""
}

// The reference the fuzz targets compare with reads what it should.
func TestFuzzReference(t *testing.T) {
	tests := []struct {
		in           string
		out          string
		nesting, dup int
	}{
		{`{"b":1,"a":[true,null,{"c":"\u00e9"}]}`, `{"b":1,"a":[true,null,{"c":"é"}]}`, 3, 0},
		{`{"a":{},"a":[]}`, `{"a":{},"a":[]}`, 1, 1},
		{`[{"":1,"":2}]`, `[{"":1,"":2}]`, 2, 1},
		{` 1.50e+3 `, `1.50e+3`, 0, 0},
	}
	for _, tt := range tests {
		v, err := tokenTree([]byte(tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got := string(v.AppendJSON(nil)); got != tt.out {
			t.Errorf("tokenTree(%s) = %s, want %s", tt.in, got, tt.out)
		}
		if got := nesting(v); got != tt.nesting {
			t.Errorf("nesting(%s) = %d, want %d", tt.in, got, tt.nesting)
		}
		if got := duplicateKey(v) != ""; got != (tt.dup == 1) {
			t.Errorf("duplicateKey(%s) = %q", tt.in, duplicateKey(v))
		}
	}
	for _, bad := range []string{`1 2`, `{"a":1}x`, `[1,]`} {
		if v, err := tokenTree([]byte(bad)); err == nil {
			t.Errorf("tokenTree(%s) = %s, want an error", bad, v.AppendJSON(nil))
		}
	}
}

// manyKeys is an object of n keys, k0000000 and on.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%07d":0`, i)
	}
	b.WriteString("}")
	return b.String()
}

// Duplicates are found wherever they are, past the short scan too.
func TestDuplicateKeysAmongMany(t *testing.T) {
	limits := Limits{MaxDepth: 4, MaxNodes: 100_000}
	obj := manyKeys(5000)
	for _, tc := range []struct{ name, data string }{
		{"early", strings.Replace(obj, `"k0000002"`, `"k0000001"`, 1)},
		{"at the switch to a set", strings.Replace(obj, `"k0000016"`, `"k0000000"`, 1)},
		{"late", strings.Replace(obj, `"k0004999"`, `"k0000003"`, 1)},
		{"late of late", strings.Replace(obj, `"k0004999"`, `"k0004998"`, 1)},
	} {
		if _, err := Decode([]byte(tc.data), limits); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%s: %v, want a duplicate key error", tc.name, err)
		}
	}
	if _, err := Decode([]byte(obj), limits); err != nil {
		t.Fatal(err)
	}
}

// go test -run X -bench ManyKeys ./ordjson: an object of many keys costs
// about what an array of as many strings does (a scan per key made 10,000
// keys 60 times slower).
func BenchmarkDecodeManyKeys(b *testing.B) {
	limits := Limits{MaxDepth: 4, MaxNodes: 100_000}
	obj := []byte(manyKeys(10_000))
	b.SetBytes(int64(len(obj)))
	for b.Loop() {
		if _, err := Decode(obj, limits); err != nil {
			b.Fatal(err)
		}
	}
}
