package ordjson

import (
	"errors"
	"strings"
	"testing"
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
