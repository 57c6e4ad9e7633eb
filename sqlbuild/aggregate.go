package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/doug-martin/goqu/v9"
	"github.com/doug-martin/goqu/v9/exp"

	"github.com/eventsource/eventsource/ordjson"
)

// aggregates are the aggregation helpers of json-sql-builder2.
var aggregates = map[string]string{"$count": "COUNT", "$sum": "SUM", "$avg": "AVG", "$min": "MIN", "$max": "MAX"}

// helper translates a value-position object holding one helper, such as
// {"$count": "*"} or {"$sum": {"$expr": "~~id", "$distinct": true}}. It
// reports whether the result aggregates.
func (b *Builder) helper(t *Table, v *ordjson.Value, at path) (exp.SQLFunctionExpression, bool, error) {
	if v.Kind != ordjson.Object || len(v.Members) != 1 {
		return nil, false, at.errorf("must be an object with one helper such as $count")
	}
	m := v.Members[0]
	fn, ok := aggregates[m.Key]
	if !ok {
		return nil, false, at.with(m.Key).errorf(fmt.Sprintf("unknown or unsupported helper %q", m.Key))
	}
	arg, distinct := m.Value, false
	if arg.Kind == ordjson.Object {
		for _, o := range arg.Members {
			switch o.Key {
			case "$expr":
			case "$distinct":
				if o.Value.Kind != ordjson.Bool {
					return nil, false, at.with(m.Key).with("$distinct").errorf("must be true or false")
				}
				distinct = o.Value.Bool
			default:
				return nil, false, at.with(m.Key).with(o.Key).errorf(fmt.Sprintf("unknown option %q", o.Key))
			}
		}
		if arg = arg.Get("$expr"); arg == nil {
			return nil, false, at.with(m.Key).errorf("$expr is required")
		}
	}
	argAt := at.with(m.Key)
	if arg.Kind != ordjson.String {
		return nil, false, argAt.errorf("must name a column (or * for $count)")
	}
	var operand any
	switch name := strings.TrimPrefix(arg.Text, "~~"); {
	case name == "*" && fn == "COUNT" && !distinct:
		operand = goqu.Star()
	default:
		c, err := ref(t, name, argAt)
		if err != nil {
			return nil, false, err
		}
		operand = c
	}
	if distinct {
		return goqu.Func(fn, goqu.DISTINCT(operand)), true, nil
	}
	return goqu.Func(fn, operand), true, nil
}

// groupBy reads $groupBy: "col", ["col", ...] or {"col": true|false|1|0}.
func groupBy(t *Table, v *ordjson.Value, at path) ([]any, error) {
	var out []any
	add := func(name string, at path) error {
		c, err := ref(t, name, at)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}
	switch v.Kind {
	case ordjson.String:
		if err := add(v.Text, at); err != nil {
			return nil, err
		}
	case ordjson.Array:
		for i, item := range v.Items {
			if item.Kind != ordjson.String {
				return nil, at.with(fmt.Sprint(i)).errorf("must be a column name")
			}
			if err := add(item.Text, at.with(fmt.Sprint(i))); err != nil {
				return nil, err
			}
		}
	case ordjson.Object:
		for _, m := range v.Members {
			on, err := flag(m.Value, at.with(m.Key))
			if err != nil {
				return nil, err
			}
			if on {
				if err := add(m.Key, at.with(m.Key)); err != nil {
					return nil, err
				}
			}
		}
	default:
		return nil, at.errorf("must be a column name, an array or an object")
	}
	if len(out) == 0 {
		return nil, at.errorf("must name at least one column")
	}
	return out, nil
}

// flag reads true/false/1/0.
func flag(v *ordjson.Value, at path) (bool, error) {
	switch {
	case v.Kind == ordjson.Bool:
		return v.Bool, nil
	case v.Kind == ordjson.Number && (v.Text == "1" || v.Text == "0"):
		return v.Text == "1", nil
	}
	return false, at.errorf("must be true, false, 1 or 0")
}

// likePattern escapes the wildcards of a literal for LIKE, so that
// $startsWith "50%" means the text "50%", as the client plainly wrote it.
func likePattern(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
