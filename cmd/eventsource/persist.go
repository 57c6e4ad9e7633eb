package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

func init() {
	register("persist", "store one event through a server and print its OK reply", runPersist)
}

func runPersist(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("persist", `(--pid P --domain D --name N --data JSON | --query '{"$insert":{...}}') [flags]`, stderr)
	var conn redisFlags
	conn.bind(fs, 10*time.Second)
	pid := fs.String("pid", "", "the event's pid")
	domain := fs.String("domain", "", "the event's domain")
	name := fs.String("name", "", "the event's name")
	data := fs.String("data", "", "the event's data, any JSON value")
	query := fs.String("query", "", "instead of the event flags: the query, a JSON object with $insert")
	channel := fs.String("persist-channel", "persist", "request channel of the server")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	event := set["pid"] || set["domain"] || set["name"] || set["data"]

	var q json.RawMessage
	var doc client.Document
	switch {
	case set["query"] && event:
		return usageError(fs, "give --query or the event flags, not both")
	case set["query"]:
		var err error
		if q, err = jsonObject(fs, "query", *query); err != nil {
			return err
		}
	case event:
		for _, f := range []struct{ name, value string }{{"pid", *pid}, {"domain", *domain}, {"name", *name}, {"data", *data}} {
			if f.value == "" {
				return usageError(fs, "--%s is required", f.name)
			}
		}
		if !json.Valid([]byte(*data)) {
			return usageError(fs, "--data is not valid JSON")
		}
		doc = client.Document{PID: *pid, Domain: *domain, Name: *name, Data: json.RawMessage(*data)}
	default:
		return usageError(fs, "give --pid, --domain, --name and --data, or --query")
	}
	rdb, err := conn.connect(fs)
	if err != nil {
		return err
	}
	defer rdb.Close()

	c := client.New(rdb, client.WithPersistChannel(*channel), client.WithReason())
	defer c.Close()
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	var ok messages.OK
	if q != nil {
		ok, err = c.PersistQuery(ctx, q)
	} else {
		ok, err = c.Persist(ctx, doc)
	}
	if err != nil {
		return err
	}
	// Printed as the server sent it: encoding/json would escape the & of
	// a multi-row reply's message.
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ok); err != nil {
		return fmt.Errorf("persist: write reply: %w", err)
	}
	return nil
}
