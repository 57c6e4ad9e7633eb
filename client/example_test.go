package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
)

// Needs a running server, so it is compiled but not run.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := client.New(rdb, client.WithReason(), client.WithTimeout(30*time.Second))
	defer c.Close()
	ctx := context.Background()

	ok, err := c.Persist(ctx, client.Document{PID: "42", Domain: "user", Name: "created", Data: map[string]string{"email": "a@example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inserted", ok.InsertID)

	for row, err := range c.Fetch(ctx, `{"$select":{"$where":{"pid":"42"}}}`, client.WithDecode()) {
		var serr *client.ServerError
		switch {
		case errors.As(err, &serr):
			log.Fatalf("server refused: %s (%s)", serr.Message, serr.Reason)
		case err != nil:
			log.Fatal(err)
		}
		var event struct {
			Name string `json:"name"`
		}
		if err := row.Decode(&event); err != nil {
			log.Fatal(err)
		}
		fmt.Println(event.Name, row) // row prints its JSON as received
	}
}
