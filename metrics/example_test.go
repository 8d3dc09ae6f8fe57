package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"party"
	"party/metrics"
)

// A Host's counters served at /metrics, beside its rooms.
func ExampleNewCollector() {
	h := party.Handler(func(r *party.Room) party.Server { return struct{}{} })
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(h))

	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	http.ListenAndServe(":8080", mux)
}
