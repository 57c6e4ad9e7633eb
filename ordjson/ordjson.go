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

// Limits bound what Decode accepts. Zero means no limit.
type Limits struct {
	MaxDepth int
	MaxNodes int
}

// ErrLimit marks input that exceeds Limits.
var ErrLimit = errors.New("exceeds limit")

// AppendJSON appends v as compact JSON. Strings are written as encoding/json
// writes them without HTML escaping; numbers keep their literal text.
func (v *Value) AppendJSON(buf []byte) []byte {
	switch v.Kind {
	case Null:
		return append(buf, "null"...)
	case Bool:
		return strconv.AppendBool(buf, v.Bool)
	case Number:
		return append(buf, v.Text...)
	case String:
		return appendString(buf, v.Text)
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
			buf = appendString(buf, m.Key)
			buf = append(buf, ':')
			buf = m.Value.AppendJSON(buf)
		}
		return append(buf, '}')
	}
}

const hexDigits = "0123456789abcdef"

// appendString writes s as encoding/json does with HTML escaping off:
// quotes, backslashes and control characters escaped, U+2028 and U+2029 as
// \u escapes, invalid UTF-8 as \ufffd.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
