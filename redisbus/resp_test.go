package redisbus

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// want is a frame as the test expects it; payload "-" stands for none.
type want struct{ kind, channel, payload, err string }

func TestRespReader(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // larger than the reader's buffer
	tests := []struct {
		name  string
		input string
		want  []want
		final error // what the read after the frames returns
	}{
		{
			name:  "a message",
			input: "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\n\"accepted\"\r\n",
			want:  []want{{kind: "message", channel: "ch", payload: `"accepted"`}},
			final: io.EOF,
		},
		{
			name:  "subscribe confirmation, then an empty and a binary message",
			input: "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\n\x00\r\n\xff\r\n",
			want: []want{
				{kind: "subscribe", channel: "a", payload: "-"},
				{kind: "message", channel: "a", payload: ""},
				{kind: "message", channel: "a", payload: "\x00\r\n\xff"},
			},
			final: io.EOF,
		},
		{
			name:  "a payload larger than the buffer",
			input: "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n",
			want:  []want{{kind: "message", channel: "b", payload: big}},
			final: io.EOF,
		},
		{
			name:  "unsubscribe from nothing, pong, status, integer",
			input: "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n+OK\r\n:42\r\n",
			want: []want{
				{kind: "unsubscribe", payload: "-"},
				{kind: "pong", payload: "-"},
				{kind: "OK", payload: "-"},
				{kind: "42", payload: "-"},
			},
			final: io.EOF,
		},
		{
			name:  "an error reply keeps the connection in step",
			input: "-NOAUTH Authentication required.\r\n+OK\r\n",
			want:  []want{{payload: "-", err: "redis: NOAUTH Authentication required."}, {kind: "OK", payload: "-"}},
			final: io.EOF,
		},
		{name: "a RESP3 push", input: ">3\r\n$7\r\nmessage\r\n", final: errProtocol},
		{name: "a nested array", input: "*3\r\n*1\r\n", final: errProtocol},
		{name: "a bad length", input: "*3\r\n$x\r\n", final: errProtocol},
		{name: "an empty array", input: "*0\r\n", final: errProtocol},
		{name: "a bulk string without CRLF", input: "*1\r\n$2\r\nabcd\r\n", final: errProtocol},
		{name: "a line without CR", input: "+OK\n", final: errProtocol},
		{name: "cut short", input: "*3\r\n$7\r\nmess", final: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, split := range []bool{false, true} {
			name := tt.name
			if split {
				name += ", a byte at a time"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.input)
				if split {
					r = iotest.OneByteReader(r)
				}
				rr := newRespReader(r)
				for i, w := range tt.want {
					f, err := rr.read()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					got := want{kind: string(f.kind), channel: string(f.channel), payload: string(f.payload), err: errText(f.err)}
					if f.payload == nil {
						got.payload = "-"
					}
					if got != w {
						t.Fatalf("frame %d = %.60q, want %.60q", i, got, w)
					}
				}
				if _, err := rr.read(); !errors.Is(err, tt.final) {
					t.Fatalf("after the frames: %v, want %v", err, tt.final)
				}
			})
		}
	}
}

// A payload over the limit is kept in part, and what follows it is still
// read in step, even when the payload never fits the buffer.
func TestRespReaderKeepsPartOfALongPayload(t *testing.T) {
	long := strings.Repeat("y", 300<<10)
	tests := []struct {
		name    string
		payload string
		limit   int
		want    string
	}{
		{"shorter than the limit", "abc", 8, "abc"},
		{"exactly the limit", "abcdefgh", 8, "abcdefgh"},
		{"one byte over", "abcdefghi", 8, "abcdefgh"},
		{"far over, larger than the buffer", long, 9, long[:9]},
		{"no limit", long, 0, long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$" + strconv.Itoa(len(tt.payload)) + "\r\n" + tt.payload + "\r\n" +
				"*3\r\n$9\r\nsubscribe\r\n$" + strconv.Itoa(len(tt.payload)) + "\r\n" + tt.payload + "\r\n:1\r\n" + // only payloads are cut
				"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nnext\r\n"
			rr := newRespReader(strings.NewReader(input))
			rr.maxPayload = tt.limit
			f, err := rr.read()
			if err != nil {
				t.Fatal(err)
			}
			if string(f.channel) != "ch" || string(f.payload) != tt.want {
				t.Fatalf("message on %q of %d bytes, want %d", f.channel, len(f.payload), len(tt.want))
			}
			if tt.limit > 0 && cap(rr.buf) > 64<<10 {
				t.Fatalf("kept a buffer of %d bytes for a payload limited to %d", cap(rr.buf), tt.limit)
			}
			if f, err = rr.read(); err != nil || string(f.kind) != "subscribe" || string(f.channel) != tt.payload {
				t.Fatalf("then %q on a channel of %d bytes (%v), want the whole channel name", f.kind, len(f.channel), err)
			}
			if f, err = rr.read(); err != nil || string(f.payload) != "next" {
				t.Fatalf("then %q (%v), want the next message", f.payload, err)
			}
		})
	}
}

func TestAppendCommand(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(appendCommand(nil, "PING")), "*1\r\n$4\r\nPING\r\n"},
		{string(appendCommand(nil, "SUBSCRIBE", "a", "kanal-ø")), "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$8\r\nkanal-ø\r\n"},
		{string(appendPublish([]byte("x"), "c", []byte("\r\n"))), "x*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\n\r\n\r\n"},
		{string(appendPublish(nil, "", nil)), "*3\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n$0\r\n\r\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
