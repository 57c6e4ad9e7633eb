package messages

import (
	"strings"
	"testing"
)

func TestCommittedRoundTrip(t *testing.T) {
	c := Committed{Table: "eventsource.event", Ranges: [][2]int64{{12, 14}, {20, 20}}}
	if got := string(c.Encode()); got != `{"table":"eventsource.event","ranges":[[12,14],[20,20]]}` {
		t.Fatalf("encoded %s", got)
	}
	back, err := DecodeCommitted(c.Encode())
	if err != nil || back.Table != c.Table || len(back.Ranges) != 2 || back.Count() != 4 {
		t.Fatalf("decoded %+v %v", back, err)
	}
}

func TestDecodeCommittedRefuses(t *testing.T) {
	for _, tc := range []struct{ payload, msg string }{
		{`"end"`, "decode commit notification"},
		{`{"ranges":[[1,2]]}`, "names no table"},
		{`{"table":"t","ranges":[]}`, "names no ids"},
		{`{"table":"t","uncertain":true,"ranges":[[1,2]]}`, "uncertain commit notification names ids"},
		{`{"table":"t","ranges":[[0,2]]}`, "not a range of ids"},
		{`{"table":"t","ranges":[[5,2]]}`, "not a range of ids"},
		{`{"table":"t","ranges":[` + strings.Repeat(`[1,1],`, MaxCommittedRanges) + `[1,1]]}`, "more than"},
	} {
		if _, err := DecodeCommitted([]byte(tc.payload)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%.40s: %v, want %q", tc.payload, err, tc.msg)
		}
	}
}

func TestUncertainCommitted(t *testing.T) {
	c := Committed{Table: "eventsource.event", Uncertain: true}
	if got := string(c.Encode()); got != `{"table":"eventsource.event","uncertain":true}` {
		t.Fatalf("encoded %s", got)
	}
	back, err := DecodeCommitted(c.Encode())
	if err != nil || !back.Uncertain || back.Table != c.Table || back.Count() != 0 {
		t.Fatalf("decoded %+v %v", back, err)
	}
}
