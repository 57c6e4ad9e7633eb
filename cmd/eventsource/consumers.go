package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/messages"
)

func init() {
	register("consumers", "list a server's durable consumers; 'consumers reset NAME' and 'consumers delete NAME' change one", runConsumers)
}

// send is do with a JSON body.
func (c *adminClient) send(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return c.request(ctx, method, path, nil, body)
}

// consumers reads GET /consumers: the raw entries and their decoding.
func (c *adminClient) consumers(ctx context.Context) ([]json.RawMessage, []admin.ConsumerStatus, error) {
	code, body, err := c.do(ctx, http.MethodGet, "/consumers", nil)
	switch {
	case err != nil:
		return nil, nil, err
	case code == http.StatusNotFound:
		return nil, nil, &statusError{code: code, msg: "GET /consumers: 404: the server has no durable consumers (an earlier release?)"}
	case code != http.StatusOK:
		return nil, nil, &statusError{code: code, msg: fmt.Sprintf("GET /consumers: %d %s: %s", code, http.StatusText(code), firstLine(body))}
	}
	var page struct {
		Consumers []json.RawMessage `json:"consumers"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, nil, fmt.Errorf("GET /consumers: the answer is not a list of consumers: %w", err)
	}
	list := make([]admin.ConsumerStatus, len(page.Consumers))
	for i, raw := range page.Consumers {
		if err := json.Unmarshal(raw, &list[i]); err != nil {
			return nil, nil, fmt.Errorf("GET /consumers: an entry is not a consumer: %w", err)
		}
	}
	if page.Consumers == nil {
		page.Consumers = []json.RawMessage{}
	}
	return page.Consumers, list, nil
}

func runConsumers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "reset":
			return runConsumerChange(ctx, "reset", args[1:], stdout, stderr)
		case "delete":
			return runConsumerChange(ctx, "delete", args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("consumers", "[--admin host:port] [--token T] [--json]\n"+
		"       eventsource consumers reset [--admin host:port] NAME [--position N]\n"+
		"       eventsource consumers delete [--admin host:port] NAME", stderr)
	var a adminFlags
	a.bind(fs)
	asJSON := fs.Bool("json", false, "print the consumers as a JSON array, as the server gave them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := a.client(fs)
	if err != nil {
		return err
	}
	raw, list, err := c.consumers(ctx)
	if err != nil {
		return fmt.Errorf("consumers: %w", err)
	}
	if *asJSON {
		b, err := json.MarshalIndent(raw, "", "  ")
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPOSITION\tNEWEST\tLAG\tHELD BY")
	for _, st := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", st.Name, st.Position, newestCell(st), lagCell(st), heldBy(st))
	}
	return tw.Flush()
}

// newestCell and lagCell show what is unknown as "?", and a capped lag
// with a "+".
func newestCell(st admin.ConsumerStatus) string {
	if st.LagError != "" {
		return "?"
	}
	return strconv.FormatInt(st.Newest, 10)
}

func lagCell(st admin.ConsumerStatus) string {
	switch {
	case st.LagError != "":
		return "?"
	case st.LagCapped:
		return strconv.FormatInt(st.Lag, 10) + "+"
	}
	return strconv.FormatInt(st.Lag, 10)
}

// heldBy names the holding stream and its server, or "-".
func heldBy(st admin.ConsumerStatus) string {
	if !st.Held {
		return "-"
	}
	if st.Server == "" {
		return st.Holder
	}
	return st.Holder + " on " + st.Server
}

// runConsumerChange runs 'consumers reset' and 'consumers delete'.
func runConsumerChange(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	usageLine := "[--admin host:port] [--token T] NAME"
	if verb == "reset" {
		usageLine += " [--position N]"
	}
	fs := newFlagSet("consumers "+verb, usageLine, stderr)
	var a adminFlags
	a.bind(fs)
	var position *int64
	if verb == "reset" {
		position = fs.Int64("position", 0, "the position to start after: the key of the last row taken as read (0: the beginning)")
	}
	// Flags may come before or after NAME.
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(fs, "give the name of the consumer to %s", verb)
	}
	name := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if !messages.ValidConsumer(name) {
		return usageError(fs, "%q is not a consumer name: 1 to %d characters of letters, digits and ._:-", name, messages.MaxConsumer)
	}
	if position != nil && *position < 0 {
		return usageError(fs, "--position %d is negative", *position)
	}
	c, err := a.client(fs)
	if err != nil {
		return err
	}
	path := "/consumers/" + url.PathEscape(name)
	var code int
	var body []byte
	if verb == "reset" {
		req, _ := json.Marshal(map[string]int64{"position": *position})
		code, body, err = c.send(ctx, http.MethodPost, path+"/reset", req)
	} else {
		code, body, err = c.send(ctx, http.MethodDelete, path, nil)
	}
	switch {
	case err != nil:
		return fmt.Errorf("consumers %s: %w", verb, err)
	case code == http.StatusNotFound:
		return fmt.Errorf("consumers %s: no consumer named %s", verb, name)
	case verb == "reset" && code == http.StatusOK:
		var st admin.ConsumerStatus
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("consumers reset: the answer is not a consumer: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "reset %s to position %d (newest %s, lag %s)\n", name, st.Position, newestCell(st), lagCell(st))
		return err
	case verb == "delete" && code == http.StatusNoContent:
		_, err = fmt.Fprintf(stdout, "deleted %s\n", name)
		return err
	}
	return fmt.Errorf("consumers %s: %d %s: %s", verb, code, http.StatusText(code), firstLine(body))
}
