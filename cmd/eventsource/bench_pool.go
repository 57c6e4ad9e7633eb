package main

import (
	"context"
	"io"
	"os"

	"github.com/eventsource/eventsource/bench"
)

func init() {
	registerInternal("bench-pool", "internal: the SSE subscriber pool that bench runs in a child process", runBenchPool)
}

// runBenchPool holds the sse scenario's subscribers in a process of their
// own, whose file descriptors do not count against the server's.
func runBenchPool(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench-pool", "--url URL --subscribers N", stderr)
	streamURL := fs.String("url", "", "GET /events URL to subscribe to")
	n := fs.Int("subscribers", 0, "subscribers to hold")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *streamURL == "" || *n <= 0 {
		return usageError(fs, "--url and a positive --subscribers are required")
	}
	return bench.RunSubscriberPool(ctx, *streamURL, *n, os.Stdin, stdout)
}
