package gateway

import (
	"github.com/eventsource/eventsource/ordjson"
)

// restrictToDomains rewrites a fetch query for a token that may read only
// some domains: it must read the event table, and its $where is AND-ed
// with "domain IN (readable)". The builder then checks the rest.
func (g *Gateway) restrictToDomains(query []byte, domains []string) ([]byte, error) {
	if len(domains) == 0 {
		return nil, forbidden("the token may read no domain")
	}
	v, err := ordjson.Decode(query, ordjson.Limits{MaxDepth: 32, MaxNodes: 10000})
	if err != nil {
		return nil, badRequest("query: %v", err)
	}
	body := v.Get("$select")
	if v.Kind != ordjson.Object || len(v.Members) != 1 || body == nil || body.Kind != ordjson.Object {
		return nil, badRequest("query: must be {\"$select\": {...}}")
	}
	if from := body.Get("$from"); from != nil {
		if from.Kind != ordjson.String || g.deps.Builder.Catalog().Lookup(from.Text) != g.table {
			return nil, forbidden("query.$select.$from: a token limited to some domains reads only %s", g.table.QualifiedName())
		}
	}
	in := &ordjson.Value{Kind: ordjson.Array}
	for _, d := range domains {
		in.Items = append(in.Items, &ordjson.Value{Kind: ordjson.String, Text: d})
	}
	clause := &ordjson.Value{Kind: ordjson.Object, Members: []ordjson.Member{
		{Key: "domain", Value: &ordjson.Value{Kind: ordjson.Object, Members: []ordjson.Member{{Key: "$in", Value: in}}}},
	}}
	members := make([]ordjson.Member, 0, len(body.Members)+1)
	found := false
	for _, m := range body.Members {
		if m.Key == "$where" {
			found = true
			m.Value = &ordjson.Value{Kind: ordjson.Object, Members: []ordjson.Member{
				{Key: "$and", Value: &ordjson.Value{Kind: ordjson.Array, Items: []*ordjson.Value{m.Value, clause}}},
			}}
		}
		members = append(members, m)
	}
	if !found {
		members = append(members, ordjson.Member{Key: "$where", Value: clause})
	}
	out := &ordjson.Value{Kind: ordjson.Object, Members: []ordjson.Member{
		{Key: "$select", Value: &ordjson.Value{Kind: ordjson.Object, Members: members}},
	}}
	return out.AppendJSON(nil), nil
}
