package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sseWriter writes one text/event-stream response. Frames are gathered and
// go out with flush, one write and one flush for everything pending. It is
// used by the handler goroutine that owns the ResponseWriter, alone.
type sseWriter struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	deadlineSet  time.Time
	buf          []byte
	// queued counts the messages in buf, added to sent (if not nil) once
	// they are written.
	queued int
	sent   prometheus.Counter
}

// openSSE sends the stream's headers, the retry delay and a first comment
// at once, so that proxies and the browser see the stream open. sent, if
// not nil, counts the messages written.
func openSSE(w http.ResponseWriter, retry, writeTimeout time.Duration, sent prometheus.Counter) (*sseWriter, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	// nginx buffers event streams unless told not to.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout, buf: make([]byte, 0, 512), sent: sent}
	s.buf = append(s.buf, "retry: "...)
	s.buf = strconv.AppendInt(s.buf, retry.Milliseconds(), 10)
	s.buf = append(s.buf, "\n: connected\n\n"...)
	return s, s.flush()
}

// frame queues a ready-made frame.
func (s *sseWriter) frame(f []byte) {
	s.buf = append(s.buf, f...)
	s.queued++
}

// event queues one message.
func (s *sseWriter) event(id, name string, data []byte) {
	s.buf = appendFrame(s.buf, id, name, data)
	s.queued++
}

// setID queues a message that only sets the client's last event id: one
// with no data is not dispatched, but its id is kept for the reconnection.
func (s *sseWriter) setID(id string) {
	s.buf = append(s.buf, "id: "...)
	s.buf = append(s.buf, id...)
	s.buf = append(s.buf, "\n\n"...)
}

// comment queues a comment line, which clients ignore.
func (s *sseWriter) comment(text string) {
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, text...)
	s.buf = append(s.buf, "\n\n"...)
}

// pending reports how many bytes wait for flush.
func (s *sseWriter) pending() int { return len(s.buf) }

// flush writes what is queued, bounded by the write timeout: a client that
// does not read for that long loses its stream.
func (s *sseWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	// Moving the deadline costs as much as a tenth of a small write: move
	// it only once a quarter of it has passed, so it stays at least three
	// quarters of the timeout ahead.
	if now := time.Now(); now.Sub(s.deadlineSet) > s.writeTimeout/4 {
		_ = s.rc.SetWriteDeadline(now.Add(s.writeTimeout)) // unsupported only by odd writers: then unbounded
		s.deadlineSet = now
	}
	_, err := s.w.Write(s.buf)
	if err == nil {
		err = s.rc.Flush()
	}
	s.buf = s.buf[:0]
	queued := s.queued
	s.queued = 0
	if err != nil {
		return fmt.Errorf("write event stream: %w", err)
	}
	if s.sent != nil && queued > 0 {
		s.sent.Add(float64(queued))
	}
	return nil
}

// appendFrame appends one SSE message. Event names come from clients:
// line breaks in them would start new fields, so they become spaces; data
// spanning lines is sent as several data lines, which clients join.
func appendFrame(buf []byte, id, name string, data []byte) []byte {
	if id != "" {
		buf = append(buf, "id: "...)
		buf = append(buf, id...)
		buf = append(buf, '\n')
	}
	if name != "" {
		buf = append(buf, "event: "...)
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == '\n' || c == '\r' {
				c = ' '
			}
			buf = append(buf, c)
		}
		buf = append(buf, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		buf = append(buf, "data: "...)
		buf = append(buf, bytes.TrimSuffix(line, []byte{'\r'})...)
		buf = append(buf, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(buf, '\n')
}
