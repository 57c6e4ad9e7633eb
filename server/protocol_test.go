package server_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/server"
)

// The tests below read like the protocol: subscribe, request, expect what
// the server publishes, answer, expect again.

func TestPersistOneDocument(t *testing.T) {
	h := newHarness(t, nil)
	c := h.wire.subscribe(h.channel("persist"))
	h.persist(c.channel, `{"$insert":{"$documents":{"pid":"p1","domain":"test-domain","name":"test-event","data":{"foo":"bar","baz":"qux"}}}}`)
	c.expect(`{"fieldCount":0,"affectedRows":1,"insertId":1,"serverStatus":2,"warningCount":0,"message":"","protocol41":true,"changedRows":0}`)
	c.expect(`"end"`)

	var data string
	if err := h.db.QueryRow("SELECT data FROM `" + h.dbName + "`.event WHERE pid = 'p1'").Scan(&data); err != nil {
		t.Fatal(err)
	}
	if data != `{"foo":"bar","baz":"qux"}` {
		t.Fatalf("stored data %s", data)
	}
}

func TestPersistManyDocumentsAsOneInsert(t *testing.T) {
	h := newHarness(t, nil)
	c := h.wire.subscribe(h.channel("persist"))
	h.persist(c.channel, `{"$insert":{"$documents":[
		{"pid":"p","domain":"d","name":"a","data":{"n":1}},
		{"pid":"p","domain":"d","name":"b","data":"{\"text\": \"JSON as text\"}"},
		{"pid":"p","domain":"d","name":"c","data":[1,2,3]}]}}`)
	c.expect(`{"fieldCount":0,"affectedRows":3,"insertId":1,"serverStatus":2,"warningCount":0,"message":"&Records: 3  Duplicates: 0  Warnings: 0","protocol41":true,"changedRows":0}`)
	c.expect(`"end"`)

	f := h.wire.subscribe(h.channel("fetch"))
	h.fetch(f.channel, `{"$select":{"$columns":["name","data"],"$where":{"pid":"p"}}}`)
	for _, want := range []string{
		`{"name":"a","data":"{\"n\":1}"}`,
		`{"name":"b","data":"{\"text\": \"JSON as text\"}"}`,
		`{"name":"c","data":"[1,2,3]"}`,
	} {
		f.expect(want)
		f.accept()
	}
	f.expect(`"end"`)
}

var isoTimestamp = regexp.MustCompile(`^"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"$`)

func TestFetchRowsWithAcceptance(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("one", 1)
	h.persistEvents("many", 1000)

	t.Run("no rows", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("zero"))
		h.fetch(c.channel, `{"$select":{"$where":{"pid":"nobody"}}}`)
		c.expect(`"end"`)
	})
	t.Run("one row encoded like the original", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("one"))
		h.fetch(c.channel, `{"$select":{"$where":{"pid":"one"}}}`)
		row, ok := c.next(5 * time.Second)
		if !ok {
			t.Fatal("no row")
		}
		// {"timestamp":"…Z","pid":"one","domain":"d","name":"n0","data":"{\"i\":0}","id":1}
		parts := strings.SplitN(strings.TrimPrefix(row, "{"), ",", 2)
		if !isoTimestamp.MatchString(parts[0]) {
			t.Fatalf("timestamp field %s", parts[0])
		}
		if want := `"pid":"one","domain":"d","name":"n0","data":"{\"i\":0}","id":1}`; parts[1] != want {
			t.Fatalf("row rest\n got %s\nwant %s", parts[1], want)
		}
		c.expectSilence(100 * time.Millisecond) // nothing before "accepted"
		c.accept()
		c.expect(`"end"`)
	})
	t.Run("a thousand rows in order", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("many"))
		h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"many"}}}`)
		for i := range 1000 {
			c.expect(fmt.Sprintf(`{"name":"n%d"}`, i))
			c.accept()
		}
		c.expect(`"end"`)
	})
	t.Run("order, limit and offset", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("ordered"))
		h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"many","name":{"$like":"n99%"}},"$orderBy":{"name":-1},"$limit":3,"$offset":1}}`)
		for _, want := range []string{"n998", "n997", "n996"} {
			c.expect(`{"name":"` + want + `"}`)
			c.accept()
		}
		c.expect(`"end"`)
	})
	t.Run("decoded JSON is opt-in", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("decoded"))
		h.fetch(c.channel, `{"$select":{"$columns":["data"],"$where":{"pid":"one"}}}`, `"decode":true`)
		c.expect(`{"data":{"i":0}}`)
		c.accept()
		c.expect(`"end"`)
	})
}

