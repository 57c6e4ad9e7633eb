package client_test

// These examples run: go test runs each against the server TestMain starts
// (main_test.go) and checks what it prints. That server listens on
// channels of its own, which the examples pass as options
// (client.WithFetchChannel(fetchChannel), ...); a program that talks to a
// server on the default channels, "fetch" and "persist", leaves them out.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
)

// Store the events of an order, then read them back.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb,
		client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel),
		client.WithTimeout(30*time.Second)) // for calls whose context has no deadline
	defer c.Close()
	ctx := context.Background()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	_, err := c.Persist(ctx,
		client.Document{PID: order, Domain: "shop", Name: "placed", Data: map[string]any{"total": 42}},
		client.Document{PID: order, Domain: "shop", Name: "paid", Data: map[string]any{"method": "card"}},
	)
	if err != nil {
		log.Fatal(err)
	}

	// A query is JSON text, or any value that encodes to it.
	query := map[string]any{"$select": map[string]any{"$where": map[string]any{"pid": order}}}
	for row, err := range c.Fetch(ctx, query) {
		if err != nil {
			log.Fatal(err)
		}
		var event struct {
			Name string `json:"name"`
		}
		if err := row.Decode(&event); err != nil {
			log.Fatal(err)
		}
		var data map[string]any
		if err := row.JSON("data", &data); err != nil {
			log.Fatal(err)
		}
		fmt.Println(event.Name, data)
	}
	// Output:
	// placed map[total:42]
	// paid map[method:card]
}

// An event id makes a persist safe to send again, after a lost reply or a
// timeout: the server stores it once.
func ExampleClient_Persist() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithPersistChannel(persistChannel))
	defer c.Close()
	ctx := context.Background()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	placed := client.Document{PID: order, Domain: "shop", Name: "placed", Data: map[string]any{"total": 42}, EventID: order + "/placed"}
	first, err := c.Persist(ctx, placed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %d, duplicate %t\n", first.AffectedRows, first.Duplicate)

	again, err := c.Persist(ctx, placed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %d, duplicate %t, same id %t\n", again.AffectedRows, again.Duplicate, again.InsertID == first.InsertID)
	// Output:
	// stored 1, duplicate false
	// stored 0, duplicate true, same id true
}

// An expected version makes writers of one stream take turns: a persist
// commits only if the stream holds as many events as its writer has seen.
func ExampleClient_PersistExpecting() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithPersistChannel(persistChannel))
	defer c.Close()
	ctx := context.Background()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	event := func(name string) client.Document {
		return client.Document{PID: order, Domain: "shop", Name: name, Data: map[string]any{}}
	}
	stream := client.Expectation{Domain: "shop", PID: order} // Version 0: no events yet
	if _, err := c.PersistExpecting(ctx, stream, event("placed")); err != nil {
		log.Fatal(err)
	}
	stream.Version = 1
	if _, err := c.PersistExpecting(ctx, stream, event("paid")); err != nil {
		log.Fatal(err)
	}

	// A writer that saw the order before it was paid comes too late.
	late := client.Expectation{Domain: "shop", PID: order, Version: 1}
	_, err := c.PersistExpecting(ctx, late, event("cancelled"))
	var serr *client.ServerError
	if errors.Is(err, client.ErrConflict) && errors.As(err, &serr) {
		fmt.Println("conflict:", serr.Message)
	}
	// Output:
	// conflict: the stream is at version 2
}

// WithWindow lets the server send rows ahead of the loop, which saves a
// round trip per row; the server never runs further ahead than the window.
func ExampleClient_Fetch() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel))
	defer c.Close()
	ctx := context.Background()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	var docs []client.Document
	for _, name := range []string{"placed", "paid", "packed", "shipped", "delivered"} {
		docs = append(docs, client.Document{PID: order, Domain: "shop", Name: name, Data: map[string]any{}})
	}
	if _, err := c.Persist(ctx, docs...); err != nil {
		log.Fatal(err)
	}

	query := fmt.Sprintf(`{"$select":{"$columns":["id","name"],"$where":{"pid":%q}}}`, order)
	for row, err := range c.Fetch(ctx, query, client.WithWindow(16)) {
		if err != nil {
			log.Fatal(err)
		}
		var event struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}
		if err := row.Decode(&event); err != nil {
			log.Fatal(err)
		}
		fmt.Println(event.Name)
	}
	// Output:
	// placed
	// paid
	// packed
	// shipped
	// delivered
}

// A fetch stops when the loop breaks, or when its context ends: either way
// the client tells the server, which sends nothing more.
func ExampleClient_Fetch_cancel() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel))
	defer c.Close()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	var docs []client.Document
	for _, name := range []string{"placed", "paid", "shipped"} {
		docs = append(docs, client.Document{PID: order, Domain: "shop", Name: name, Data: map[string]any{}})
	}
	if _, err := c.Persist(context.Background(), docs...); err != nil {
		log.Fatal(err)
	}
	query := fmt.Sprintf(`{"$select":{"$where":{"pid":%q}}}`, order)

	// Breaking out: the first row is all this loop wants.
	for row, err := range c.Fetch(context.Background(), query) {
		if err != nil {
			log.Fatal(err)
		}
		var event struct {
			Name string `json:"name"`
		}
		if err := row.Decode(&event); err != nil {
			log.Fatal(err)
		}
		fmt.Println("first:", event.Name)
		break
	}

	// Cancelling: here from the loop, in a program from wherever gives up
	// (a signal, a shutdown). The fetch ends with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows := 0
	for _, err := range c.Fetch(ctx, query) {
		if errors.Is(err, context.Canceled) {
			fmt.Println("cancelled after", rows, "rows")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		rows++
		if rows == 2 {
			cancel()
		}
	}
	// Output:
	// first: placed
	// cancelled after 2 rows
}

