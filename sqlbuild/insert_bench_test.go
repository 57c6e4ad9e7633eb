package sqlbuild

import (
	"encoding/json"
	"testing"
)

var benchDocument = json.RawMessage(`{"$insert":{"$documents":{"pid":"bench-p-1","domain":"bench","name":"persisted","data":{"seq":12,"note":"a note of some length to be realistic here"}}}}`)

func BenchmarkInsertOneDocument(b *testing.B) {
	bld := testBuilder(&testing.T{})
	b.ReportAllocs()
	for b.Loop() {
		ins, err := bld.InsertJSON(benchDocument, Scope{})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ins.SQL(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchOf20 is what a batch of 20 one-document persists costs the
// server's CPU: each request translated, then one combined INSERT.
func BenchmarkBatchOf20(b *testing.B) {
	bld := testBuilder(&testing.T{})
	inserts := make([]*Insert, 20)
	b.ReportAllocs()
	for b.Loop() {
		for i := range inserts {
			ins, err := bld.InsertJSON(benchDocument, Scope{})
			if err != nil {
				b.Fatal(err)
			}
			inserts[i] = ins
		}
		combined, err := Combine(inserts...)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := combined.SQL(); err != nil {
			b.Fatal(err)
		}
	}
}