func TestLegacyFetchNext(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("legacy", 3)
	c := h.wire.subscribe(h.channel("legacy"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"legacy"}}}`)
	for i := range 3 {
		c.expect(fmt.Sprintf(`{"name":"n%d"}`, i))
		h.publish(h.cfg.FetchNextChannel, map[string]string{"channel": c.channel})
	}
	c.expect(`"end"`)
}

func TestTimeoutWithoutAcceptance(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.AcceptTimeout = 200 * time.Millisecond })
	h.persistEvents("slow", 2)
	c := h.wire.subscribe(h.channel("slow"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"slow"}}}`)
	c.expect(`{"name":"n0"}`)
	c.expect(`"timeout"`)
	c.expectSilence(300 * time.Millisecond)
	waitForNoChildren(t, h)
}

func TestClientEndsMidStream(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("abort", 5)
	c := h.wire.subscribe(h.channel("abort"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"abort"}}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`{"name":"n1"}`)
	c.say(`"end"`)
	// The client's own "end" comes back to it; after that, nothing.
	c.expect(`"end"`)
	c.expectSilence(300 * time.Millisecond)
	waitForNoChildren(t, h)
}

func TestErrors(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, requestChannel, query, extra, want string
	}{
		{"invalid query", "fetch", `{"$select":{"$where":{"pid":{"$foo":1}}}}`, "", `"error"`},
		{"invalid query with reason", "fetch", `{"$select":{"$where":{"pid":{"$foo":1}}}}`, `"reason":true`,
			`{"error":"bad_request","message":"query.$select.$where.pid.$foo: unknown operator \"$foo\""}`},
		{"table not allowed", "fetch", `{"$select":{"$from":"mysql.user"}}`, `"reason":true`,
			`{"error":"bad_request","message":"query.$select.$from: table \"mysql.user\" is not allowed"}`},
		{"insert on fetch", "fetch", `{"$insert":{"$documents":{}}}`, "", `"error"`},
		{"query not an object", "fetch", `"SELECT 1"`, "", `"error"`},
		{"missing event field", "persist", `{"$insert":{"$documents":{"pid":"p","domain":"d","data":{}}}}`, `"reason":true`,
			`{"error":"bad_request","message":"query.$insert.$documents.name: must be a non-empty string"}`},
		{"select on persist", "persist", `{"$select":{}}`, "", `"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.wire.subscribe(h.channel("err"))
			rc := h.cfg.FetchChannel
			if tt.requestChannel == "persist" {
				rc = h.cfg.PersistChannel
			}
			var extra []string
			if tt.extra != "" {
				extra = append(extra, tt.extra)
			}
			h.request(rc, c.channel, tt.query, extra...)
			c.expect(tt.want)
			c.expectSilence(50 * time.Millisecond)
		})
	}
	t.Run("malformed JSON is logged, and the server goes on", func(t *testing.T) {
		h.publish(h.cfg.FetchChannel, `{"channel":`)
		h.publish(h.cfg.FetchChannel, `[]`)
		h.publish(h.cfg.PersistChannel, `{"query":{}}`)
		h.persistEvents("after-garbage", 1)
	})
}

func TestDatabaseFailureEndsOnlyThatStream(t *testing.T) {
	h := newDatabase(t)
	if _, err := h.db.Exec("CREATE TABLE `" + h.dbName + "`.doomed LIKE `" + h.dbName + "`.event"); err != nil {
		t.Fatal(err)
	}
	h.start(func(cfg *server.Config) { cfg.Tables = append(cfg.Tables, h.dbName+".doomed") })
	h.persistEvents("survivor", 2)

	survivor := h.wire.subscribe(h.channel("survivor"))
	h.fetch(survivor.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"survivor"}}}`)
	survivor.expect(`{"name":"n0"}`)

	if _, err := h.db.Exec("DROP TABLE `" + h.dbName + "`.doomed"); err != nil {
		t.Fatal(err)
	}
	doomed := h.wire.subscribe(h.channel("doomed"))
	h.fetch(doomed.channel, `{"$select":{"$from":"doomed"}}`, `"reason":true`)
	doomed.expect(`{"error":"db","message":"the database failed to run the query"}`)

	survivor.accept()
	survivor.expect(`{"name":"n1"}`)
	survivor.accept()
	survivor.expect(`"end"`)
}

func TestRefusedChannels(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("busy", 2)

	t.Run("a request channel as response channel", func(t *testing.T) {
		// Answering there would look like a request: the server only logs.
		h.fetch(h.cfg.PersistChannel, `{"$select":{}}`)
		h.fetch(h.cfg.FetchChannel, `{"$select":{}}`)
		h.persistEvents("still-serving", 1)
	})
	t.Run("a channel held by an active stream", func(t *testing.T) {
		c := h.wire.subscribe(h.channel("busy"))
		h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"busy"}}}`)
		c.expect(`{"name":"n0"}`)
		// A second request on the same channel is refused without a word
		// on it: the first stream's client must not hear an "error".
		h.fetch(c.channel, `{"$select":{}}`)
		h.persist(c.channel, `{"$insert":{"$documents":{"pid":"x","domain":"d","name":"n","data":1}}}`)
		c.expectSilence(100 * time.Millisecond)
		c.accept()
		c.expect(`{"name":"n1"}`)
		c.accept()
		c.expect(`"end"`)
	})
}

func TestAdmissionLimit(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.MaxStreams = 2 })
	h.persistEvents("held", 1)
	// The persist's reply leaves before the router has let it go.
	waitForNoChildren(t, h)
	held := []*sub{h.wire.subscribe(h.channel("held")), h.wire.subscribe(h.channel("held"))}
	for _, c := range held {
		h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"held"}}}`)
		c.expect(`{"name":"n0"}`)
	}
	over := h.wire.subscribe(h.channel("over"))
	h.fetch(over.channel, `{"$select":{}}`, `"reason":true`)
	over.expect(`{"error":"refused","message":"too many concurrent streams"}`)
	for _, c := range held {
		c.accept()
		c.expect(`"end"`)
	}
}

