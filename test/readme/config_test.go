package readme_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestConfiguration holds the "Configuration" tables of docs/configuration.md to the
// program: every flag `eventsource serve -h` lists, with its default, and
// every environment variable the server reads, and nothing else.
func TestConfiguration(t *testing.T) {
	text := section(t, readFile(t, "docs/configuration.md"), "Configuration")
	var envRows, flagRows [][]string
	for _, table := range tables(text) {
		switch head := table[0][0]; {
		case head == "variable":
			envRows = table[1:]
		case strings.HasPrefix(head, "flag"):
			flagRows = table[1:]
		}
	}
	if envRows == nil || flagRows == nil {
		t.Fatal(`the Configuration section wants a table headed "variable" and one headed "flag of ` + "`serve`" + `"`)
	}
	t.Run("flags", func(t *testing.T) { checkFlags(t, flagRows) })
	t.Run("environment", func(t *testing.T) { checkEnvironment(t, envRows) })
}

var flagName = regexp.MustCompile(`^--([a-z0-9-]+)$`)

func checkFlags(t *testing.T, rows [][]string) {
	defaults := serveFlags(t)
	documented := map[string]bool{}
	for _, row := range rows {
		var names []string
		for _, span := range codeSpans(row[0]) {
			m := flagName.FindStringSubmatch(span)
			if m == nil {
				t.Errorf("row %q: %q is not a flag", row[0], span)
				continue
			}
			names = append(names, m[1])
		}
		if len(names) == 0 {
			t.Errorf("row %q names no flag", row[0])
			continue
		}
		values := strings.Split(row[1], ", ")
		if len(values) == 1 && len(names) > 1 {
			values = slices.Repeat(values, len(names))
		}
		if len(values) != len(names) {
			t.Errorf("row %q: %d flags, %d defaults (%q)", row[0], len(names), len(values), row[1])
			continue
		}
		for i, name := range names {
			if documented[name] {
				t.Errorf("--%s is in the table twice", name)
			}
			documented[name] = true
			def, ok := defaults[name]
			if !ok {
				t.Errorf("--%s is in the README but not in eventsource serve -h", name)
				continue
			}
			checkDefault(t, name, values[i], def)
		}
	}
	var missing []string
	for name := range defaults {
		if !documented[name] {
			missing = append(missing, "--"+name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("flags of eventsource serve missing from the README's table: %s", strings.Join(missing, ", "))
	}
}

// checkDefault compares the README's default of a flag, cell, with the
// default serve -h prints, def ("" when it prints none). A cell whose
// value starts with $ names the variable the default comes from, which
// -h cannot show; (none) and (empty) mean the zero value.
func checkDefault(t *testing.T, name, cell, def string) {
	t.Helper()
	cell = strings.TrimSpace(cell)
	spans := codeSpans(cell)
	var want string
	switch {
	case len(spans) > 0 && strings.HasPrefix(spans[0], "$"):
		return
	case len(spans) > 0:
		want = spans[0]
	case cell == "(none)" || cell == "(empty)":
		want = ""
	default:
		t.Errorf("--%s: default %q is neither `value`, (none) nor (empty)", name, cell)
		return
	}
	if def == "" && (want == "false" || want == "0") {
		want = ""
	}
	if want != def {
		t.Errorf("--%s: the README says default %q, eventsource serve -h says %q", name, want, def)
	}
}

var (
	flagLine    = regexp.MustCompile(`^  -([a-z0-9-]+)`)
	defaultText = regexp.MustCompile(`\(default (.*)\)$`)
)

// serveFlags runs `eventsource serve -h` with none of the server's
// variables set, and returns each flag with the default it prints ("" for
// none).
func serveFlags(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command(binary, "serve", "-h")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "MYSQL_") && !strings.HasPrefix(name, "REDIS_") && !strings.HasPrefix(name, "EVENTSOURCE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("eventsource serve -h: %v", err)
	}
	flags := map[string]string{}
	var current string
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			flags[current] = ""
			continue
		}
		if current == "" || !strings.HasPrefix(line, "    \t") {
			continue
		}
		if m := defaultText.FindStringSubmatch(line); m != nil {
			def := m[1]
			if s, err := strconv.Unquote(def); err == nil {
				def = s
			}
			flags[current] = def
		}
	}
	if len(flags) < 10 {
		t.Fatalf("eventsource serve -h lists %d flags:\n%s", len(flags), out)
	}
	return flags
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

func checkEnvironment(t *testing.T, rows [][]string) {
	read := serverVariables(t)
	documented := map[string]bool{}
	for _, row := range rows {
		for _, span := range codeSpans(row[0]) {
			if !envName.MatchString(span) {
				t.Errorf("row %q: %q is not a variable", row[0], span)
				continue
			}
			if documented[span] {
				t.Errorf("%s is in the table twice", span)
			}
			documented[span] = true
			if !read[span] {
				t.Errorf("%s is in the README but the server does not read it", span)
			}
		}
	}
	var missing []string
	for name := range read {
		if !documented[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("variables the server reads missing from the README's table: %s", strings.Join(missing, ", "))
	}
}

var quotedVariable = regexp.MustCompile(`"((?:MYSQL|REDIS|EVENTSOURCE)_[A-Z0-9_]+)"`)

// serverVariables are the environment variables serve reads: the names
// that the server's configuration (server/) and the serve command
// (cmd/eventsource/serve*.go) spell out, in code that is not a test.
func serverVariables(t *testing.T) map[string]bool {
	t.Helper()
	var files []string
	for _, pattern := range []string{"server/*.go", "cmd/eventsource/serve*.go"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	read := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quotedVariable.FindAllStringSubmatch(string(src), -1) {
			read[m[1]] = true
		}
	}
	if len(read) < 10 {
		t.Fatalf("found only %d variables in %v", len(read), files)
	}
	return read
}
