// Package buildinfo says what build of eventsource is running: the module
// version and the commit it was built from, as the go command recorded
// them in the binary (debug.ReadBuildInfo). The version command, the
// startup log line, /readyz and the eventsource_build_info metric all read
// it here, so that they agree.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Unknown is the version when the binary records none: a build outside a
// module, or a test binary. It is what the go command writes for a build
// of the main module from its own checkout, too.
const Unknown = "(devel)"

// Info is one binary's build information. Strings are empty when the
// binary does not record them: a build without VCS stamping
// (-buildvcs=false, or outside a checkout) has no Revision, Time or
// Modified.
type Info struct {
	// Version is the main module's version, Unknown when there is none.
	Version string
	// Revision is the commit (vcs.revision).
	Revision string
	// Time is the commit's time, RFC 3339 (vcs.time): the go command
	// records when the commit was made, not when the binary was built.
	Time string
	// Modified says the checkout had uncommitted changes (vcs.modified).
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build information; it is read once.
var Read = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Parse(nil)
	}
	return Parse(bi)
})

// Parse picks Info out of build information: the running binary's
// (debug.ReadBuildInfo) or another's (debug/buildinfo.ReadFile, as tests
// of the program do). nil is a binary that records nothing.
func Parse(bi *debug.BuildInfo) Info {
	info := Info{Version: Unknown, GoVersion: runtime.Version()}
	if bi == nil {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortRevision is the first 12 characters of Revision.
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the version in one word, for logs, labels and /readyz:
// Version, with the short revision and "dirty" added as build metadata
// when Version does not carry them already. The go command gives a build
// from a checkout a pseudo-version that does (for example
// "v0.0.0-20261207053746-6e9b3dffbd15+dirty"); a binary with no version
// gives "(devel)+6e9b3dffbd15.dirty", and one without VCS stamping
// "(devel)".
func (i Info) String() string {
	s := i.Version
	var meta []string
	if r := i.ShortRevision(); r != "" && !strings.Contains(s, r) {
		meta = append(meta, r)
	}
	if i.Modified && !strings.HasSuffix(s, "+dirty") {
		meta = append(meta, "dirty")
	}
	if len(meta) == 0 {
		return s
	}
	sep := "+"
	if strings.Contains(s, "+") {
		sep = "."
	}
	return s + sep + strings.Join(meta, ".")
}
