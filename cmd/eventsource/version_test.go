package main

import (
	"context"
	dbuildinfo "debug/buildinfo"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/buildinfo"
)

// binaryInfo is the build information recorded in the program at path.
func binaryInfo(tb testing.TB, path string) buildinfo.Info {
	tb.Helper()
	bi, err := dbuildinfo.ReadFile(path)
	if err != nil {
		tb.Fatalf("read the build information of %s: %v", path, err)
	}
	return buildinfo.Parse(bi)
}

// buildVersion is the one-word version of the program under test, as its
// server logs it.
func buildVersion(tb testing.TB) string { return binaryInfo(tb, binary).String() }

// versionFields runs version and returns its "name  value" lines.
func versionFields(t *testing.T, path string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", path, err)
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(out)) {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "  ")
		if !ok {
			t.Fatalf("version printed %q, not name and value", line)
		}
		fields[name] = strings.TrimSpace(value)
	}
	return fields
}

// wantFields is what version must print for info.
func wantFields(info buildinfo.Info) map[string]string {
	commit := info.Revision
	if commit == "" {
		commit = "unknown"
	}
	if info.Modified {
		commit += " (modified)"
	}
	when := info.Time
	if when == "" {
		when = "unknown"
	}
	return map[string]string{"version": info.Version, "commit": commit, "commit time": when, "go": info.GoVersion}
}

func checkFields(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("version printed %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("version: %s %q, want %q", k, got[k], v)
		}
	}
}

// The test's build has no VCS stamp (testbinary does not ask for one):
// version says what it has and "unknown" for the rest.
func TestVersion(t *testing.T) {
	t.Parallel()
	info := binaryInfo(t, binary)
	checkFields(t, versionFields(t, binary), wantFields(info))
	if info.Version == "" || info.GoVersion == "" {
		t.Errorf("build information %+v lacks a version or Go version", info)
	}
}

// Built as make build does (-buildvcs=auto, whatever GOFLAGS says), the
// program knows the commit it was built from.
func TestVersionOfMakeBuild(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): nothing to stamp", err)
	}
	path := filepath.Join(t.TempDir(), "eventsource")
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=auto", "-o", path, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=auto: %v\n%s", err, out)
	}
	info := binaryInfo(t, path)
	got := versionFields(t, path)
	checkFields(t, got, wantFields(info))
	if rev := strings.TrimSpace(string(head)); info.Revision != rev || !strings.HasPrefix(got["commit"], rev) {
		t.Errorf("commit %q, want HEAD %s", got["commit"], rev)
	}
	if _, err := time.Parse(time.RFC3339, got["commit time"]); err != nil {
		t.Errorf("commit time %q: %v", got["commit time"], err)
	}
	if s := info.String(); !strings.Contains(s, info.ShortRevision()) {
		t.Errorf("one-word version %q does not name the commit %s", s, info.ShortRevision())
	}
}
