package sqlbuild

import (
	"encoding/json"
	"testing"
)

func BenchmarkInsertOneDocument(b *testing.B) {
	bld := testBuilder(&testing.T{})
	q := json.RawMessage(`{"$insert":{"$documents":{"pid":"bench-p-1","domain":"bench","name":"persisted","data":{"seq":12,"note":"a note of some length to be realistic here"}}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.Insert(q); err != nil {
			b.Fatal(err)
		}
	}
}
