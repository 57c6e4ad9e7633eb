package redisbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The subscriber and the publisher speak RESP2 themselves on connections of
// their own: they carry every row the server streams, three messages per
// row (the PUBLISH, its echo on the subscriber, the client's "accepted").
// go-redis builds a reply tree, strings and a command object for each and
// sets a deadline before each read: about 1 µs per message received on this
// machine, where reading into one reused buffer costs about 0.35 µs, and
// the echoes are dropped without an allocation. Everything else (the services' clients, the
// gateway's and the tools' commands) stays on go-redis, whose options these
// connections follow (address, dialer, credentials, client name).

// errProtocol marks a reply this reader does not understand; the
// connection is then dropped and redialed.
var errProtocol = errors.New("redis protocol error")

// maxKeptFrame is the largest buffer kept between frames, or between a
// publisher's batches: a huge message is handled whole, but its buffer is
// not held afterwards.
const maxKeptFrame = 1 << 20

// frame is one reply heard on a subscribed connection: a push such as
// ["message", channel, payload] or ["subscribe", channel, count], or a
// simple string (kind holds its text) or an error reply (err). Its slices
// stay valid until the next read. An integer reply is a simple string of
// its digits.
type frame struct {
	kind    []byte
	channel []byte
	payload []byte
	// pattern is the pattern a pmessage matched.
	pattern []byte
	err     error
	// null is set for a null reply ($-1, such as SET NX's when the key
	// exists); a bulk string reply is a simple string of its bytes.
	null bool
}

// respReader reads frames; each frame's strings are copied back to back
// into one reused buffer.
type respReader struct {
	r   *bufio.Reader
	buf []byte
	// maxPayload, if positive, bounds what is kept of a message's payload:
	// a longer one is read as its first maxPayload bytes, and the rest is
	// skipped as it arrives instead of being held.
	maxPayload int
}

func newRespReader(r io.Reader) *respReader {
	return &respReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// read returns the next frame. An error reply is a frame, not an error:
// the connection is still in step.
func (rr *respReader) read() (frame, error) {
	if cap(rr.buf) > maxKeptFrame {
		rr.buf = nil
	}
	rr.buf = rr.buf[:0]
	line, err := rr.line()
	if err != nil {
		return frame{}, err
	}
	switch line[0] {
	case '+', ':':
		rr.buf = append(rr.buf, line[1:]...)
		return frame{kind: rr.buf}, nil
	case '-':
		return frame{err: fmt.Errorf("redis: %s", line[1:])}, nil
	case '$':
		rr.buf = rr.buf[:0]
		if string(line[1:]) == "-1" {
			return frame{null: true}, nil
		}
		if err := rr.bulk(line, 0); err != nil {
			return frame{}, err
		}
		return frame{kind: rr.buf}, nil
	case '*':
	default:
		return frame{}, fmt.Errorf("%w: unexpected reply %q", errProtocol, truncate(line))
	}
	n, err := parseLength(line[1:])
	if err != nil || n < 1 || n > 4 {
		return frame{}, fmt.Errorf("%w: array header %q", errProtocol, truncate(line))
	}
	// ends[i] is where element i ends in buf; a null element is empty.
	var ends [4]int
	for i := range n {
		limit := 0
		if (i == 2 && string(rr.buf[:ends[0]]) == "message") || (i == 3 && string(rr.buf[:ends[0]]) == "pmessage") {
			limit = rr.maxPayload
		}
		if err := rr.element(limit); err != nil {
			return frame{}, err
		}
		ends[i] = len(rr.buf)
	}
	f := frame{kind: rr.buf[:ends[0]]}
	if n > 1 {
		f.channel = rr.buf[ends[0]:ends[1]]
	}
	switch {
	case n > 2 && string(f.kind) == "message":
		f.payload = rr.buf[ends[1]:ends[2]]
	case n > 3 && string(f.kind) == "pmessage":
		// ["pmessage", pattern, channel, payload]
		f.pattern, f.channel, f.payload = f.channel, rr.buf[ends[1]:ends[2]], rr.buf[ends[2]:ends[3]]
	}
	return f, nil
}

// element appends one array element to buf: a bulk string's bytes (at
// most limit of them, if limit is positive), an integer's digits, nothing
// for a null.
func (rr *respReader) element(limit int) error {
	line, err := rr.line()
	if err != nil {
		return noEOF(err) // inside an array
	}
	switch line[0] {
	case ':':
		rr.buf = append(rr.buf, line[1:]...)
		return nil
	case '$':
	default:
		return fmt.Errorf("%w: unexpected element %q", errProtocol, truncate(line))
	}
	return rr.bulk(line, limit)
}

// bulk appends to buf the bytes of the bulk string whose header is line
// ($n): at most limit of them, if limit is positive, the rest skipped.
func (rr *respReader) bulk(line []byte, limit int) error {
	n, err := parseLength(line[1:])
	if err != nil {
		return fmt.Errorf("%w: bulk header %q", errProtocol, truncate(line))
	}
	if n < 0 {
		return nil // a null bulk string
	}
	if n > maxBulk {
		return fmt.Errorf("%w: bulk string of %d bytes, more than Redis sends", errProtocol, n)
	}
	keep, skip := n, 0
	if limit > 0 && n > limit {
		keep, skip = limit, n-limit
	}
	// The buffer grows as the bytes come, not by what the header claims:
	// a header cut short must not cost its whole length in memory.
	for keep > 0 {
		chunk := min(keep, bulkChunk)
		start := len(rr.buf)
		rr.buf = slices.Grow(rr.buf, chunk)[:start+chunk]
		if _, err := io.ReadFull(rr.r, rr.buf[start:]); err != nil {
			rr.buf = rr.buf[:start]
			return fmt.Errorf("read bulk string: %w", noEOF(err))
		}
		keep -= chunk
	}
	if skip > 0 {
		if _, err := rr.r.Discard(skip); err != nil {
			return fmt.Errorf("read bulk string: %w", noEOF(err))
		}
	}
	var crlf [2]byte
	if _, err := io.ReadFull(rr.r, crlf[:]); err != nil {
		return fmt.Errorf("read bulk string: %w", noEOF(err))
	}
	if crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errProtocol, n)
	}
	return nil
}

