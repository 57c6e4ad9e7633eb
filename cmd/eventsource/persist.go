package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/eventsource/eventsource/client"
)

func init() {
	register("persist", "store one event through a server and print its OK reply", runPersist)
}

func runPersist(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("persist", `(--pid P --domain D --name N --data JSON [--event-id ID] | --query '{"$insert":{...}}') [--expect-version N] [flags]`, stderr)
	var conn redisFlags
	conn.bind(fs, 10*time.Second)
	pid := fs.String("pid", "", "the event's pid")
	domain := fs.String("domain", "", "the event's domain")
	name := fs.String("name", "", "the event's name")
	data := fs.String("data", "", "the event's data, any JSON value")
	eventID := fs.String("event-id", "", "the event's id (1 to 64 printable ASCII characters), which makes running the command again safe: an event id is stored once, and a retry prints the first reply's insertId with \"duplicate\": true. With --query, give each document an \"eventId\" member instead")
	var expectVersion version
	fs.Var(&expectVersion, "expect-version", "store only if the stream holds exactly `N` events (0: none yet), else fail with a conflict and store nothing; the stream is the event's --domain and --pid, or with --query the documents' own, which must all share one domain and pid")
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
	case set["query"] && (event || set["event-id"]):
		return usageError(fs, "give --query or the event flags, not both (with --query, event ids go in the documents' \"eventId\")")
	case set["query"]:
		var err error
		if q, err = parseQueryArg("query", *query); err != nil {
			return reportArgError(fs, err)
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
		if set["event-id"] && *eventID == "" {
			return usageError(fs, "--event-id is empty")
		}
		doc = client.Document{PID: *pid, Domain: *domain, Name: *name, Data: json.RawMessage(*data), EventID: *eventID}
	default:
		return usageError(fs, "give --pid, --domain, --name and --data, or --query")
	}
	var expect *client.Expectation
	if expectVersion.set {
		expect = &client.Expectation{Domain: doc.Domain, PID: doc.PID, Version: expectVersion.n}
		if q != nil {
			var err error
			if expect.Domain, expect.PID, err = queryStream(q); err != nil {
				return usageError(fs, "--expect-version: %v", err)
			}
		}
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
	var ok client.Result
	switch {
	case q != nil && expect != nil:
		ok, err = c.PersistQuery(ctx, q, client.WithExpectation(*expect))
	case q != nil:
		ok, err = c.PersistQuery(ctx, q)
	case expect != nil:
		ok, err = c.PersistExpecting(ctx, *expect, doc)
	default:
		ok, err = c.Persist(ctx, doc)
	}
	if err != nil {
		return clientError(fs, &conn, "persist-channel", err)
	}
	// Printed as the server sent it, the original's whole OK reply:
	// encoding/json would escape the & of a multi-row reply's message.
	if _, err := fmt.Fprintf(stdout, "%s\n", ok.Raw()); err != nil {
		return fmt.Errorf("persist: write reply: %w", err)
	}
	return nil
}

// version is a flag's stream version: an integer from 0, or unset.
type version struct {
	n   int64
	set bool
}

func (v *version) String() string {
	if v == nil || !v.set {
		return "" // unset: no default shown
	}
	return strconv.FormatInt(v.n, 10)
}

func (v *version) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return errors.New("not an integer")
	case n < 0:
		return errors.New("negative")
	}
	v.n, v.set = n, true
	return nil
}

// queryStream is the one stream, domain and pid, of the documents of an
// $insert query.
func queryStream(q json.RawMessage) (domain, pid string, err error) {
	var insert struct {
		Insert struct {
			Documents json.RawMessage `json:"$documents"`
		} `json:"$insert"`
	}
	if err := json.Unmarshal(q, &insert); err != nil || len(insert.Insert.Documents) == 0 {
		return "", "", errors.New("the query has no $insert.$documents")
	}
	type stream struct {
		Domain *string `json:"domain"`
		PID    *string `json:"pid"`
	}
	var docs []stream
	if err := json.Unmarshal(insert.Insert.Documents, &docs); err != nil {
		var one stream
		if err := json.Unmarshal(insert.Insert.Documents, &one); err != nil {
			return "", "", errors.New("$documents must be an object or an array of objects with string domain and pid")
		}
		docs = []stream{one}
	}
	for i, d := range docs {
		if d.Domain == nil || d.PID == nil || *d.Domain == "" || *d.PID == "" {
			return "", "", fmt.Errorf("document %d has no domain or pid", i)
		}
		if i > 0 && (*d.Domain != domain || *d.PID != pid) {
			return "", "", fmt.Errorf("document %d is in stream %q/%q, document 0 in %q/%q: an expected version is of one stream", i, *d.Domain, *d.PID, domain, pid)
		}
		domain, pid = *d.Domain, *d.PID
	}
	if len(docs) == 0 {
		return "", "", errors.New("$documents is empty")
	}
	return domain, pid, nil
}
