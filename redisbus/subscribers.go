package redisbus

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Subscribers counts the subscribers of channels by name (PUBSUB NUMSUB,
// which leaves pattern subscriptions out): on a Redis Cluster, summed over
// the masters, each of which counts only its own.
func Subscribers(ctx context.Context, rdb redis.UniversalClient, channels []string) (map[string]int64, error) {
	counts := make(map[string]int64, len(channels))
	count := func(ctx context.Context, c redis.Cmdable) error {
		for from := 0; from < len(channels); from += 1000 {
			got, err := c.PubSubNumSub(ctx, channels[from:min(from+1000, len(channels))]...).Result()
			if err != nil {
				return err
			}
			for ch, n := range got {
				counts[ch] += n
			}
		}
		return nil
	}
	var err error
	switch rdb := rdb.(type) {
	case *redis.ClusterClient:
		// ForEachMaster runs concurrently: count one master at a time.
		var mu sync.Mutex
		var masters []*redis.Client
		err = rdb.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			masters = append(masters, c)
			return nil
		})
		for _, c := range masters {
			if err == nil {
				err = count(ctx, c)
			}
		}
	default:
		err = count(ctx, rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("count subscribers of %d channels: %w", len(channels), err)
	}
	return counts, nil
}