// maxBulk is the longest bulk string Redis sends (its proto-max-bulk-len
// default); bulkChunk, how much the buffer grows by while one is read.
const (
	maxBulk   = 512 << 20
	bulkChunk = 1 << 20
)

// noEOF reports a stream that ended inside a frame as cut short.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// line reads one line without its CRLF; it is valid until the next read.
func (rr *respReader) line() ([]byte, error) {
	line, err := rr.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errProtocol, rr.r.Size())
		}
		if len(line) > 0 {
			err = noEOF(err) // a line begun: the frame was cut short
		}
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: short line %q", errProtocol, truncate(line))
	}
	return line[:len(line)-2], nil
}

// parseLength reads a RESP length: digits, or -1 for a null.
func parseLength(b []byte) (int, error) {
	if string(b) == "-1" {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, errProtocol
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errProtocol
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// Observer hears the subscriber's and the publisher's connections open and
// close (metrics.Metrics is one); role is "subscriber" or "publisher".
type Observer interface {
	RedisDialed(role string, err error)
	RedisClosed(role string)
}

// observed tells an Observer, if there is one, about one role's
// connections.
type observed struct {
	o    Observer
	role string
}

func (ob observed) dialed(err error) {
	if ob.o != nil {
		ob.o.RedisDialed(ob.role, err)
	}
}

func (ob observed) closed() {
	if ob.o != nil {
		ob.o.RedisClosed(ob.role)
	}
}

// dial connects as opt asks, authenticates and names the connection.
func dial(ctx context.Context, opt *redis.Options, ob observed) (net.Conn, *respReader, error) {
	conn, rr, err := dialAndGreet(ctx, opt)
	ob.dialed(err)
	return conn, rr, err
}

func dialAndGreet(ctx context.Context, opt *redis.Options) (net.Conn, *respReader, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	conn, err := opt.Dialer(ctx, opt.Network, opt.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial redis at %s: %w", opt.Addr, err)
	}
	rr := newRespReader(conn)
	if err := handshake(conn, rr, opt); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, rr, nil
}

// handshake sends AUTH and CLIENT SETNAME as opt asks, and checks their
// replies.
func handshake(conn net.Conn, rr *respReader, opt *redis.Options) error {
	var cmds []byte
	replies := 0
	user, pass := opt.Username, opt.Password
	if opt.CredentialsProvider != nil {
		user, pass = opt.CredentialsProvider()
	}
	switch {
	case pass != "" && user != "":
		cmds, replies = appendCommand(cmds, "AUTH", user, pass), replies+1
	case pass != "":
		cmds, replies = appendCommand(cmds, "AUTH", pass), replies+1
	}
	if opt.ClientName != "" {
		cmds, replies = appendCommand(cmds, "CLIENT", "SETNAME", opt.ClientName), replies+1
	}
	if replies == 0 {
		return nil
	}
	_ = conn.SetDeadline(time.Now().Add(opt.DialTimeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(cmds); err != nil {
		return fmt.Errorf("redis handshake: %w", err)
	}
	for range replies {
		f, err := rr.read()
		if err != nil {
			return fmt.Errorf("redis handshake: %w", err)
		}
		if f.err != nil {
			return fmt.Errorf("redis handshake: %w", f.err)
		}
	}
	return nil
}

// deadline is now plus timeout, or no deadline for a timeout go-redis
// reads as none (negative).
func deadline(timeout time.Duration) time.Time {
	if timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// appendCommand appends a command and its arguments as a RESP array of
// bulk strings.
func appendCommand(dst []byte, name string, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(1+len(args)), 10)
	dst = append(dst, '\r', '\n')
	dst = appendBulk(dst, name)
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

func appendBulk[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}