func TestTableWithoutID(t *testing.T) {
	h := newDatabase(t)
	// The original schema: five columns, no id.
	if _, err := h.db.Exec("CREATE TABLE `" + h.dbName + "`.legacy (`timestamp` DATETIME(6) NOT NULL DEFAULT NOW(6), `pid` VARCHAR(200) NOT NULL, `domain` VARCHAR(200) NOT NULL, `name` VARCHAR(200) NOT NULL, `data` JSON NOT NULL, KEY (`pid`))"); err != nil {
		t.Fatal(err)
	}
	h.start(func(cfg *server.Config) { cfg.Tables = []string{h.dbName + ".legacy"} })
	c := h.wire.subscribe(h.channel("legacy"))
	h.persist(c.channel, `{"$insert":{"$documents":[{"pid":"p","domain":"d","name":"a","data":{}},{"pid":"p","domain":"d","name":"b","data":{}}]}}`)
	reply := c.expectObject()
	if reply["affectedRows"] != float64(2) || reply["insertId"] != float64(0) {
		t.Fatalf("reply %v", reply)
	}
	c.expect(`"end"`)
	f := h.wire.subscribe(h.channel("legacy-fetch"))
	h.fetch(f.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"p"}}}`)
	f.expect(`{"name":"a"}`)
	f.accept()
	f.expect(`{"name":"b"}`)
	f.accept()
	f.expect(`"end"`)
}

func TestRowsPersistedDuringAStreamStayOut(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.PageSize = 2 })
	h.persistEvents("snap", 3)
	c := h.wire.subscribe(h.channel("snap"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"snap"}}}`)
	c.expect(`{"name":"n0"}`)
	h.persistEvents("snap", 2) // n0, n1 again, with higher ids
	for _, want := range []string{"n1", "n2"} {
		c.accept()
		c.expect(`{"name":"` + want + `"}`)
	}
	c.accept()
	c.expect(`"end"`)
}

func TestDecodedRowKeepsColumnOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("order", 1)
	c := h.wire.subscribe(h.channel("order"))
	h.fetch(c.channel, `{"$select":{"$columns":["name","pid","id","domain"],"$where":{"pid":"order"}}}`)
	row, _ := c.next(5 * time.Second)
	dec := json.NewDecoder(strings.NewReader(row))
	var keys []string
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
	if strings.Join(keys, ",") != "name,pid,id,domain" {
		t.Fatalf("keys %v in %s", keys, row)
	}
}

