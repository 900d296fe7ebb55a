// Package ops serves the operational endpoints every service exposes:
// /healthz (alive), /readyz (accepting work), /metrics (Prometheus) and
// /debug/pprof/.
package ops

import (
	"net/http"
	"net/http/pprof"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is a flag a service flips: ready once started, not ready as
// soon as shutdown begins so load balancers stop sending work first.
type Readiness struct{ ready atomic.Bool }

// Set marks the service ready or not.
func (r *Readiness) Set(ready bool) { r.ready.Store(ready) }

// Ready reports the flag.
func (r *Readiness) Ready() bool { return r.ready.Load() }

// Register adds the operational routes to mux. gatherer may be nil.
func Register(mux interface {
	Handle(pattern string, h http.Handler)
}, gatherer prometheus.Gatherer, ready *Readiness) {
	mux.Handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	mux.Handle("/readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if ready == nil || !ready.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
	mux.Handle("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	mux.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	mux.Handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	mux.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}

// Routes lists the paths Register adds, for route-coverage tests.
var Routes = []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"}
