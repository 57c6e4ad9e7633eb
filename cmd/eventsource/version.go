package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/eventsource/eventsource/internal/buildinfo"
)

func init() {
	register("version", "print the version, commit and Go version of this build", runVersion)
}

// runVersion prints what the binary records of its build. A value the
// binary does not record (a build without VCS stamping: go build
// -buildvcs=false, or outside a checkout) reads "unknown"; make build
// stamps it.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	info := buildinfo.Read()
	commit := cmp.Or(info.Revision, "unknown")
	if info.Modified {
		commit += " (modified)"
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%s\n", info.Version)
	fmt.Fprintf(tw, "commit\t%s\n", commit)
	// The go command records when the commit was made (vcs.time), not
	// when the binary was built, so that builds are reproducible.
	fmt.Fprintf(tw, "commit time\t%s\n", cmp.Or(info.Time, "unknown"))
	fmt.Fprintf(tw, "go\t%s\n", info.GoVersion)
	return tw.Flush()
}