func TestCreditWindow(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("w", 5)
	c := h.wire.subscribe(h.channel("window"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"w"}}}`, `"window":3`)
	for _, want := range []string{"n0", "n1", "n2"} {
		c.expect(`{"name":"` + want + `"}`)
	}
	c.expectSilence(100 * time.Millisecond) // the window is full
	c.accept()
	c.expect(`{"name":"n3"}`)
	c.accept()
	c.expect(`{"name":"n4"}`)
	c.accept()
	c.accept()
	c.expectSilence(50 * time.Millisecond) // one row still unaccepted
	c.accept()
	c.expect(`"end"`)
}

func TestGroupedQueryOverRedis(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("g1", 3)
	h.persistEvents("g2", 2)
	c := h.wire.subscribe(h.channel("grouped"))
	h.fetch(c.channel, `{"$select":{"pid":1,"n":{"$count":"*"},"$where":{"name":{"$startsWith":"n"}},"$groupBy":"pid","$having":{"n":{"$gte":2}},"$orderBy":{"n":-1}}}`)
	c.expect(`{"pid":"g1","n":3}`)
	c.accept()
	c.expect(`{"pid":"g2","n":2}`)
	c.accept()
	c.expect(`"end"`)
}

// A request over the size limit gets an error on its channel, whether or
// not it would fit the subscriber's buffer, and the server goes on.
func TestOversizedRequests(t *testing.T) {
	h := newHarness(t, nil)
	h.persistEvents("after-big", 1)
	for _, size := range []int{h.cfg.Request.MaxBytes, 8 * h.cfg.Request.MaxBytes} {
		for _, requestChannel := range []string{h.cfg.FetchChannel, h.cfg.PersistChannel} {
			// The harness fails the whole test: no subtests.
			c := h.wire.subscribe(h.channel(fmt.Sprintf("big-%s-%d", requestChannel, size)))
			h.publish(requestChannel, `{"channel":`+quote(c.channel)+`,"reason":true,"query":{"$select":{"$where":{"pid":"`+strings.Repeat("p", size)+`"}}}}`)
			c.expect(fmt.Sprintf(`{"error":"bad_request","message":"request exceeds %d bytes: bad request"}`, h.cfg.Request.MaxBytes))
		}
	}
	c := h.wire.subscribe(h.channel("after"))
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"after-big"}}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`"end"`)
}

// The query limits come from the configuration.
func TestConfiguredQueryLimits(t *testing.T) {
	h := newHarness(t, func(cfg *server.Config) { cfg.Query.MaxIn, cfg.Query.MaxLimit = 2, 10 })
	tests := []struct{ name, query, want string }{
		{"a list longer than --max-in", `{"$select":{"$where":{"pid":{"$in":["a","b","c"]}}}}`,
			`{"error":"bad_request","message":"query.$select.$where.pid.$in: has 3 values, more than the limit of 2"}`},
		{"a $limit over --max-limit", `{"$select":{"$limit":11}}`,
			`{"error":"bad_request","message":"query.$select.$limit: 11 exceeds the limit of 10"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.wire.subscribe(h.channel("limits"))
			h.request(h.cfg.FetchChannel, c.channel, tt.query, `"reason":true`)
			c.expect(tt.want)
		})
	}
}