// A durable consumer follows an order: it gets the events stored so far,
// then each new one as it commits, until its context ends. Run again, it
// resumes after the last event it accepted (the one the loop stopped on
// comes again: delivery is at least once).
func ExampleClient_Follow() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel))
	defer c.Close()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	persist := func(name string) {
		doc := client.Document{PID: order, Domain: "shop", Name: name, Data: map[string]any{}}
		if _, err := c.Persist(context.Background(), doc); err != nil {
			log.Fatal(err)
		}
	}
	persist("placed")

	// In a program: signal.NotifyContext(context.Background(), os.Interrupt).
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	query := fmt.Sprintf(`{"$select":{"$where":{"pid":%q}}}`, order)
	for row, err := range c.Follow(ctx, query, client.WithConsumer("mailer-"+order)) {
		if errors.Is(err, client.ErrBusy) {
			log.Fatal("another mailer is running")
		}
		if err != nil {
			log.Fatal(err)
		}
		var event struct {
			Name string `json:"name"`
		}
		if err := row.Decode(&event); err != nil {
			log.Fatal(err)
		}
		fmt.Println(event.Name)
		switch event.Name {
		case "placed":
			// Stored while the follow runs: they come as they commit.
			persist("paid")
			persist("shipped")
		case "shipped":
			stop() // a follow ends with its context, without an error
		}
	}
	fmt.Println("stopped")
	// Output:
	// placed
	// paid
	// shipped
	// stopped
}

// Errors match the package's sentinel errors with errors.Is; a
// *ServerError carries the server's reason and message.
func Example_errors() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel))
	defer c.Close()
	ctx := context.Background()

	explain := func(err error) string {
		var serr *client.ServerError
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, client.ErrNoServer):
			return "no server listens: is it running, on this channel?"
		case errors.Is(err, client.ErrInvalidQuery):
			return "not a query: nothing was sent"
		case errors.Is(err, client.ErrConflict):
			return "conflict: read the stream again, then retry"
		case errors.Is(err, client.ErrBusy):
			return "busy: the consumer is being served elsewhere"
		case errors.As(err, &serr):
			return fmt.Sprintf("the server refused: %s", serr.Reason)
		}
		return err.Error()
	}

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	placed := client.Document{PID: order, Domain: "shop", Name: "placed", Data: map[string]any{}}
	query := fmt.Sprintf(`{"$select":{"$where":{"pid":%q}}}`, order)

	_, err := c.Persist(ctx, placed)
	fmt.Println(explain(err))

	consumer := client.WithConsumer("billing-" + order)
	for _, err := range c.Follow(ctx, query, consumer) {
		if err != nil {
			log.Fatal(err)
		}
		// While this follow serves the consumer, another fetch of it fails.
		for _, err := range c.Fetch(ctx, query, consumer) {
			fmt.Println(explain(err))
		}
		break
	}

	for _, err := range c.Fetch(ctx, `{"$select":`) {
		fmt.Println(explain(err))
	}

	_, err = c.Persist(ctx, client.Document{Domain: "shop", Name: "placed", Data: map[string]any{}}) // no PID
	fmt.Println(explain(err))

	_, err = c.PersistExpecting(ctx, client.Expectation{Domain: "shop", PID: order, Version: 0}, placed)
	fmt.Println(explain(err))

	elsewhere := client.New(rdb, client.WithPersistChannel(unservedChannel))
	defer elsewhere.Close()
	_, err = elsewhere.Persist(ctx, placed)
	fmt.Println(explain(err))
	// Output:
	// ok
	// busy: the consumer is being served elsewhere
	// not a query: nothing was sent
	// the server refused: bad_request
	// conflict: read the stream again, then retry
	// no server listens: is it running, on this channel?
}

// A JSON column, such as data, comes as JSON text in a string unless the
// fetch asks WithDecode for JSON values. Row.JSON reads it either way.
func ExampleRow_JSON() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithFetchChannel(fetchChannel), client.WithPersistChannel(persistChannel))
	defer c.Close()
	ctx := context.Background()

	order := fmt.Sprintf("order-%d", time.Now().UnixNano())
	doc := client.Document{PID: order, Domain: "shop", Name: "placed", Data: map[string]any{"total": 42, "items": []string{"book"}}}
	if _, err := c.Persist(ctx, doc); err != nil {
		log.Fatal(err)
	}
	query := fmt.Sprintf(`{"$select":{"$columns":["data"],"$where":{"pid":%q}}}`, order)
	for _, opts := range [][]client.FetchOption{nil, {client.WithDecode()}} {
		for row, err := range c.Fetch(ctx, query, opts...) {
			if err != nil {
				log.Fatal(err)
			}
			var data struct {
				Total int      `json:"total"`
				Items []string `json:"items"`
			}
			if err := row.JSON("data", &data); err != nil {
				log.Fatal(err)
			}
			var sent struct {
				Data json.RawMessage `json:"data"`
			}
			if err := row.Decode(&sent); err != nil {
				log.Fatal(err)
			}
			fmt.Printf("sent %s, read %+v\n", sent.Data, data)
		}
	}
	// Output:
	// sent "{\"items\":[\"book\"],\"total\":42}", read {Total:42 Items:[book]}
	// sent {"items":["book"],"total":42}, read {Total:42 Items:[book]}
}
