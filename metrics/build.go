package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsource/eventsource/internal/buildinfo"
)

// registerBuildInfo adds eventsource_build_info, a gauge always 1 whose
// labels say which build runs: queries join on it to tell servers of
// different builds apart, as Prometheus' own prometheus_build_info.
func registerBuildInfo(reg *prometheus.Registry) {
	info := buildinfo.Read()
	revision := info.Revision
	if revision == "" {
		revision = "unknown"
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "eventsource_build_info", Help: "Always 1; the labels are the build's version (as eventsource version prints it), commit and Go version.",
	}, []string{"version", "revision", "go_version"})
	build.WithLabelValues(info.String(), revision, info.GoVersion).Set(1)
	reg.MustRegister(build)
}
