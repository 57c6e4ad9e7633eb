package ordjson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses exactly one JSON value (RFC 8259, as encoding/json accepts
// it: invalid UTF-8 and lone surrogates in strings become U+FFFD).
//
// It is a single pass over data, with no reflection and no tokens: every
// request the server hears goes through it, so it is written for speed.
func Decode(data []byte, limits Limits) (*Value, error) {
	d := decoder{data: data, limits: limits}
	d.skipSpace()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	data   []byte
	pos    int
	limits Limits
	nodes  int
}

var errEnd = errors.New("unexpected end of JSON")

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// syntax reports the byte at the current position, and what was wanted.
func (d *decoder) syntax(want string) error {
	if d.pos >= len(d.data) {
		return errEnd
	}
	return fmt.Errorf("invalid character %q at offset %d: want %s", d.data[d.pos], d.pos, want)
}

// value parses the value at d.pos (no leading space).
func (d *decoder) value(depth int) (*Value, error) {
	if d.limits.MaxDepth > 0 && depth > d.limits.MaxDepth {
		return nil, fmt.Errorf("nesting deeper than %d: %w", d.limits.MaxDepth, ErrLimit)
	}
	d.nodes++
	if d.limits.MaxNodes > 0 && d.nodes > d.limits.MaxNodes {
		return nil, fmt.Errorf("more than %d JSON values: %w", d.limits.MaxNodes, ErrLimit)
	}
	if d.pos >= len(d.data) {
		return nil, errEnd
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		return &Value{Kind: String, Text: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		text, err := d.number()
		if err != nil {
			return nil, err
		}
		return &Value{Kind: Number, Text: text}, nil
	case c == 't':
		return d.literal("true", &Value{Kind: Bool, Bool: true})
	case c == 'f':
		return d.literal("false", &Value{Kind: Bool})
	case c == 'n':
		return d.literal("null", &Value{Kind: Null})
	}
	return nil, d.syntax("a value")
}

func (d *decoder) literal(word string, v *Value) (*Value, error) {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) {
			return nil, errEnd
		}
		if d.data[d.pos] != word[i] {
			return nil, d.syntax("the literal " + word)
		}
		d.pos++
	}
	return v, nil
}

// scanKeys is how many keys an object may have before its duplicates are
// looked up in a set rather than by scanning its members.
const scanKeys = 16

func (d *decoder) object(depth int) (*Value, error) {
	d.pos++ // {
	v := &Value{Kind: Object, Members: []Member{}}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return v, nil
	}
	// Keys seen, in a set once the object outgrows a short scan: an
	// untrusted object of many keys must not cost time quadratic in them.
	var seen map[string]struct{}
	for {
		if d.pos >= len(d.data) {
			return nil, errEnd
		}
		if d.data[d.pos] != '"' {
			return nil, d.syntax("a string key")
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		switch {
		case seen != nil:
			if _, dup := seen[key]; dup {
				return nil, fmt.Errorf("duplicate key %q", key)
			}
			seen[key] = struct{}{}
		case v.Get(key) != nil:
			return nil, fmt.Errorf("duplicate key %q", key)
		case len(v.Members) >= scanKeys:
			seen = make(map[string]struct{}, 2*scanKeys)
			for _, m := range v.Members {
				seen[m.Key] = struct{}{}
			}
			seen[key] = struct{}{}
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errEnd
		}
		if d.data[d.pos] != ':' {
			return nil, d.syntax("':' after a key")
		}
		d.pos++
		d.skipSpace()
		item, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.Members = append(v.Members, Member{Key: key, Value: item})
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errEnd
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case '}':
			d.pos++
			return v, nil
		default:
			return nil, d.syntax("',' or '}' in an object")
		}
	}
}

func (d *decoder) array(depth int) (*Value, error) {
	d.pos++ // [
	v := &Value{Kind: Array, Items: []*Value{}}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return v, nil
	}
	for {
		item, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.Items = append(v.Items, item)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errEnd
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case ']':
			d.pos++
			return v, nil
		default:
			return nil, d.syntax("',' or ']' in an array")
		}
	}
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns
// its literal text.
func (d *decoder) number() (string, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos >= len(d.data) {
		return "", errEnd
	}
	switch c := d.data[d.pos]; {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return "", d.syntax("a digit")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if !d.digits() {
			return "", d.syntax("a digit after the decimal point")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if !d.digits() {
			return "", d.syntax("a digit in the exponent")
		}
	}
	return string(d.data[start:d.pos]), nil
}

// digits skips [0-9]* and reports whether there was one.
func (d *decoder) digits() bool {
	start := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}

// string scans a quoted string at d.pos and returns it unescaped.
func (d *decoder) string() (string, error) {
	d.pos++ // "
	start := d.pos
	// The common case: nothing to unescape and valid UTF-8.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := d.data[start:d.pos]
			d.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.pos++
	}
	buf := append(make([]byte, 0, d.pos-start+16), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c < 0x20:
			return "", d.syntax("no control character inside a string")
		case c == '\\':
			var err error
			if buf, err = d.escape(buf); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, d.data[d.pos:d.pos+size]...)
			}
			d.pos += size
		}
	}
	return "", errEnd
}

// escape decodes the escape sequence at d.pos (a backslash) onto buf.
func (d *decoder) escape(buf []byte) ([]byte, error) {
	d.pos++ // backslash
	if d.pos >= len(d.data) {
		return nil, errEnd
	}
	c := d.data[d.pos]
	d.pos++
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, err := d.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(r) {
			// A high surrogate pairs with a following \u low surrogate;
			// anything else leaves it alone, and alone it is U+FFFD.
			if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				save := d.pos
				d.pos += 2
				r2, err := d.hex4()
				if err != nil {
					return nil, err
				}
				if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
					return utf8.AppendRune(buf, pair), nil
				}
				d.pos = save
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(buf, r), nil
	}
	d.pos--
	return nil, d.syntax("an escape sequence")
}

func (d *decoder) hex4() (rune, error) {
	if d.pos+4 > len(d.data) {
		return 0, errEnd
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, d.syntax("four hex digits after \\u")
	}
	d.pos += 4
	return rune(n), nil
}
