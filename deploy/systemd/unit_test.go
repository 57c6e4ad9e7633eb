// Package systemd_test checks the systemd unit, its user and its
// environment file against the server: systemd-analyze verify accepts the
// unit, the settings a production server needs are there, and the
// environment file names exactly the variables the code reads.
package systemd_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/server"
)

const (
	unitFile    = "eventsource.service"
	envFile     = "eventsource.env.example"
	sysusers    = "eventsource.sysusers.conf"
	binary      = "/usr/local/bin/eventsource"
	envFilePath = "/etc/eventsource/eventsource.env"
	// moduleRoot is the repository, from this package's directory.
	moduleRoot = "../.."
	// stopMargin is what runServe adds to --shutdown-grace to bound the
	// whole shutdown (cmd/eventsource/serve.go).
	stopMargin = 5 * time.Second
)

// sourceDirs hold every place the server reads its environment: the CLI
// (flags and env fallbacks) and server (Config.FromEnv and its helpers).
// Nothing else reads it (STYLE.md: "nothing else reads env or flags").
var sourceDirs = []string{"cmd", "server"}

// unit is a unit file: section -> key -> values in order (a key may be
// given more than once).
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continuation lines are not read by this test", path, n)
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			key = strings.TrimSpace(key)
			u[section][key] = append(u[section][key], strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// envLine is one assignment of the environment file.
type envLine struct {
	name, value string
	line        int
	comment     string // the comment lines right above it
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// readEnv reads an EnvironmentFile as systemd does: KEY=VALUE lines, # and
// ; comments, a value optionally in matching quotes.
func readEnv(t *testing.T, path string) []envLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []envLine
	var comment []string
	for i, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			comment = nil
		case line[0] == '#' || line[0] == ';':
			comment = append(comment, line)
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || !envName.MatchString(key) {
				t.Errorf("%s:%d: not NAME=value: %q", path, i+1, line)
				continue
			}
			if n := len(value); n >= 2 && (value[0] == '"' || value[0] == '\'') {
				if value[n-1] != value[0] {
					t.Errorf("%s:%d: unbalanced quotes in %q", path, i+1, value)
				}
				value = value[1 : n-1]
			} else if strings.ContainsAny(value, " \t\"'\\$") {
				t.Errorf("%s:%d: quote a value with spaces, quotes, backslashes or $: %q", path, i+1, value)
			}
			out = append(out, envLine{name: key, value: value, line: i + 1, comment: strings.Join(comment, "\n")})
			comment = nil
		}
	}
	return out
}

var (
	// unitVar is a variable the unit expands in a command line.
	unitVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	// envLiteral is a string constant that names an environment variable.
	envLiteral = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)
)

// execStart splits ExecStart into the command and the variables it
// expands; anything else after "serve" is reported.
func execStart(t *testing.T, u unit) (argv []string, vars []string) {
	t.Helper()
	line := u.get("Service", "ExecStart")
	argv = strings.Fields(line)
	if len(argv) < 2 || argv[0] != binary || argv[1] != "serve" {
		t.Fatalf("ExecStart=%s: want %s serve", line, binary)
	}
	for _, a := range argv[2:] {
		m := unitVar.FindStringSubmatch(a)
		if m == nil || m[0] != a {
			t.Errorf("ExecStart argument %q: put flags in %s through a variable, so that hosts differ by their environment file only", a, envFile)
			continue
		}
		vars = append(vars, m[1])
	}
	return argv, vars
}

// TestUnitVerifies runs systemd-analyze verify on the unit, its binary
// pointed at a stand-in (verify wants an executable there), and fails on
// any complaint: an unknown key or a bad value is only a warning to it.
func TestUnitVerifies(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd): the unit is not verified")
	}
	dir := t.TempDir()
	stand := filepath.Join(dir, "eventsource")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "ExecStart="+binary+" ") {
		t.Fatalf("%s has no ExecStart=%s", unitFile, binary)
	}
	copyPath := filepath.Join(dir, unitFile)
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(text), "ExecStart="+binary, "ExecStart="+stand)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=no", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}

	// The exposure systemd-analyze security gives the hardening (0 to 10,
	// lower is better; 1.4 with systemd 252).
	out, err = exec.Command(tool, "security", "--offline=yes", copyPath).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline (systemd 250 and later): %v: the exposure is not checked", err)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.5 {
		t.Errorf("exposure level %.1f, want 2.5 at most: the hardening was weakened\n%s", level, out)
	}
}

