// Package ordjson decodes untrusted JSON into a tree that keeps object key
// order and exact numbers, under limits on size, depth and node count.
//
// json-sql-builder2 queries give meaning to key order (columns, ORDER BY,
// documents), which map[string]any would lose, and ids need all 64 bits,
// which float64 would lose. A decoded Value is immutable and safe to share.
package ordjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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

// Decode parses exactly one JSON value.
func Decode(data []byte, limits Limits) (*Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	d := decoder{dec: dec, limits: limits}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	dec    *json.Decoder
	limits Limits
	nodes  int
}

func (d *decoder) value(depth int) (*Value, error) {
	if d.limits.MaxDepth > 0 && depth > d.limits.MaxDepth {
		return nil, fmt.Errorf("nesting deeper than %d: %w", d.limits.MaxDepth, ErrLimit)
	}
	d.nodes++
	if d.limits.MaxNodes > 0 && d.nodes > d.limits.MaxNodes {
		return nil, fmt.Errorf("more than %d JSON values: %w", d.limits.MaxNodes, ErrLimit)
	}
	tok, err := d.dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("unexpected end of JSON")
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &Value{Kind: Null}, nil
	case bool:
		return &Value{Kind: Bool, Bool: t}, nil
	case json.Number:
		return &Value{Kind: Number, Text: string(t)}, nil
	case string:
		return &Value{Kind: String, Text: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &Value{Kind: Array, Items: []*Value{}}
			for d.dec.More() {
				item, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.Items = append(v.Items, item)
			}
			_, err := d.dec.Token() // ]
			return v, err
		case '{':
			v := &Value{Kind: Object, Members: []Member{}}
			for d.dec.More() {
				keyTok, err := d.dec.Token()
				if err != nil {
					return nil, err
				}
				key := keyTok.(string)
				if v.Get(key) != nil {
					return nil, fmt.Errorf("duplicate key %q", key)
				}
				item, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.Members = append(v.Members, Member{Key: key, Value: item})
			}
			_, err := d.dec.Token() // }
			return v, err
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

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

func appendString(buf []byte, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(buf, bytes.TrimRight(b.Bytes(), "\n")...)
}
