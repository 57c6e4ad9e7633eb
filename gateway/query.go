package gateway

import (
	"errors"
	"net/http"

	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// scope is what p may read and write, for the builder: a token limited to
// some domains reads and writes only those rows of the event table,
// wherever its queries name it (joins, sub-selects, CTEs, set operations
// too), and no other table.
func (p *Principal) scope(table *sqlbuild.Table) sqlbuild.Scope {
	var s sqlbuild.Scope
	name := table.QualifiedName()
	if !p.read.all {
		s.ReadTables = []string{name}
		s.Read = map[string][]sqlbuild.RowFilter{name: {{Column: "domain", Values: p.read.domains}}}
	}
	if !p.write.all {
		s.WriteTables = []string{name}
		s.Write = map[string][]sqlbuild.RowFilter{name: {{Column: "domain", Values: p.write.domains}}}
	}
	return s
}

// filterScope is the scope of the events a filter matches: its domain, and
// its name and pid when it has them, each compared exactly, as live
// delivery compares them (filter.match).
func filterScope(table *sqlbuild.Table, f filter) sqlbuild.Scope {
	var rows []sqlbuild.RowFilter
	for _, c := range []struct{ column, value string }{{"domain", f.domain}, {"name", f.name}, {"pid", f.pid}} {
		if c.value != "" {
			rows = append(rows, sqlbuild.RowFilter{Column: c.column, Values: []string{c.value}})
		}
	}
	return sqlbuild.Scope{Read: map[string][]sqlbuild.RowFilter{table.QualifiedName(): rows}}
}

// decodeBody decodes a request body once, into the tree the builder
// translates, under the builder's limits (the Redis side's too). The body
// wraps a query or documents in one level more than a request's query.
func (g *Gateway) decodeBody(body []byte, what string) (*ordjson.Value, error) {
	lim := g.deps.Builder.Limits()
	v, err := ordjson.Decode(body, ordjson.Limits{MaxDepth: lim.MaxDepth + 1, MaxNodes: lim.MaxNodes + bodyEnvelope})
	if err != nil {
		return nil, badRequest("%s: %v", what, err)
	}
	return v, nil
}

// bodyEnvelope is how many JSON values a body may hold beyond a query's:
// a task's object, type and query member, or a POST /events body's object
// and its expect with three members.
const bodyEnvelope = 6

// queryError turns the builder's refusal into the client's error: 403 for
// a query outside the token's scope, 400 for any other refusal.
func queryError(err error) error {
	var qe *sqlbuild.QueryError
	switch {
	case errors.Is(err, sqlbuild.ErrForbidden) && errors.As(err, &qe):
		return newError(http.StatusForbidden, "forbidden", "%s", qe.Error())
	case errors.As(err, &qe):
		return badRequest("%s", qe.Error())
	}
	return err
}

// objectMembers checks that v is an object of only the allowed keys.
func objectMembers(v *ordjson.Value, what string, allowed ...string) error {
	if v.Kind != ordjson.Object {
		return badRequest("%s: must be an object, got %s", what, v.Kind)
	}
	for _, m := range v.Members {
		known := false
		for _, a := range allowed {
			known = known || m.Key == a
		}
		if !known {
			return badRequest("%s: unknown field %q", what, m.Key)
		}
	}
	return nil
}

// stringMember reads an optional string member.
func stringMember(v *ordjson.Value, key, what string) (string, error) {
	m := v.Get(key)
	if m == nil {
		return "", nil
	}
	if m.Kind != ordjson.String {
		return "", badRequest("%s: %q must be a string, got %s", what, key, m.Kind)
	}
	return m.Text, nil
}
