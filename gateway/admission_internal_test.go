package gateway

import "testing"

func TestSubjectKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		p      *Principal
		remote string
		want   string
	}{
		{"token subject", &Principal{Subject: "alice"}, "192.0.2.1:5000", "sub:alice"},
		{"anonymous", anonymousPrincipal, "192.0.2.1:5000", "addr:192.0.2.1"},
		{"token without subject", &Principal{}, "192.0.2.1:5001", "addr:192.0.2.1"},
		{"a subject that looks like an address", &Principal{Subject: "addr:192.0.2.1"}, "192.0.2.1:5000", "sub:addr:192.0.2.1"},
		{"IPv6: its /64", anonymousPrincipal, "[2001:db8:1:2:aaaa::1]:5000", "addr:2001:db8:1:2::/64"},
		{"IPv6, same /64", anonymousPrincipal, "[2001:db8:1:2:bbbb::9]:5000", "addr:2001:db8:1:2::/64"},
		{"IPv4-mapped", anonymousPrincipal, "[::ffff:192.0.2.1]:5000", "addr:192.0.2.1"},
		{"IPv6 with a zone", anonymousPrincipal, "[fe80::1%eth0]:5000", "addr:fe80::/64"},
		{"not an address", anonymousPrincipal, "pipe", "addr:pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := subjectKey(tc.p, tc.remote); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShareOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		share float64
		n     int
		want  int
	}{
		{0.25, 20, 5},
		{0.29, 100, 29}, // 0.29*100 is 28.999999999999996
		{0.9, 10000, 9000},
		{0.25, 2, 1}, // at least one
		{0.9, 1, 1},
		{1, 7, 7},
	} {
		if got := shareOf(tc.share, tc.n); got != tc.want {
			t.Errorf("shareOf(%v, %d) = %d, want %d", tc.share, tc.n, got, tc.want)
		}
	}
}
