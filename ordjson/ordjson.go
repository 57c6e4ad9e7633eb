// Package ordjson decodes untrusted JSON into a tree that keeps object key
// order and exact numbers, under limits on size, depth and node count.
//
// json-sql-builder2 queries give meaning to key order (columns, ORDER BY,
// documents), which map[string]any would lose, and ids need all 64 bits,
// which float64 would lose. A decoded Value is immutable and safe to share.
package ordjson

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Kind is the JSON type of a Value.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one JSON value.
type Value struct {
	Kind Kind
	// Text is the string of a String, or the literal text of a Number.
	Text string
	// Bool is the value of a Bool.
	Bool bool
	// Items are the elements of an Array.
	Items []*Value
	// Members are the members of an Object, in document order.
	Members []Member
}

// Member is one key of an Object.
type Member struct {
	Key   string
	Value *Value
}

// NewString, NewObject and NewArray build values, for queries made in
// code rather than decoded.
func NewString(s string) *Value { return &Value{Kind: String, Text: s} }

// NewObject builds an object of the members, in their order.
func NewObject(members ...Member) *Value { return &Value{Kind: Object, Members: members} }

// NewArray builds an array of the items.
func NewArray(items ...*Value) *Value { return &Value{Kind: Array, Items: items} }

// Get returns the member value for key, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	for _, m := range v.Members {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// Count is the number of JSON values in v, v included: what Limits.MaxNodes
// bounds.
func (v *Value) Count() int {
	n := 1
	for _, item := range v.Items {
		n += item.Count()
	}
	for _, m := range v.Members {
		n += m.Value.Count()
	}
	return n
}

// Limits bound what Decode accepts. Zero means no limit.
type Limits struct {
	MaxDepth int
	MaxNodes int
}

// ErrLimit marks input that exceeds Limits.
var ErrLimit = errors.New("exceeds limit")

// AppendJSON appends v as compact JSON, as JSON.stringify would write it:
// strings through AppendString, numbers in their literal text.
// A nil Value is written as null.
func (v *Value) AppendJSON(buf []byte) []byte {
	if v == nil {
		return append(buf, "null"...)
	}
	switch v.Kind {
	case Null:
		return append(buf, "null"...)
	case Bool:
		return strconv.AppendBool(buf, v.Bool)
	case Number:
		return append(buf, v.Text...)
	case String:
		return AppendString(buf, v.Text)
	case Array:
		buf = append(buf, '[')
		for i, item := range v.Items {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = item.AppendJSON(buf)
		}
		return append(buf, ']')
	default:
		buf = append(buf, '{')
		for i, m := range v.Members {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = AppendString(buf, m.Key)
			buf = append(buf, ':')
			buf = m.Value.AppendJSON(buf)
		}
		return append(buf, '}')
	}
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII
// but the quote and the backslash. One load per byte instead of four
// comparisons.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString writes s as a JSON string the way JSON.stringify does, which
// is how the original Node server wrote every string it published and
// stored: the one string encoder of rows, replies and stored JSON text. only
// quotes, backslashes and control characters are escaped (encoding/json also
// escapes <, >, & and U+2028/9, which would change the bytes). Invalid UTF-8
// becomes U+FFFD.
//
// s may be text's bytes, so that text read into a buffer is written without
// a copy to a string first.
func AppendString[S ~string | ~[]byte](buf []byte, s S) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// At most 4 bytes: the conversion stays on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
