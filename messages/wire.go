package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eventsource/eventsource/ordjson"
)

// Control strings and terminals. On the wire each is a JSON string, so
// "accepted" travels as the 10 bytes `"accepted"`, exactly as the original
// Node server and its clients wrote them.
const (
	// Accepted is sent by the client on the response channel after each row.
	Accepted = "accepted"
	// End is sent by the server after the last row, or by the client to abort.
	End = "end"
	// Timeout is sent by the server when no "accepted" came within the timeout.
	Timeout = "timeout"
	// Error is sent by the server when anything failed; nothing follows it.
	Error = "error"
)

// Pre-encoded terminal and control payloads, shared because they never change.
var (
	AcceptedJSON = []byte(`"accepted"`)
	EndJSON      = []byte(`"end"`)
	TimeoutJSON  = []byte(`"timeout"`)
	ErrorJSON    = []byte(`"error"`)
)

// Request is what a client publishes on a request channel (fetch or persist),
// as clients build it: the query as JSON text. Sent by clients; on the wire.
// The server decodes it as a ReceivedRequest.
//
// Only Channel and Query exist in the original protocol. The other fields are
// opt-in extensions: leaving them out keeps every byte the server sends
// identical to the original's.
type Request struct {
	// Channel is the response channel the server answers on.
	Channel string `json:"channel"`
	// Query is the json-sql-builder2 query as JSON text, written as it is.
	Query json.RawMessage `json:"query"`
	// Reason asks for terminal errors as ErrorReply objects instead of the
	// bare "error" string.
	Reason bool `json:"reason,omitempty"`
	// Decode asks for JSON columns as JSON values instead of JSON text.
	Decode bool `json:"decode,omitempty"`
	// Window is how many rows may be in flight before an "accepted"
	// (zero means 1, the original behaviour).
	Window int `json:"window,omitempty"`
	// Expect makes a persist commit only if its stream is at the given
	// version.
	Expect *Expectation `json:"expect,omitempty"`
	// Follow keeps a fetch open after the rows that matched when it
	// arrived: each new matching row follows as it commits, and only the
	// client's "end" (or an error) ends it.
	Follow bool `json:"follow,omitempty"`
	// Consumer names a durable consumer: the fetch starts after the last
	// row the consumer accepted, and records where it got to.
	Consumer string `json:"consumer,omitempty"`
	// Reset starts the consumer again at the beginning of this query.
	Reset bool `json:"reset,omitempty"`
}

// Expectation is a persist's expected version: every document belongs to
// the stream of Domain and PID, which must be at Version (its number of
// events; 0: it has none yet) when the persist commits. On the wire.
type Expectation struct {
	Domain  string `json:"domain"`
	PID     string `json:"pid"`
	Version int64  `json:"version"`
}

