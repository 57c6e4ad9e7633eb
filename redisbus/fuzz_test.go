package redisbus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzRESPReader feeds the reader what a connection could deliver (any
// bytes, in reads whose sizes the fuzzer picks, the last one possibly
// with io.EOF) and checks it against a reference reading of the whole
// input, written apart from the reader (refParse):
//
//   - it never panics, and each read either returns a frame having
//     consumed at least a line, or an error: it cannot spin;
//   - how the bytes are split across reads changes nothing;
//   - the frames are those the reference reads: a simple string, an
//     integer or a bulk string as its kind; an error reply as a frame
//     whose err is "redis: " and its text; a null as null; an array of 1
//     to 4 bulk strings, integers and nulls as its first element (kind)
//     and second (channel), and for "message" its third (payload), cut to
//     maxPayload bytes when that is set;
//   - what ends the reading matches how the input ends: io.EOF at a frame
//     boundary, io.EOF or io.ErrUnexpectedEOF inside a frame, and an error
//     wrapping errProtocol for anything else (another type byte, a line
//     without CR, a bad length, a nested or over-long array, a bulk string
//     not followed by CRLF, a line over the 64 KiB buffer);
//   - the frames, written again with appendCommand and appendBulk (an
//     array for a push, a bulk string for the rest), read back, one byte
//     at a time, as the same frames followed by a clean io.EOF.
//
// A bulk string longer than Redis sends (maxBulk) is a protocol error, and
// one cut short costs no more memory than what came of it: "$999999999\r\n"
// alone must not have the reader allocate a gigabyte.
func FuzzRESPReader(f *testing.F) {
	for _, s := range []struct {
		input      string
		splits     []byte
		maxPayload uint16
	}{
		// A subscribe confirmation, then a message: what a subscriber hears first.
		{"*3\r\n$9\r\nsubscribe\r\n$10\r\nes:request\r\n:1\r\n" +
			string(appendCommand(nil, "message", "es:request", `{"channel":"c1","query":{"$select":{"$from":"event"}},"reason":true}`)), nil, 0},
		// The same, split into reads of 1, 2, 3 and 5 bytes, the payload cut to 8.
		{"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$10\r\n\"accepted\"\r\n", []byte{1, 2, 3, 5}, 8},
		// A pipelined batch of replies: PUBLISH counts, OK, a script's integer, a null, an error.
		{":1\r\n:0\r\n+OK\r\n:42\r\n$-1\r\n-NOSCRIPT No matching script. Please use EVAL.\r\n$5\r\nvalue\r\n", []byte{7, 0, 4}, 0},
		// Unsubscribe from nothing, a pong, an empty and a binary message.
		{"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\n\x00\r\n\xff\r\n", []byte{3}, 2},
		// A pmessage: its pattern, channel and payload.
		{"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$5\r\nhello\r\n", nil, 0},
		// Cut short inside a header line, between elements, inside a payload.
		{"*3\r\n$7\r\nmess", nil, 0},
		{"*3\r\n$7\r\nmessage\r\n", []byte{2}, 0},
		{"+O", nil, 0},
		// What is not RESP2 as this reader takes it.
		{">3\r\n$7\r\nmessage\r\n", nil, 0},
		{"*3\r\n*1\r\n", nil, 0},
		{"*5\r\n$1\r\na\r\n", nil, 0},
		{"*1\r\n$2\r\nabcd\r\n", nil, 0},
		{"+OK\n", nil, 0},
		{"$00000000001\r\nx\r\n", nil, 0},
	} {
		f.Add([]byte(s.input), s.splits, s.maxPayload)
	}
	f.Fuzz(func(t *testing.T, input, splits []byte, maxPayload uint16) {
		want := refParse(input, int(maxPayload))
		rr := newRespReader(&chunkReader{data: input, splits: splits})
		rr.maxPayload = int(maxPayload)
		got, err := readAll(rr, len(input))
		if err == nil {
			t.Fatalf("%q: %d reads and no error: the reader does not progress", input, len(got))
		}
		if !slicesEqual(got, want.frames) {
			t.Fatalf("%q in reads of %v (maxPayload %d):\n got %v\nwant %v", input, splits, maxPayload, got, want.frames)
		}
		if !want.end.matches(err) {
			t.Fatalf("%q in reads of %v: after %d frames, %v; want %s", input, splits, len(got), err, want.end)
		}

		var again []byte
		for _, fr := range got {
			again = fr.appendRESP(again)
		}
		back, err := readAll(newRespReader(iotest.OneByteReader(bytes.NewReader(again))), len(again))
		if !slicesEqual(back, got) {
			t.Fatalf("%q written again as %q reads as\n%v, want\n%v", input, again, back, got)
		}
		if !atBoundary.matches(err) {
			t.Fatalf("%q written again as %q: %v after the frames, want io.EOF", input, again, err)
		}
	})
}

// FuzzRESPEncode checks the encoders against the reader: whatever the
// strings, a command of 1 to 4 elements written by appendCommand, a
// PUBLISH by appendPublish, an EVALSHA of no keys and one argument by
// appendEval and a "message" push written by appendCommand read back as
// frames of their first element, their second and (for the push) their
// third cut to maxPayload, one byte at a time, and leave the reader in step
// for the reply after them. A command of 5 elements, which no reply has,
// is refused as a protocol error.
func FuzzRESPEncode(f *testing.F) {
	f.Add("SUBSCRIBE", "es:request", "kanal-ø", "\r\n", uint8(2), uint16(0))
	f.Add("PING", "", "", "", uint8(0), uint16(0))
	f.Add("SET", "claim:c1", "token", "NX", uint8(3), uint16(1))
	f.Add("AUTH", "user", "p\x00ss\r\n", "", uint8(4), uint16(3))
	f.Fuzz(func(t *testing.T, name, a, b, c string, nargs uint8, maxPayload uint16) {
		args := []string{a, b, c, "d"}[:nargs%5]
		var in []byte
		in = appendCommand(in, name, args...)
		in = appendPublish(in, a, []byte(b))
		in = appendEval(in, "EVALSHA", a, &evalCall{args: [][]byte{[]byte(c)}})
		in = appendCommand(in, "message", a, b)
		in = append(in, "+OK\r\n"...)

		rr := newRespReader(iotest.OneByteReader(bytes.NewReader(in)))
		rr.maxPayload = int(maxPayload)
		frames, err := readAll(rr, len(in))

		payload := b
		if maxPayload > 0 && len(payload) > int(maxPayload) {
			payload = payload[:maxPayload]
		}
		first := fuzzFrame{kind: name}
		if len(args) > 0 {
			first.channel = args[0]
		}
		if name == "message" && len(args) >= 2 {
			first.payload, first.hasPayload = payload, true
		}
		want := []fuzzFrame{
			first,
			{kind: "PUBLISH", channel: a},
			{kind: "EVALSHA", channel: a},
			{kind: "message", channel: a, payload: payload, hasPayload: true},
			{kind: "OK"},
		}
		if len(args) == 4 {
			if len(frames) != 0 || !errors.Is(err, errProtocol) {
				t.Fatalf("a command of 5 elements %q reads as %v, %v; want a protocol error", in, frames, err)
			}
			return
		}
		if !slicesEqual(frames, want) || !errors.Is(err, io.EOF) || errors.Is(err, errProtocol) {
			t.Fatalf("%q reads as\n%v, %v\nwant %v, then io.EOF", in, frames, err, want)
		}
	})
}

// fuzzFrame is a frame copied out of the reader's buffer, comparable. An
// array's channel is compared as text: whether it is nil or empty says
// nothing the subscriber reads.
type fuzzFrame struct {
	kind, channel, payload, pattern string
	hasPayload                      bool // a "message" push of 3 or 4 elements, a "pmessage" of 4
	null                            bool
	err                             string
}

func (fr fuzzFrame) String() string {
	switch {
	case fr.err != "":
		return "error " + strconv.Quote(fr.err)
	case fr.null:
		return "null"
	case fr.hasPayload && fr.kind == "pmessage":
		return fmt.Sprintf("[%q %q %q %q]", fr.kind, fr.pattern, fr.channel, fr.payload)
	case fr.hasPayload:
		return fmt.Sprintf("[%q %q %q]", fr.kind, fr.channel, fr.payload)
	}
	return fmt.Sprintf("[%q %q]", fr.kind, fr.channel)
}

func copyFrame(f frame) fuzzFrame {
	out := fuzzFrame{kind: string(f.kind), channel: string(f.channel), payload: string(f.payload), pattern: string(f.pattern), hasPayload: f.payload != nil, null: f.null}
	if f.err != nil {
		out.err = f.err.Error()
	}
	return out
}

// appendRESP writes the frame as a reply that reads back as it: an error,
// a null, a push, or the kind as a bulk string.
func (fr fuzzFrame) appendRESP(dst []byte) []byte {
	switch {
	case fr.err != "":
		dst = append(dst, '-')
		dst = append(dst, strings.TrimPrefix(fr.err, "redis: ")...)
		return append(dst, '\r', '\n')
	case fr.null:
		return append(dst, "$-1\r\n"...)
	case fr.hasPayload && fr.kind == "pmessage":
		return appendCommand(dst, fr.kind, fr.pattern, fr.channel, fr.payload)
	case fr.hasPayload:
		return appendCommand(dst, fr.kind, fr.channel, fr.payload)
	case fr.channel != "":
		return appendCommand(dst, fr.kind, fr.channel)
	}
	return appendBulk(dst, fr.kind)
}

// readAll reads frames until an error; an input of n bytes holds at most
// n/3 frames (the shortest is "+\r\n"), so a reader still returning frames
// after that many reads is reported with a nil error.
func readAll(rr *respReader, n int) ([]fuzzFrame, error) {
	var frames []fuzzFrame
	for range n/3 + 2 {
		f, err := rr.read()
		if err != nil {
			return frames, err
		}
		frames = append(frames, copyFrame(f))
	}
	return frames, nil
}

func slicesEqual(a, b []fuzzFrame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// chunkReader returns data in reads of the sizes splits gives in turn (0:
// a read of nothing, but never twice in a row, which bufio would take for
// a broken reader; no splits: all at once), and io.EOF with the last bytes
// when the size of the read that takes them is odd.
type chunkReader struct {
	data, splits []byte
	i            int
	empty        bool // the last read returned nothing
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.splits) > 0 {
		n = int(r.splits[r.i%len(r.splits)])
		r.i++
	}
	if n == 0 && r.empty {
		n = 1
	}
	n = min(n, len(p), len(r.data))
	r.empty = n == 0
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 && n%2 == 1 {
		return n, io.EOF
	}
	return n, nil
}

// ending is how the reference says reading ends.
type ending int

const (
	atBoundary ending = iota // io.EOF where a frame would start
	cutShort                 // io.EOF or io.ErrUnexpectedEOF inside a frame
	malformed                // errProtocol
	eitherEnd                // cutShort or malformed: a line without LF that just fills the buffer at the end of the input
)

func (e ending) String() string {
	return [...]string{"io.EOF at a frame boundary", "io.EOF or io.ErrUnexpectedEOF", "errProtocol", "io.EOF or errProtocol"}[e]
}

func (e ending) matches(err error) bool {
	eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	protocol := errors.Is(err, errProtocol)
	switch e {
	case atBoundary:
		return errors.Is(err, io.EOF) && !protocol
	case cutShort:
		return eof && !protocol
	case malformed:
		return protocol
	}
	return eof != protocol
}

// refResult is what the reference reads: the frames and how reading ends.
type refResult struct {
	frames []fuzzFrame
	end    ending
}

// refParse reads input as a whole, as RESP2 replies to a subscriber or a
// pipeline are specified (and as the reader documents its limits), without
// the reader's code: the reference FuzzRESPReader compares with.
func refParse(input []byte, maxPayload int) refResult {
	p := refParser{in: input}
	var res refResult
	for {
		if p.pos == len(p.in) {
			res.end = atBoundary
			break
		}
		f, end, ok := p.frame(maxPayload)
		if !ok {
			res.end = end
			break
		}
		res.frames = append(res.frames, f)
	}
	return res
}

type refParser struct {
	in  []byte
	pos int
}

// bufferSize is the reader's bufio buffer, which bounds a line.
const bufferSize = 64 << 10

// line returns the next line without its CRLF.
func (p *refParser) line() (string, ending, bool) {
	rest := p.in[p.pos:]
	i := bytes.IndexByte(rest, '\n')
	switch {
	case i < 0 && len(rest) == bufferSize:
		return "", eitherEnd, false
	case i < 0 && len(rest) < bufferSize:
		return "", cutShort, false
	case i < 0 || i >= bufferSize:
		return "", malformed, false
	case i < 2 || rest[i-1] != '\r':
		return "", malformed, false
	}
	p.pos += i + 1
	return string(rest[:i-1]), 0, true
}

// length reads a RESP length: -1, or 1 to 10 decimal digits.
func length(s string) (int, bool) {
	if s == "-1" {
		return -1, true
	}
	if len(s) < 1 || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// bulk reads the body of a bulk string of n bytes, the first limit of
// them kept when limit is positive.
func (p *refParser) bulk(n, limit int) (string, ending, bool) {
	if n > maxBulk {
		return "", malformed, false
	}
	keep := n
	if limit > 0 && n > limit {
		keep = limit
	}
	rest := p.in[p.pos:]
	if len(rest) < n+2 {
		return "", cutShort, false
	}
	if rest[n] != '\r' || rest[n+1] != '\n' {
		return "", malformed, false
	}
	p.pos += n + 2
	return string(rest[:keep]), 0, true
}

func (p *refParser) frame(maxPayload int) (fuzzFrame, ending, bool) {
	l, end, ok := p.line()
	if !ok {
		return fuzzFrame{}, end, false
	}
	switch l[0] {
	case '+', ':':
		return fuzzFrame{kind: l[1:]}, 0, true
	case '-':
		return fuzzFrame{err: "redis: " + l[1:]}, 0, true
	case '$':
		n, ok := length(l[1:])
		switch {
		case !ok:
			return fuzzFrame{}, malformed, false
		case n < 0:
			return fuzzFrame{null: true}, 0, true
		}
		s, end, ok := p.bulk(n, 0)
		return fuzzFrame{kind: s}, end, ok
	case '*':
	default:
		return fuzzFrame{}, malformed, false
	}
	n, ok := length(l[1:])
	if !ok || n < 1 || n > 4 {
		return fuzzFrame{}, malformed, false
	}
	var elems []string
	for i := range n {
		l, end, ok := p.line()
		if !ok {
			return fuzzFrame{}, end, false
		}
		switch l[0] {
		case ':':
			elems = append(elems, l[1:])
			continue
		case '$':
		default:
			return fuzzFrame{}, malformed, false
		}
		size, ok := length(l[1:])
		if !ok {
			return fuzzFrame{}, malformed, false
		}
		if size < 0 {
			elems = append(elems, "")
			continue
		}
		limit := 0
		if (i == 2 && elems[0] == "message") || (i == 3 && elems[0] == "pmessage") {
			limit = maxPayload
		}
		s, end, ok := p.bulk(size, limit)
		if !ok {
			return fuzzFrame{}, end, false
		}
		elems = append(elems, s)
	}
	f := fuzzFrame{kind: elems[0]}
	if n > 1 {
		f.channel = elems[1]
	}
	switch {
	case n > 2 && elems[0] == "message":
		f.payload, f.hasPayload = elems[2], true
	case n > 3 && elems[0] == "pmessage":
		f.pattern, f.channel, f.payload, f.hasPayload = elems[1], elems[2], elems[3], true
	}
	return f, 0, true
}

// The reference agrees with the cases TestRespReader spells out, and
// with the reader on lines at the edge of its buffer, which the fuzzer
// does not reach.
func TestRESPReference(t *testing.T) {
	tests := []struct {
		input string
		want  []fuzzFrame
		end   ending
	}{
		{"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\n\"accepted\"\r\n", []fuzzFrame{{kind: "message", channel: "ch", payload: `"accepted"`, hasPayload: true}}, atBoundary},
		{"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n+OK\r\n$-1\r\n", []fuzzFrame{{kind: "unsubscribe"}, {kind: "OK"}, {null: true}}, atBoundary},
		{"-ERR x\r\n*3\r\n*1\r\n", []fuzzFrame{{err: "redis: ERR x"}}, malformed},
		{"*3\r\n$7\r\nmess", nil, cutShort},
		{"*3\r\n$7\r\nmessage\r\n", nil, cutShort},
		{"+OK\n", nil, malformed},
		{"*0\r\n", nil, malformed},
		{"+" + strings.Repeat("x", bufferSize-3) + "\r\n:1\r\n", []fuzzFrame{{kind: strings.Repeat("x", bufferSize-3)}, {kind: "1"}}, atBoundary},
		{"+" + strings.Repeat("x", bufferSize-2) + "\r\n", nil, malformed},
		{"+" + strings.Repeat("x", bufferSize-1), nil, eitherEnd},
		{"+" + strings.Repeat("x", bufferSize-2), nil, cutShort},
	}
	for _, tt := range tests {
		got := refParse([]byte(tt.input), 0)
		if !slicesEqual(got.frames, tt.want) || got.end != tt.end {
			t.Errorf("refParse(%.40q) = %.200v, %s; want %.200v, %s", tt.input, got.frames, got.end, tt.want, tt.end)
		}
		for _, splits := range [][]byte{nil, {1}, {255, 0, 3}} {
			frames, err := readAll(newRespReader(&chunkReader{data: []byte(tt.input), splits: splits}), len(tt.input))
			if !slicesEqual(frames, tt.want) || !tt.end.matches(err) {
				t.Errorf("reader on %.40q in reads of %v: %.200v, %v; want %s", tt.input, splits, frames, err, tt.end)
			}
		}
	}
}

// A header that claims a huge bulk string and then ends costs the reader
// what came, not what was claimed.
func TestRESPReaderGrowsWithTheData(t *testing.T) {
	for _, input := range []string{"$536870912\r\nabc", "*1\r\n$536870912\r\nabc", "$536870913\r\n"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := newRespReader(strings.NewReader(input)).read()
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%q read without an error", input)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Fatalf("%q: the reader allocated %d bytes", input, grew)
		}
	}
}
