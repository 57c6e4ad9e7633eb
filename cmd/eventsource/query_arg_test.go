package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseQueryArg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       string // the error, "" for none
	}{
		{"object", ` {"$select":{}} `, ""},
		{"truncated", `{"$select":{`, "--query: unexpected end of JSON input (at byte 12)"},
		{"bad character", `{"$select" {}}`, "--query: invalid character '{' after object key (at byte 12)"},
		{"trailing data", `{} x`, "--query: invalid character 'x' after top-level value (at byte 4)"},
		{"empty", "  ", "--query: is empty: want a JSON object"},
		{"array", `[1]`, "--query: a JSON array, not an object"},
		{"string", `"x"`, "--query: a JSON string, not an object"},
		{"duplicate key", `{"$select":{},"$select":{}}`, `--query: duplicate key "$select"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := parseQueryArg("query", tt.text)
			if tt.want == "" {
				if err != nil || string(raw) != strings.TrimSpace(tt.text) {
					t.Fatalf("got %q, %v", raw, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || !errors.Is(err, errUsage) {
				t.Fatalf("error %v, want %q, a usage error", err, tt.want)
			}
		})
	}
}

// `eventsource sql` reports an invalid --query on one line and exits 2,
// before it connects to anything.
func TestSQLCommandInvalidQuery(t *testing.T) {
	t.Parallel()
	env := []string{"MYSQL_PORT=1", "MYSQL_DATABASE=es_eventsource_never"}
	tests := []struct {
		name, query, stderr string
	}{
		{"truncated", `{"$select":{"$where":`, "eventsource sql: --query: unexpected end of JSON input (at byte 21)\n"},
		{"not an object", `[]`, "eventsource sql: --query: a JSON array, not an object\n"},
		{"duplicate key", `{"$select":{"pid":1,"pid":2}}`, "eventsource sql: --query: duplicate key \"pid\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runBinary(t, env, "sql", "--query", tt.query)
			if res.code != 2 || res.stdout != "" || res.stderr != tt.stderr {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2, nothing, %q", res.code, res.stdout, res.stderr, tt.stderr)
			}
		})
	}
}
