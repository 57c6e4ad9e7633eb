package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const rev = "0c2ba6e1f3a94b1d8e2c7a6b5d4c3b2a1f0e9d8c"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want Info
		str  string
	}{
		{"no build info", nil, Info{Version: Unknown, GoVersion: runtime.Version()}, "(devel)"},
		{"no version, no vcs", &debug.BuildInfo{GoVersion: "go1.26.8"}, Info{Version: Unknown, GoVersion: "go1.26.8"}, "(devel)"},
		{
			"checkout with changes",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "-buildmode", Value: "exe"},
				{Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.time", Value: "2026-12-07T10:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
			}},
			Info{Version: "(devel)", Revision: rev, Time: "2026-12-07T10:00:00Z", Modified: true, GoVersion: "go1.26.8"},
			"(devel)+0c2ba6e1f3a9.dirty",
		},
		{
			"tagged and clean",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.modified", Value: "false"},
			}},
			Info{Version: "v1.2.0", Revision: rev, GoVersion: "go1.26.8"},
			"v1.2.0+0c2ba6e1f3a9",
		},
		{
			"pseudo-version of a checkout with changes",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207053746-0c2ba6e1f3a9+dirty"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.modified", Value: "true"},
			}},
			Info{Version: "v0.0.0-20261207053746-0c2ba6e1f3a9+dirty", Revision: rev, Modified: true, GoVersion: runtime.Version()},
			"v0.0.0-20261207053746-0c2ba6e1f3a9+dirty",
		},
		{
			"tagged with other build metadata",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.0+incompatible"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.modified", Value: "true"},
			}},
			Info{Version: "v1.2.0+incompatible", Revision: rev, Modified: true, GoVersion: runtime.Version()},
			"v1.2.0+incompatible.0c2ba6e1f3a9.dirty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Parse(tt.bi)
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestReadOfTheTestBinary(t *testing.T) {
	t.Parallel()
	info := Read()
	if info.Version == "" || info.GoVersion == "" {
		t.Errorf("Read() = %+v: want a version (at least %q) and a Go version", info, Unknown)
	}
}