// TestUnitSettings checks what a production server needs of the unit.
func TestUnitSettings(t *testing.T) {
	t.Parallel()
	u := readUnit(t, unitFile)
	want := func(key, value string) {
		t.Helper()
		if got := u.get("Service", key); got != value {
			t.Errorf("%s=%s, want %s", key, got, value)
		}
	}
	// The server does not call sd_notify: Type=notify would never start.
	if typ := u.get("Service", "Type"); typ != "simple" && typ != "exec" {
		t.Errorf("Type=%s, want simple or exec", typ)
	}
	execStart(t, u)
	want("EnvironmentFile", envFilePath)
	want("Restart", "on-failure")
	for key, value := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
	} {
		want(key, value)
	}
	user, group := u.get("Service", "User"), u.get("Service", "Group")
	if user == "" || user == "root" || group == "" || group == "root" {
		t.Errorf("User=%s Group=%s: want a dedicated user and group", user, group)
	}
	if slices.Contains([]string{"yes", "true"}, u.get("Service", "DynamicUser")) {
		t.Error("DynamicUser: want the dedicated user of " + sysusers)
	}

	// Descriptors: every HTTP connection (SSE streams included) holds one,
	// past --http-max-connections too until it is refused and closed.
	nofile, err := strconv.Atoi(u.get("Service", "LimitNOFILE"))
	maxConns := gateway.DefaultConfig().MaxConnections
	if err != nil || nofile < 2*maxConns+1024 {
		t.Errorf("LimitNOFILE=%s: want at least %d (twice --http-max-connections' %d, and room for MySQL and Redis)",
			u.get("Service", "LimitNOFILE"), 2*maxConns+1024, maxConns)
	}

	// systemd must not kill the server before its own shutdown bound.
	grace := server.DefaultConfig().ShutdownGrace
	for _, e := range readEnv(t, envFile) {
		if m := regexp.MustCompile(`--?shutdown-grace[= ](\S+)`).FindStringSubmatch(e.value); m != nil {
			if grace, err = time.ParseDuration(m[1]); err != nil {
				t.Fatalf("%s: --shutdown-grace %q: %v", e.name, m[1], err)
			}
		}
	}
	stop, err := systemdSpan(u.get("Service", "TimeoutStopSec"))
	if err != nil {
		t.Errorf("TimeoutStopSec=%s: %v", u.get("Service", "TimeoutStopSec"), err)
	} else if stop <= grace+stopMargin {
		t.Errorf("TimeoutStopSec=%s: want more than the server's shutdown bound, --shutdown-grace %s + %s", stop, grace, stopMargin)
	}
	if sig := u.get("Service", "KillSignal"); sig != "" && sig != "SIGTERM" && sig != "SIGINT" {
		t.Errorf("KillSignal=%s: the server shuts down in order on SIGTERM or SIGINT only", sig)
	}
}

// systemdSpan parses a systemd time span as TimeoutStopSec takes it:
// "30", "30s", "1min 30s", "2m".
func systemdSpan(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("not set (systemd's default is 90 s, but say it)")
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	r := strings.NewReplacer("min", "m", "sec", "s", "hr", "h", " ", "")
	return time.ParseDuration(r.Replace(s))
}

