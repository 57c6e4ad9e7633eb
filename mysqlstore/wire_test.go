package mysqlstore_test

import (
	"fmt"
	"testing"

	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/sqlbuild"
)

// TestRowWireFormat pins the JSON a row's value is sent as, for each
// column type, on both reading paths (payloads, and values encoded after),
// with JSON columns as text and decoded. The wire format is fixed: a
// change here breaks clients.
func TestRowWireFormat(t *testing.T) {
	t.Parallel()
	db, name := mustDatabase(t)
	mustExec(t, db, "CREATE DATABASE `"+name+"`")
	tests := []struct {
		column string // its type
		value  any    // inserted
		want   string // as text
		json   string // decoded, if it differs
	}{
		{"TINYINT", 127, `127`, ""},
		{"INT", -42, `-42`, ""},
		{"INT", nil, `null`, ""},
		{"BIGINT", int64(9223372036854775807), `9223372036854775807`, ""},
		{"BIGINT UNSIGNED", uint64(42), `42`, ""},
		// Past int64 the driver hands over the digits: a string.
		{"BIGINT UNSIGNED", uint64(18446744073709551615), `"18446744073709551615"`, ""},
		{"YEAR", 2024, `2024`, ""},
		{"DOUBLE", 0.1, `0.1`, ""},
		{"DOUBLE", 1e-7, `1e-7`, ""},
		{"DOUBLE", 1e21, `1e+21`, ""},
		{"DOUBLE", -0.0, `0`, ""},
		{"FLOAT", 0.5, `0.5`, ""},
		{"DECIMAL(10,3)", "-12.345", `"-12.345"`, ""},
		{"DECIMAL(10,3)", "0", `"0.000"`, ""},
		{"VARCHAR(50)", "", `""`, ""},
		{"VARCHAR(50)", `quote " back \ slash`, `"quote \" back \\ slash"`, ""},
		{"TEXT", "line\nbreak\ttab\x01\x1f", `"line\nbreak\ttab\u0001\u001f"`, ""},
		{"TEXT", "ünïcödé ✓ 𝄞 <>&", `"ünïcödé ✓ 𝄞 <>&"`, ""},
		{"TEXT", "\u2028\u2029", "\"\u2028\u2029\"", ""},
		{"CHAR(3)", "é", `"é"`, ""},
		{"ENUM('x','y')", "y", `"y"`, ""},
		{"SET('a','b')", "a,b", `"a,b"`, ""},
		{"JSON", `{"a": [1, 2.5, "x\u00e9"], "b": null}`, `"{\"a\": [1, 2.5, \"x\\u00e9\"], \"b\": null}"`, `{"a": [1, 2.5, "x\u00e9"], "b": null}`},
		{"JSON", `"text"`, `"\"text\""`, `"text"`},
		{"JSON", nil, `null`, ""},
		{"VARBINARY(10)", []byte("ok"), `"ok"`, ""},
		{"VARBINARY(10)", []byte{0xff, 'a', 0xc3}, "\"\ufffda\ufffd\"", ""},
		{"BLOB", []byte("blob\""), `"blob\""`, ""},
		{"DATETIME", "2020-01-01 00:00:00", `"2020-01-01T00:00:00.000Z"`, ""},
		{"DATETIME(3)", "2020-04-06 11:35:18.414", `"2020-04-06T11:35:18.414Z"`, ""},
		{"DATETIME(6)", "2021-12-31 23:59:59.999999", `"2021-12-31T23:59:59.999999Z"`, ""},
		{"DATETIME(6)", "1970-01-01 00:00:01.000001", `"1970-01-01T00:00:01.000001Z"`, ""},
		{"DATE", "2020-02-29", `"2020-02-29T00:00:00.000Z"`, ""},
		{"TIME", "12:34:56", `"12:34:56"`, ""},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.column, tt.value), func(t *testing.T) {
			table := fmt.Sprintf("%s.t%d", name, i)
			mustExec(t, db, "CREATE TABLE "+table+" (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, v "+tt.column+" NULL)")
			mustExec(t, db, "INSERT INTO "+table+" (v) VALUES (?)", tt.value)
			b := mustBuilder(t, db, table)
			store := mysqlstore.Store{DB: db, Statements: mysqlstore.NewStatements(db, 4)}
			t.Cleanup(store.Statements.Close)
			sel, err := b.SelectJSON([]byte(`{"$select":{"v":1}}`), sqlbuild.Scope{})
			if err != nil {
				t.Fatal(err)
			}
			for _, decode := range []bool{false, true} {
				want := tt.want
				if decode && tt.json != "" {
					want = tt.json
				}
				want = `{"v":` + want + `}`
				page := sqlbuild.Page{Size: 10}
				payloads, err := store.ReadPayloads(testContext(t), sel, page, decode)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := store.ReadPage(testContext(t), sel, page, decode)
				if err != nil {
					t.Fatal(err)
				}
				if len(payloads.Payloads) != 1 || len(rows.Rows) != 1 {
					t.Fatalf("%d payloads, %d rows", len(payloads.Payloads), len(rows.Rows))
				}
				if got := string(payloads.Payloads[0]); got != want {
					t.Errorf("payload (decode %v): %s, want %s", decode, got, want)
				}
				if got := string(rows.Rows[0].AppendJSON(nil)); got != want {
					t.Errorf("row (decode %v): %s, want %s", decode, got, want)
				}
			}
		})
	}
}
