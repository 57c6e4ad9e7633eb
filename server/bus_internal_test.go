package server

import (
	"log/slog"
	"testing"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
)

// Past the router's backlog, the subscriber drops new requests, and only
// them: controls, confirmations and other channels' messages go on, so
// that the streams in flight are not held up behind the router.
func TestShedOnlyRequestsWhileTheRouterIsBehind(t *testing.T) {
	s := &Server{cfg: DefaultConfig(), logger: slog.New(slog.DiscardHandler)}
	var m *metrics.Metrics
	depth := m.MailboxDepth("router")
	fetch := messages.Inbound{Channel: s.cfg.FetchChannel, Payload: []byte(`{"channel":"c"}`)}
	persist := messages.Inbound{Channel: s.cfg.PersistChannel, Payload: []byte(`{"channel":"p"}`)}
	others := []any{
		messages.Inbound{Channel: "c1", Payload: messages.AcceptedJSON},
		messages.Inbound{Channel: s.cfg.FetchNextChannel, Payload: []byte(`{"channel":"c1"}`)},
		messages.Subscribed{Channel: "c1"},
		messages.BusInterrupted{},
	}
	for _, msg := range append([]any{fetch, persist}, others...) {
		if s.shed(msg, depth) {
			t.Fatalf("%#v shed with an idle router", msg)
		}
	}
	for range routerBacklog {
		depth.MessagePosted(nil)
	}
	for _, msg := range []any{fetch, persist} {
		if !s.shed(msg, depth) {
			t.Fatalf("%#v not shed with %d messages waiting for the router", msg, depth.Len())
		}
	}
	for _, msg := range others {
		if s.shed(msg, depth) {
			t.Fatalf("%#v shed: only requests may be", msg)
		}
	}
	if s.shedCount.Load() != 2 {
		t.Fatalf("%d requests counted as shed, want 2", s.shedCount.Load())
	}
}