// TestSysusers creates the unit's user and group with systemd-sysusers in
// a scratch root.
func TestSysusers(t *testing.T) {
	t.Parallel()
	u := readUnit(t, unitFile)
	tool, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Skip("systemd-sysusers is not installed: " + sysusers + " is not tried")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(sysusers)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "--root="+root, abs).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers %s: %v\n%s", sysusers, err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(u.get("Service", "User")) + `:x:\d+:\d+:[^:]*:[^:]*:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("no system user %s without a login:\n%s", u.get("Service", "User"), passwd)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(u.get("Service", "Group")) + `:x:\d+:`).Match(group) {
		t.Errorf("no group %s:\n%s", u.get("Service", "Group"), group)
	}
}

// codeEnv returns the environment variables the server's code reads, with
// where each is read: every os.Getenv and os.LookupEnv of a constant name,
// and every constant shaped like a name (NAME_OF_IT) inside a function that
// takes a getenv function (Config.FromEnv and its helpers). A name the test cannot
// see (a variable passed to os.Getenv) fails it.
func codeEnv(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range sourceDirs {
		err := filepath.WalkDir(filepath.Join(moduleRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			consts := stringConsts(f)
			value := func(e ast.Expr) (string, bool) {
				switch e := e.(type) {
				case *ast.BasicLit:
					if e.Kind == token.STRING {
						s, err := strconv.Unquote(e.Value)
						return s, err == nil
					}
				case *ast.Ident:
					s, ok := consts[e.Name]
					return s, ok
				}
				return "", false
			}
			add := func(name string, pos token.Pos) {
				if _, ok := names[name]; !ok {
					names[name] = fset.Position(pos).String()
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || len(n.Args) != 1 {
						return true
					}
					if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "os" || (sel.Sel.Name != "Getenv" && sel.Sel.Name != "LookupEnv") {
						return true
					}
					name, ok := value(n.Args[0])
					if !ok {
						t.Errorf("%s: os.%s of a name this test cannot read: use a constant", fset.Position(n.Pos()), sel.Sel.Name)
						return true
					}
					add(name, n.Pos())
				case *ast.FuncDecl:
					if takesGetenv(n.Type) && n.Body != nil {
						envNames(n.Body, value, add)
					}
				case *ast.FuncLit:
					if takesGetenv(n.Type) {
						envNames(n.Body, value, add)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// stringConsts are the string constants a file declares.
func stringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							out[name.Name] = s
						}
					}
				}
			}
		}
	}
	return out
}

// takesGetenv reports whether a function has a func(string) string or
// func(string) (string, bool) parameter.
func takesGetenv(ft *ast.FuncType) bool {
	for _, p := range ft.Params.List {
		f, ok := p.Type.(*ast.FuncType)
		if !ok || f.Params.NumFields() != 1 || f.Results.NumFields() < 1 {
			continue
		}
		if id, ok := f.Params.List[0].Type.(*ast.Ident); ok && id.Name == "string" {
			return true
		}
	}
	return false
}

// envNames adds each string constant in body shaped like an environment
// variable's name: an argument of getenv or of a helper that calls it, a
// key of a table of names.
func envNames(body *ast.BlockStmt, value func(ast.Expr) (string, bool), add func(string, token.Pos)) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit, *ast.Ident:
			if s, ok := value(n.(ast.Expr)); ok && envLiteral.MatchString(s) {
				add(s, n.Pos())
			}
		}
		return true
	})
}