// AppendJSON appends the request as JSON to buf: the fields json.Marshal
// writes, in the same order, with Query copied as it is. Query must hold
// valid JSON (clients check it once, before the request is built); encoding
// a request this way spares the client a reflective walk and a second scan
// of the query.
func (r Request) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"channel":`...)
	buf = ordjson.AppendString(buf, r.Channel)
	buf = append(buf, `,"query":`...)
	if len(r.Query) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, r.Query...)
	}
	if r.Reason {
		buf = append(buf, `,"reason":true`...)
	}
	if r.Decode {
		buf = append(buf, `,"decode":true`...)
	}
	if r.Window != 0 {
		buf = append(buf, `,"window":`...)
		buf = strconv.AppendInt(buf, int64(r.Window), 10)
	}
	if r.Follow {
		buf = append(buf, `,"follow":true`...)
	}
	if r.Consumer != "" {
		buf = append(buf, `,"consumer":`...)
		buf = ordjson.AppendString(buf, r.Consumer)
	}
	if r.Reset {
		buf = append(buf, `,"reset":true`...)
	}
	if e := r.Expect; e != nil {
		buf = append(buf, `,"expect":{"domain":`...)
		buf = ordjson.AppendString(buf, e.Domain)
		buf = append(buf, `,"pid":`...)
		buf = ordjson.AppendString(buf, e.PID)
		buf = append(buf, `,"version":`...)
		buf = strconv.AppendInt(buf, e.Version, 10)
		buf = append(buf, '}')
	}
	return append(buf, '}')
}

// ReceivedRequest is a request as the server received it: the envelope of
// Request with its query decoded once, into the order-preserving tree that
// sqlbuild translates. Built by DecodeRequest, held by the router and the
// actor that answers it; not on the wire.
type ReceivedRequest struct {
	Channel string
	// Query is the json-sql-builder2 query: an object, unless the request
	// failed to decode (then it may be nil).
	Query  *ordjson.Value
	Reason bool
	Decode bool
	Window int
	Expect *Expectation
	// Follow, Consumer and Reset: see Request.
	Follow   bool
	Consumer string
	Reset    bool
}

// RequestLimits bound what DecodeRequest accepts.
type RequestLimits struct {
	// MaxBytes is the largest request accepted, in bytes.
	MaxBytes int
	// MaxChannel is the longest response channel name accepted, in bytes.
	MaxChannel int
	// MaxWindow is the largest credit window a client may ask for.
	MaxWindow int
	// MaxQueryDepth and MaxQueryValues bound the query's nesting and its
	// number of JSON values (0: no limit). They are the builder's limits
	// (sqlbuild.Limits), applied while the request is decoded.
	MaxQueryDepth  int
	MaxQueryValues int
}

// DefaultRequestLimits are the limits used when the operator sets none.
func DefaultRequestLimits() RequestLimits {
	return RequestLimits{MaxBytes: 1 << 20, MaxChannel: 256, MaxWindow: 1024, MaxQueryDepth: 32, MaxQueryValues: 10000}
}

// ErrNoChannel marks a request that names no usable response channel: the
// server cannot answer it on Redis and only logs and counts it.
var ErrNoChannel = errors.New("request names no usable response channel")

// ErrBadRequest marks a request with a usable channel but invalid content.
var ErrBadRequest = errors.New("bad request")

// envelopeValues is how many JSON values a request may hold beyond its
// query's: the object and its channel, reason, decode, window, follow,
// consumer and reset, and expect with its three members.
const envelopeValues = 12

// DecodeRequest parses a request under limits, in one pass, into a
// ReceivedRequest whose query is an ordered tree. When the error wraps
// ErrBadRequest, the result still carries the response channel and the
// reason opt-in, so that the error can be reported there.
func DecodeRequest(payload []byte, limits RequestLimits) (ReceivedRequest, error) {
	if limits.MaxBytes > 0 && len(payload) > limits.MaxBytes {
		// Still try to find the channel so the client hears why. The
		// subscriber keeps only the start of a long request, so its size is
		// not known here.
		return sniffed(payload, limits, fmt.Errorf("request exceeds %d bytes", limits.MaxBytes))
	}
	treeLimits := ordjson.Limits{}
	if limits.MaxQueryDepth > 0 {
		treeLimits.MaxDepth = limits.MaxQueryDepth + 1 // the query sits in the envelope
	}
	if limits.MaxQueryValues > 0 {
		treeLimits.MaxNodes = limits.MaxQueryValues + envelopeValues
	}
	v, err := ordjson.Decode(payload, treeLimits)
	if err != nil {
		if errors.Is(err, ordjson.ErrLimit) {
			err = fmt.Errorf("query: %w", err)
		}
		return sniffed(payload, limits, fmt.Errorf("decode request: %w", err))
	}
	if v.Kind != ordjson.Object {
		return ReceivedRequest{}, fmt.Errorf("request must be a JSON object, got %s: %w", v.Kind, ErrNoChannel)
	}
	var req ReceivedRequest
	var problems []string
	channelSeen := false
	for _, m := range v.Members {
		switch m.Key {
		case "channel":
			channelSeen = true
			if m.Value.Kind != ordjson.String {
				return ReceivedRequest{}, fmt.Errorf("request channel must be a string, got %s: %w", m.Value.Kind, ErrNoChannel)
			}
			req.Channel = m.Value.Text
		case "query":
			req.Query = m.Value
		case "reason", "decode", "follow", "reset":
			if m.Value.Kind != ordjson.Bool {
				problems = append(problems, fmt.Sprintf("%s must be true or false", m.Key))
				continue
			}
			switch m.Key {
			case "reason":
				req.Reason = m.Value.Bool
			case "decode":
				req.Decode = m.Value.Bool
			case "follow":
				req.Follow = m.Value.Bool
			case "reset":
				req.Reset = m.Value.Bool
			}
		case "consumer":
			if m.Value.Kind != ordjson.String || !ValidConsumer(m.Value.Text) {
				problems = append(problems, fmt.Sprintf("consumer must be 1 to %d characters of letters, digits and ._:-", MaxConsumer))
				continue
			}
			req.Consumer = m.Value.Text
		case "window":
			n, err := strconv.Atoi(m.Value.Text)
			if m.Value.Kind != ordjson.Number || err != nil {
				problems = append(problems, "window must be an integer")
				continue
			}
			req.Window = n
		case "expect":
			e, problem := decodeExpectation(m.Value)
			if problem != "" {
				problems = append(problems, problem)
				continue
			}
			req.Expect = e
		}
	}
	if !channelSeen {
		return ReceivedRequest{}, fmt.Errorf("request has no channel: %w", ErrNoChannel)
	}
	if err := ValidateChannel(req.Channel, limits.MaxChannel); err != nil {
		return ReceivedRequest{}, fmt.Errorf("request channel: %w: %w", err, ErrNoChannel)
	}
	switch {
	case len(problems) > 0:
		return ReceivedRequest{Channel: req.Channel, Reason: req.Reason}, fmt.Errorf("request %s: %w", strings.Join(problems, ", "), ErrBadRequest)
	case req.Query == nil || req.Query.Kind == ordjson.Null:
		return req, fmt.Errorf("request has no query: %w", ErrBadRequest)
	case req.Query.Kind != ordjson.Object:
		return req, fmt.Errorf("request query must be a JSON object: %w", ErrBadRequest)
	case limits.MaxQueryValues > 0 && req.Query.Count() > limits.MaxQueryValues:
		return req, fmt.Errorf("query: more than %d JSON values: %w", limits.MaxQueryValues, ErrBadRequest)
	case req.Window < 0 || (limits.MaxWindow > 0 && req.Window > limits.MaxWindow):
		return req, fmt.Errorf("request window %d outside 1..%d: %w", req.Window, limits.MaxWindow, ErrBadRequest)
	}
	return req, nil
}

// MaxConsumer is the longest consumer name.
const MaxConsumer = 200

// ValidConsumer reports whether name is a consumer name: 1 to 200
// letters, digits and ._:- (ASCII).
func ValidConsumer(name string) bool {
	if len(name) == 0 || len(name) > MaxConsumer {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// decodeExpectation reads {"domain": D, "pid": P, "version": N}, or says
// what is wrong with it.
func decodeExpectation(v *ordjson.Value) (*Expectation, string) {
	const shape = `expect must be {"domain": string, "pid": string, "version": integer from 0}`
	if v.Kind != ordjson.Object || len(v.Members) != 3 {
		return nil, shape
	}
	domain, pid, version := v.Get("domain"), v.Get("pid"), v.Get("version")
	if domain == nil || pid == nil || version == nil || domain.Kind != ordjson.String || pid.Kind != ordjson.String || version.Kind != ordjson.Number {
		return nil, shape
	}
	n, err := strconv.ParseInt(version.Text, 10, 64)
	if err != nil || n < 0 || domain.Text == "" || pid.Text == "" {
		return nil, shape
	}
	return &Expectation{Domain: domain.Text, PID: pid.Text, Version: n}, ""
}

// PeekRequest reads a request's response channel and its reason opt-in,
// without decoding the rest: what a server needs to claim the channel
// before it spends a full decode on a request that another server may
// answer. ok is false when it finds no usable channel; DecodeRequest then
// says why.
func PeekRequest(payload []byte, limits RequestLimits) (channel string, reason bool, ok bool) {
	if limits.MaxBytes > 0 && len(payload) > limits.MaxBytes {
		return "", false, false
	}
	var raw []byte
	_ = ordjson.EachMember(payload, func(key string, value []byte) bool {
		switch key {
		case "channel":
			if raw == nil {
				raw = value
			}
		case "reason":
			reason = string(value) == "true"
		}
		return true
	})
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, false
	}
	v, err := ordjson.Decode(raw, ordjson.Limits{})
	if err != nil || ValidateChannel(v.Text, limits.MaxChannel) != nil {
		return "", false, false
	}
	return v.Text, reason, true
}

// sniffed is the answer to a request that could not be decoded as a whole:
// cause, as a bad request on the channel sniff finds, or as ErrNoChannel.
func sniffed(payload []byte, limits RequestLimits, cause error) (ReceivedRequest, error) {
	req := sniff(payload, limits)
	if req.Channel == "" {
		return req, fmt.Errorf("%w: %w", cause, ErrNoChannel)
	}
	return req, fmt.Errorf("%w: %w", cause, ErrBadRequest)
}

// sniff finds, in a request that failed to decode as a whole (too long,
// truncated, a duplicate key, a query over the limits), what is needed to report the error: a usable
// "channel" and the "reason" opt-in. A field of the wrong type is skipped.
func sniff(payload []byte, limits RequestLimits) ReceivedRequest {
	var req ReceivedRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		switch tok {
		case "channel":
			var channel string
			if json.Unmarshal(raw, &channel) == nil && ValidateChannel(channel, limits.MaxChannel) == nil {
				req.Channel = channel
			}
		case "reason":
			_ = json.Unmarshal(raw, &req.Reason)
		}
	}
	return req
}

// Channels are the server's request channels and its commit channel: the
// names no response channel may take, since an answer there would be read
// as a request or an announcement.
type Channels struct {
	Fetch, Persist, FetchNext string
	// Commit is where servers announce commits (Committed); empty: none.
	Commit string
	// Finished is where servers announce the end of a response channel's
	// claim (the payload is the channel); empty: none.
	Finished string
}

// Reserved reports whether channel is one of c, and so no response
// channel.
func (c Channels) Reserved(channel string) bool {
	return channel == c.Fetch || channel == c.Persist || channel == c.FetchNext ||
		(c.Commit != "" && channel == c.Commit) || (c.Finished != "" && channel == c.Finished)
}

// ReservedBytes is Reserved for a channel name as the subscriber read it,
// compared in place, without a copy.
func (c Channels) ReservedBytes(channel []byte) bool {
	return string(channel) == c.Fetch || string(channel) == c.Persist || string(channel) == c.FetchNext ||
		(c.Commit != "" && string(channel) == c.Commit) || (c.Finished != "" && string(channel) == c.Finished)
}

// ValidateChannel checks that a response channel name is usable: non-empty,
// valid UTF-8, no control characters, no longer than max bytes (0: no limit).
func ValidateChannel(channel string, max int) error {
	switch {
	case channel == "":
		return errors.New("channel is empty")
	case max > 0 && len(channel) > max:
		return fmt.Errorf("channel is longer than %d bytes", max)
	case !utf8.ValidString(channel):
		return errors.New("channel is not valid UTF-8")
	case strings.ContainsFunc(channel, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("channel contains control characters")
	}
	return nil
}

// NextRequest is the legacy acceptance, `{"channel": C}` on fetch-next.
// Sent by old clients, received by the router; on the wire.
type NextRequest struct {
	Channel string `json:"channel"`
}

// Control is what a client can say on a response channel.
type Control int

const (
	// ControlNone is anything the server ignores there: rows and replies it
	// published itself, its own terminals echoed back, unknown strings.
	ControlNone Control = iota
	// ControlAccepted grants one more row.
	ControlAccepted
	// ControlEnd aborts the stream.
	ControlEnd
)

// ParseControl reads a message heard on a response channel, as bytes or as
// the string the Redis client read. The bytes are compared exactly first
// because that is what every client sends; a row (an object) is told apart
// without copying it.
func ParseControl[P ~string | ~[]byte](payload P) Control {
	switch {
	case equalText(payload, AcceptedJSON):
		return ControlAccepted
	case equalText(payload, EndJSON):
		return ControlEnd
	}
	i := 0
	for i < len(payload) && isJSONSpace(payload[i]) {
		i++
	}
	if i == len(payload) || payload[i] != '"' {
		return ControlNone
	}
	var s string
	if json.Unmarshal([]byte(payload[i:]), &s) != nil {
		return ControlNone
	}
	switch s {
	case Accepted:
		return ControlAccepted
	case End:
		return ControlEnd
	}
	return ControlNone
}

// equalText compares byte by byte: in a generic function, string(p) copies
// p even inside a comparison (a row heard on a response channel cost an
// allocation of its size).
func equalText[P ~string | ~[]byte](p P, want []byte) bool {
	if len(p) != len(want) {
		return false
	}
	for i := range len(want) {
		if p[i] != want[i] {
			return false
		}
	}
	return true
}

// isJSONSpace is JSON's whitespace.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Inbound is a message heard on a subscribed channel. Sent by the Redis
// subscriber's reader goroutine, received by the router; not on the wire.
type Inbound struct {
	Channel string
	Payload []byte
	// Seq numbers what the subscriber heard, in order: a message with a
	// greater Seq was published after one with a smaller (one Redis
	// connection hears in publish order).
	Seq uint64
	// Pattern is the pattern subscription the message came through; empty
	// for a subscription of the channel itself.
	Pattern string
}

// Subscribed confirms that Redis has registered a subscription, so that
// what is published on Channel from now on will be heard. Sent by the
// subscriber, received by the router; not on the wire.
type Subscribed struct {
	Channel string
	// Pattern says Channel is a pattern (PSUBSCRIBE).
	Pattern bool
}

// BusInterrupted says the subscriber connection failed: messages may have
// been lost, and it is reconnecting and resubscribing. Sent by the
// subscriber, received by the router; not on the wire.
type BusInterrupted struct {
	Err error
}

// BusRestored says the subscriber connection is back after a
// BusInterrupted and Redis confirmed every subscription again. Sent by the
// subscriber; not on the wire.
type BusRestored struct{}
