package metrics

import (
	"testing"

	"github.com/eventsource/eventsource/internal/buildinfo"
)

func TestBuildInfo(t *testing.T) {
	t.Parallel()
	families, err := New().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	info := buildinfo.Read()
	want := map[string]string{"version": info.String(), "revision": info.Revision, "go_version": info.GoVersion}
	if want["revision"] == "" {
		want["revision"] = "unknown"
	}
	for _, f := range families {
		if f.GetName() != "eventsource_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("eventsource_build_info has %d series, want 1", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		if v := m.GetGauge().GetValue(); v != 1 {
			t.Errorf("eventsource_build_info = %v, want 1", v)
		}
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			t.Errorf("labels %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("label %s = %q, want %q", k, got[k], v)
			}
		}
		return
	}
	t.Fatal("no eventsource_build_info")
}
