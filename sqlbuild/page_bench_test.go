package sqlbuild

import (
	"strconv"
	"testing"
)

// BenchmarkPageSQL is the CPU a stream's page costs before MySQL sees it:
// "next page" renders a later page of one select, "new query" translates a
// request of a shape seen before and renders its first page.
func BenchmarkPageSQL(b *testing.B) {
	bld := testBuilder(b)
	sel, err := bld.SelectJSON([]byte(`{"$select":{"$where":{"pid":"bench-pid","name":{"$ne":"deleted"}}}}`), Scope{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("next page", func(b *testing.B) {
		b.ReportAllocs()
		after := int64(0)
		for b.Loop() {
			after += 256
			if _, _, err := sel.PageSQL(Page{Snapshot: 1 << 40, After: after, Size: 256}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new query", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			q := []byte(`{"$select":{"$where":{"pid":"pid-` + strconv.Itoa(i) + `","name":{"$ne":"deleted"}}}}`)
			s, err := bld.SelectJSON(q, Scope{})
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := s.PageSQL(Page{Size: 256}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