// The whole query syntax goes through the protocol: joins, sub-selects,
// set operations, CTEs, functions and JSON paths stream like any fetch,
// one accepted row at a time; so does an insert written as $columns and
// $records.
func TestRichQueriesOverTheProtocol(t *testing.T) {
	h := newHarness(t, nil)
	table := h.dbName + ".event"
	ch := h.channel("records")
	sub := h.wire.subscribe(ch)
	h.persist(ch, `{"$insert":{"$columns":["pid","domain","name","data"],"$records":[{"$values":["rich","d","created",{"total":5}]},{"$values":["rich","d","paid",{"total":5}]},{"$values":["other","d","created",{"total":9}]}]}}`)
	if got := sub.expectObject()["affectedRows"]; got != float64(3) {
		t.Fatalf("affectedRows = %v, want 3", got)
	}
	sub.expect(`"end"`)
	sub.close()
	tests := []struct {
		name, query string
		rows        []string
	}{
		{"a join", `{"$select":{"$columns":{"c.pid":true,"p.name":"paid"},"$from":{"` + table + `":"c"},"$join":{"p":{"$innerJoin":{"$table":"` + table + `","$on":{"p.pid":"~~c.pid","p.name":"paid"}}}},"$where":{"c.name":"created"}}}`,
			[]string{`{"pid":"rich","paid":"paid"}`}},
		{"a sub-select", `{"$select":{"$columns":["pid","name"],"$where":{"pid":{"$nin":{"$select":{"pid":1,"$where":{"name":"paid"}}}},"domain":"d"}}}`,
			[]string{`{"pid":"other","name":"created"}`}},
		{"a union with an order", `{"$union":{"$distinct":[{"$select":{"pid":1,"$where":{"name":"paid"}}},{"$select":{"pid":1,"$where":{"pid":"other"}}}],"$orderBy":{"pid":-1}}}`,
			[]string{`{"pid":"rich"}`, `{"pid":"other"}`}},
		{"a CTE and a function", `{"$with":{"paid":{"$select":{"pid":1,"$where":{"name":"paid"}}},"$query":{"$select":{"label":{"$concat":["~~pid","!"]},"$from":"paid"}}}}`,
			[]string{`{"label":"rich!"}`}},
		{"a JSON path", `{"$select":{"pid":1,"data->$.total":"total","$where":{"data->$.total":{"$gt":6}}}}`,
			[]string{`{"pid":"other","total":"9"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.wire.subscribe(h.channel("rich"))
			h.request(h.cfg.FetchChannel, c.channel, tt.query, `"reason":true`)
			for _, row := range tt.rows {
				c.expect(row)
				c.accept()
			}
			c.expect(`"end"`)
		})
	}
}

// A table configured writable takes upserts over the protocol; the event
// table stays append-only.
func TestUpsertIntoAWritableTable(t *testing.T) {
	h := newDatabase(t)
	if _, err := h.db.Exec("CREATE TABLE `" + h.dbName + "`.counter (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, hits INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	counter := h.dbName + ".counter"
	h.start(func(cfg *server.Config) {
		cfg.Tables = append(cfg.Tables, counter)
		cfg.WritableTables = []string{counter}
	})
	upsert := `{"$insert":{"$table":"` + counter + `","$documents":{"name":"home","hits":1},"$onDuplicateKeyUpdate":{"hits":5}}}`
	for _, wantAffected := range []float64{1, 2} { // MySQL counts an updated row twice
		ch := h.channel("upsert")
		sub := h.wire.subscribe(ch)
		h.persist(ch, upsert)
		if got := sub.expectObject()["affectedRows"]; got != wantAffected {
			t.Fatalf("affectedRows = %v, want %v", got, wantAffected)
		}
		sub.expect(`"end"`)
		sub.close()
	}
	c := h.wire.subscribe(h.channel("read"))
	h.fetch(c.channel, `{"$select":{"$columns":["name","hits"],"$from":"`+counter+`"}}`)
	c.expect(`{"name":"home","hits":5}`)
	c.accept()
	c.expect(`"end"`)

	refused := h.wire.subscribe(h.channel("refused"))
	h.request(h.cfg.PersistChannel, refused.channel, `{"$insert":{"$documents":{"pid":"p","domain":"d","name":"n","data":1},"$onDuplicateKeyUpdate":{"name":"m"}}}`, `"reason":true`)
	refused.expect(`{"error":"bad_request","message":"query.$insert.$onDuplicateKeyUpdate: refused: ` + h.dbName + `.event is append-only (see --writable-tables)"}`)
}

// A client may reuse its channel as soon as it heard the terminal, as the
// README's walkthrough does: the claim's end was announced before the new
// request, so the new request takes the channel's tombstone over.
func TestChannelReusedAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	c := h.wire.subscribe(h.channel("reused"))
	for i := range 3 {
		h.persist(c.channel, `{"$insert":{"$documents":{"pid":"reused","domain":"d","name":"n`+strconv.Itoa(i)+`","data":{}}}}`)
		c.expectObject()
		c.expect(`"end"`)
	}
	h.fetch(c.channel, `{"$select":{"$columns":["name"],"$where":{"pid":"reused"},"$limit":1}}`)
	c.expect(`{"name":"n0"}`)
	c.accept()
	c.expect(`"end"`)
}
