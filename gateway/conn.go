package gateway

import "sync"

// ending says how an actor ends a response.
type ending struct {
	reason string
	// frame is the last message the writer adds: "reconnect", "closed", or
	// "" for none. The writer gives it the id of the last message it wrote,
	// so that a resumption starts right after.
	frame string
	// drain writes the messages already queued first.
	drain bool
}

// conn is how an actor ends the HTTP response its handler goroutine
// writes: end records how, then closes done, once.
type conn struct {
	done chan struct{}
	once sync.Once
	how  ending // written before done is closed, read after
}

func newConn() *conn { return &conn{done: make(chan struct{})} }

// end ends the response; only the first call counts.
func (c *conn) end(how ending) {
	c.once.Do(func() {
		c.how = how
		close(c.done)
	})
}

// ended reports whether end was called.
func (c *conn) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// lastFrame is the frame how asks for, with id.
func (h ending) lastFrame(id string) []byte {
	if h.frame == "" {
		return nil
	}
	data, _ := jsonMarshal(map[string]string{"reason": h.reason})
	return appendFrame(nil, id, h.frame, data)
}
