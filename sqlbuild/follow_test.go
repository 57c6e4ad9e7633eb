package sqlbuild

import (
	"strings"
	"testing"

	"github.com/eventsource/eventsource/ordjson"
)

func TestFollowable(t *testing.T) {
	b := testBuilder(t)
	for _, tt := range []struct {
		query string
		part  string // "" when it can be followed
	}{
		{`{"$select":{}}`, ""},
		{`{"$select":{"$columns":["id","name"],"$where":{"domain":"d","pid":{"$in":["a","b"]}}}}`, ""},
		{`{"$select":{"$from":"event","$orderBy":"id"}}`, ""},
		{`{"$select":{"$orderBy":{"id":"ASC"}}}`, ""},
		{`{"$select":{"$orderBy":{"id":-1}}}`, "$orderBy"},
		{`{"$select":{"$orderBy":"name"}}`, "$orderBy"},
		{`{"$select":{"$limit":5}}`, "$limit"},
		{`{"$select":{"$offset":5}}`, "$offset"},
		{`{"$select":{"$distinct":true,"$columns":["name"]}}`, "$distinct"},
		{`{"$select":{"$columns":["name"],"$groupBy":"name"}}`, "$groupBy"},
		{`{"$select":{"$columns":{"n":{"$count":"*"}}}}`, "aggregates"},
		{`{"$select":{"$join":{"e2":{"$innerJoin":{"$table":"event","$on":{"e2.id":"event.id"}}}}}}`, "$join"},
		{`{"$select":{"$where":{"pid":{"$in":{"$select":{"pid":true,"$from":"event"}}}}}}`, "sub-selects"},
		{`{"$select":{"$from":"old.event"}}`, "no AUTO_INCREMENT key"},
	} {
		q, err := ordjson.Decode([]byte(tt.query), ordjson.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		sel, err := b.Select(q, Scope{})
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		err = Followable(q, sel)
		switch {
		case tt.part == "" && err != nil:
			t.Errorf("%s: %v, want it followable", tt.query, err)
		case tt.part != "" && (err == nil || !strings.Contains(err.Error(), tt.part)):
			t.Errorf("%s: %v, want a refusal naming %s", tt.query, err, tt.part)
		}
	}
}
