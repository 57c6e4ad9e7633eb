package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/eventsource/eventsource/replicas"
)

func init() {
	register("replicas", "list the servers that act as one on the same Redis", runReplicas)
}

func runReplicas(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replicas", "[flags]", stderr)
	var rf redisFlags
	rf.bind(fs, 10*time.Second)
	fetch := fs.String("fetch-channel", "fetch", "the servers' fetch channel: servers that hear the same one act as one")
	asJSON := fs.Bool("json", false, "print one JSON object per server")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rdb, err := rf.connect(fs)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := rf.withTimeout(ctx)
	defer cancel()
	list, err := replicas.List(ctx, rdb, *fetch)
	if err != nil {
		return fmt.Errorf("replicas on %s: %w", rf.addr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range list {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tVERSION\tSTARTED\tSTREAMS\tADMIN")
	for _, r := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Host, r.Version, r.Started.Format(time.RFC3339), r.Streams, r.Admin)
	}
	return tw.Flush()
}
