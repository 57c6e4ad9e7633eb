package main

import (
	"runtime/debug"
)

// buildVersion is the module version and, for a build from a checkout,
// the commit it was built from: what a server says of itself in its
// registration among the servers on the same Redis.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			version += "+" + s.Value[:12]
		}
	}
	return version
}
