package sqlbuild

import (
	"fmt"
	"strings"

	"github.com/eventsource/eventsource/ordjson"
)

// Followable reports why a built select cannot be followed (nil: it can):
// a followed stream reads the rows of one table in key order, up to a
// frontier that moves as commits settle, so only a $select of one table
// with $columns, $where, and no order but its key ascending qualifies.
// query is the select's query, sel what Select built of it.
func Followable(query *ordjson.Value, sel *Select) error {
	body, at, err := statementBody(query, path{"query"}, "$select")
	if err != nil {
		return err
	}
	for _, m := range body.Members {
		mAt := at.with(m.Key)
		switch m.Key {
		case "$from", "$table":
			if m.Value.Kind != ordjson.String {
				return mAt.errorf("cannot be followed: a followed query reads one table, named")
			}
		case "$columns", "$where":
		case "$orderBy":
			if !orderedByKey(m.Value, sel.Table.Key) {
				return mAt.errorf(fmt.Sprintf("cannot be followed: a followed query comes in %s order, ascending", sel.Table.Key))
			}
		default:
			return mAt.errorf("cannot be followed: a followed query is a $select of one table with $columns and $where")
		}
	}
	switch {
	case sel.Table.Key == "":
		return at.errorf(fmt.Sprintf("cannot be followed: %s has no AUTO_INCREMENT key to follow", sel.Table.QualifiedName()))
	case sel.Whole:
		return at.errorf("cannot be followed: sub-selects, aggregates and $distinct in $columns or $where are not rows of the table")
	}
	return nil
}

// orderedByKey reports whether an $orderBy is the key ascending alone:
// "id", ["id"], {"id": true | 1 | "ASC"}.
func orderedByKey(v *ordjson.Value, key string) bool {
	switch v.Kind {
	case ordjson.String:
		return v.Text == key
	case ordjson.Array:
		return len(v.Items) == 1 && orderedByKey(v.Items[0], key)
	case ordjson.Object:
		if len(v.Members) != 1 || v.Members[0].Key != key {
			return false
		}
		d := v.Members[0].Value
		return (d.Kind == ordjson.Bool && d.Bool) || (d.Kind == ordjson.Number && d.Text == "1") ||
			(d.Kind == ordjson.String && strings.EqualFold(d.Text, "asc"))
	}
	return false
}
