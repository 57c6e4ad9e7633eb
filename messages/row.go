package messages

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/eventsource/eventsource/ordjson"
)

// Row is one result row. Built by the stream's cursor, encoded here, sent by
// the server on the response channel; on the wire as a JSON object whose keys
// keep the column order of the query (a map would sort them).
type Row struct {
	Columns []string
	// Values holds, per column: nil, string, int64, uint64, float64, bool,
	// time.Time (see TimeDigits), json.RawMessage (written verbatim) or []byte
	// (written as a string).
	Values []any
	// TimeDigits holds, per column, the fractional-second digits to write for
	// a time.Time value. The original wrote JavaScript Dates, so never fewer
	// than 3; 6 keeps the microseconds of a DATETIME(6) column.
	TimeDigits []int
}

// MarshalJSON encodes the row as the original server did with JSON.stringify.
func (r Row) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 64*len(r.Columns))), nil
}

// AppendJSON appends the row's JSON to buf.
func (r Row) AppendJSON(buf []byte) []byte {
	buf = append(buf, '{')
	for i, col := range r.Columns {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = ordjson.AppendString(buf, col)
		buf = append(buf, ':')
		digits := 3
		if i < len(r.TimeDigits) && r.TimeDigits[i] > 3 {
			digits = r.TimeDigits[i]
		}
		buf = appendValue(buf, r.Values[i], digits)
	}
	return append(buf, '}')
}

func appendValue(buf []byte, v any, digits int) []byte {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...)
	case string:
		return ordjson.AppendString(buf, v)
	case []byte:
		return ordjson.AppendString(buf, v)
	case int64:
		return strconv.AppendInt(buf, v, 10)
	case uint64:
		return strconv.AppendUint(buf, v, 10)
	case float64:
		return appendFloat(buf, v)
	case bool:
		return strconv.AppendBool(buf, v)
	case time.Time:
		buf = append(buf, '"')
		buf = AppendTime(buf, v, digits)
		return append(buf, '"')
	case json.RawMessage:
		return append(buf, v...)
	case interface{ AppendJSON([]byte) []byte }:
		// A value that writes itself (a reader's view of its buffer).
		return v.AppendJSON(buf)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return append(buf, "null"...)
		}
		return append(buf, b...)
	}
}

// appendFloat writes v as JSON.stringify does (JavaScript's Number to
// String): plain decimals from 1e-6 up to 1e21 and exponent form outside,
// without a leading zero in the exponent (1e-7, 1e+21); -0 as 0; NaN and
// infinities as null. strconv's 'g' would write 1e+06 and 1e-07 instead.
func appendFloat(buf []byte, v float64) []byte {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return append(buf, "null"...)
	case v == 0:
		return append(buf, '0')
	}
	format := byte('f')
	if abs := math.Abs(v); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, v, format, -1, 64)
	if format == 'e' {
		// e-07 to e-7; exponents of 1e21 and up have two digits already.
		if n := len(buf); n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}

// AppendTime writes t in UTC as ISO-8601 with the given fractional digits
// (3 to 9), the form of JavaScript's Date.prototype.toISOString when digits
// is 3: 2020-04-06T11:35:18.414Z.
func AppendTime(buf []byte, t time.Time, digits int) []byte {
	layout, frac := "2006-01-02T15:04:05.000Z", 3
	switch {
	case digits >= 9:
		layout, frac = "2006-01-02T15:04:05.000000000Z", 9
	case digits >= 6:
		layout, frac = "2006-01-02T15:04:05.000000Z", 6
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(buf, layout)
	}
	// Written digit by digit: every row carries a timestamp, and the
	// layout-driven formatter costs several times as much.
	hour, minute, second := t.Clock()
	buf = appendDigits(buf, year, 4)
	buf = append(buf, '-')
	buf = appendDigits(buf, int(month), 2)
	buf = append(buf, '-')
	buf = appendDigits(buf, day, 2)
	buf = append(buf, 'T')
	buf = appendDigits(buf, hour, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, minute, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, second, 2)
	buf = append(buf, '.')
	ns := t.Nanosecond()
	for range 9 - frac {
		ns /= 10 // truncated, as the layout's zeros do
	}
	buf = appendDigits(buf, ns, frac)
	return append(buf, 'Z')
}

// appendDigits writes n, not negative, in exactly width digits.
func appendDigits(buf []byte, n, width int) []byte {
	start := len(buf)
	for range width {
		buf = append(buf, '0')
	}
	for i := len(buf) - 1; i >= start; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return buf
}
