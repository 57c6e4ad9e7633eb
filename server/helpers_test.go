package server_test

import (
	"testing"
	"time"

	"github.com/eventsource/eventsource/actors"
)

// children asks the router how many response channels it holds.
func children(t testing.TB, h *harness) int {
	t.Helper()
	res, err := h.srv.System().Root.RequestFuture(h.srv.Router(), actors.ChildCount{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res.(int)
}

func waitForNoChildren(t testing.TB, h *harness) {
	t.Helper()
	waitFor(t, "the router to hold no children", 10*time.Second, func() bool { return children(t, h) == 0 })
}