// TestEnvExampleNamesEveryVariable checks the environment file both ways
// against the code: every variable the server reads has its line, with a
// comment that gives its default, and every line is one the server reads
// or one the unit expands in ExecStart.
func TestEnvExampleNamesEveryVariable(t *testing.T) {
	t.Parallel()
	code := codeEnv(t)

	// Config.FromEnv, run: what it asks for must be among what the scan
	// found, or the scan has gone blind.
	asked := map[string]bool{}
	cfg := server.DefaultConfig()
	_ = cfg.FromEnv(func(name string) string { asked[name] = true; return "" })
	if len(asked) == 0 {
		t.Fatal("Config.FromEnv asked for no variable")
	}
	for _, name := range slices.Sorted(maps.Keys(asked)) {
		if _, ok := code[name]; !ok {
			t.Errorf("Config.FromEnv reads %s, which the source scan missed: teach codeEnv the new helper", name)
		}
	}

	_, unitVars := execStart(t, readUnit(t, unitFile))
	lines := readEnv(t, envFile)
	seen := map[string]int{}
	for _, l := range lines {
		if first, ok := seen[l.name]; ok {
			t.Errorf("%s:%d: %s is set again (first on line %d)", envFile, l.line, l.name, first)
		}
		seen[l.name] = l.line
		_, inCode := code[l.name]
		inUnit := slices.Contains(unitVars, l.name)
		switch {
		case inCode && inUnit:
			t.Errorf("%s: the server reads it and the unit expands it too: rename the unit's", l.name)
		case !inCode && !inUnit:
			t.Errorf("%s:%d: %s is read neither by the server (cmd/, server/) nor by the unit", envFile, l.line, l.name)
		}
		if !strings.Contains(strings.ToLower(l.comment), "default:") {
			t.Errorf("%s:%d: %s: the comment above it must say \"Default: ...\"", envFile, l.line, l.name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(code)) {
		if _, ok := seen[name]; !ok {
			t.Errorf("%s (read at %s) has no line in %s", name, code[name], envFile)
		}
	}
	for _, name := range unitVars {
		if _, ok := seen[name]; !ok {
			t.Errorf("the unit expands $%s, which %s does not set", name, envFile)
		}
	}

	// The example's values are ones the server takes.
	values := map[string]string{}
	for _, l := range lines {
		values[l.name] = l.value
	}
	cfg = server.DefaultConfig()
	if err := cfg.FromEnv(func(name string) string { return values[name] }); err != nil {
		t.Errorf("the server refuses %s: %v", envFile, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the configuration of %s is invalid: %v", envFile, err)
	}
	if v := values["EVENTSOURCE_ANONYMOUS"]; v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			t.Errorf("EVENTSOURCE_ANONYMOUS=%q is not a boolean", v)
		}
	}
	for _, secret := range []string{"MYSQL_PASS", "REDIS_PASSWORD", "REDIS_URL", "EVENTSOURCE_ADMIN_TOKEN", "EVENTSOURCE_JWT_SECRET"} {
		if values[secret] != "" {
			t.Errorf("%s carries a value for %s: leave secrets empty in the example", envFile, secret)
		}
	}

	// deploy/README.md sources the file from sh for the migration: the
	// shell must read the values systemd reads.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Logf("no sh: %s is not sourced", envFile)
		return
	}
	for _, l := range lines {
		out, err := exec.Command(sh, "-c", `set -a; . "./$1"; printf '%s' "$(printenv "$2")"`, "sh", envFile, l.name).Output()
		if err != nil {
			t.Fatalf("sh . %s: %v", envFile, err)
		}
		if string(out) != l.value {
			t.Errorf("%s:%d: sh reads %s as %q, systemd as %q", envFile, l.line, l.name, out, l.value)
		}
	}
}

// TestServeFlagsParse runs the real binary's flag parsing on the flags the
// environment file gives the unit: a misspelt flag or a bad value fails
// here rather than at the first start.
func TestServeFlagsParse(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") == "" {
			t.Skip("no go command to build eventsource with")
		}
	}
	_, unitVars := execStart(t, readUnit(t, unitFile))
	var flags []string
	for _, l := range readEnv(t, envFile) {
		if slices.Contains(unitVars, l.name) {
			flags = append(flags, strings.Fields(l.value)...)
		}
	}
	bin := filepath.Join(t.TempDir(), "eventsource")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/eventsource")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// -h after the flags: they are parsed, then serve prints its usage and
	// exits 2 without connecting anywhere.
	cmd := exec.Command(bin, append(append([]string{"serve"}, flags...), "-h")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "usage: eventsource serve") ||
		regexp.MustCompile(`flag provided but not defined|invalid value|invalid boolean|unexpected argument`).Match(out) {
		t.Errorf("eventsource serve %s: the flags do not parse:\n%s", strings.Join(flags, " "), out)
	}
}
