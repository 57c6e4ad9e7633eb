package client_test

import (
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
)

// A managed Redis that requires TLS, a client certificate and an ACL user:
// the go-redis client carries them, the Client works as on any other.
// Needs such a Redis, so it is compiled but not run.
func ExampleTLSConfig() {
	tlsConfig, err := client.TLSConfig("/etc/eventsource/redis-ca.pem", "/etc/eventsource/client.pem", "/etc/eventsource/client-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:      "redis.internal:6380",
		Username:  "app",
		Password:  "secret",
		TLSConfig: tlsConfig,
	})
	defer rdb.Close()
	c := client.New(rdb)
	defer c.Close()
}
