package redisbus_test

import (
	"testing"

	"github.com/eventsource/eventsource/redisbus"
)

// Slot agrees with Redis Cluster's CLUSTER KEYSLOT, hash tags included
// (the vectors of the cluster specification).
func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		slot uint16
	}{
		{"123456789", 12739}, // CRC16-XMODEM's check value
		{"somekey", 11058},
		{"foo{hash_tag}", 2515},
		{"{hash_tag}", 2515},
		{"hash_tag", 2515},
		{"{user1000}.following", redisbus.Slot("user1000")},
		{"foo{}{bar}", redisbus.Slot("foo{}{bar}")}, // an empty tag: the whole key
		{"foo{{bar}}zap", redisbus.Slot("{bar")},
		{"foo{bar}{zap}", redisbus.Slot("bar")},
		{"", 0},
	}
	for _, tt := range tests {
		if got := redisbus.Slot(tt.key); got != tt.slot {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.slot)
		}
	}
}
