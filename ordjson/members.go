package ordjson

import "errors"

// EachMember calls fn with each member of the JSON object data, in order:
// its key and its value's raw bytes, undecoded (nested values are skipped,
// not built). It stops when fn returns false. For reading a field or two of
// a large document without decoding the rest; it checks only what it reads.
func EachMember(data []byte, fn func(key string, raw []byte) bool) error {
	d := decoder{data: data}
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return errors.New("not a JSON object")
	}
	d.pos++
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return errEnd
		}
		if d.data[d.pos] == '}' {
			return nil
		}
		if d.data[d.pos] == ',' {
			d.pos++
			d.skipSpace()
		}
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.syntax("a string key")
		}
		key, err := d.string()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.syntax("':' after a key")
		}
		d.pos++
		d.skipSpace()
		start := d.pos
		if err := d.skip(); err != nil {
			return err
		}
		if !fn(key, d.data[start:d.pos]) {
			return nil
		}
	}
}

// skip passes over the value at d.pos without building it.
func (d *decoder) skip() error {
	depth := 0
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; c {
		case '"':
			if _, err := d.string(); err != nil {
				return err
			}
		case '{', '[':
			depth++
			d.pos++
		case '}', ']':
			if depth == 0 {
				return nil // the end of the object around a scalar
			}
			depth--
			d.pos++
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return nil
			}
			d.pos++
		default:
			d.pos++
		}
		if depth == 0 && d.pos > 0 {
			// A scalar ends at the next delimiter; a container at its
			// closing bracket.
			switch d.data[d.pos-1] {
			case '"', '}', ']':
				return nil
			}
		}
	}
	if depth > 0 {
		return errEnd
	}
	return nil
}
