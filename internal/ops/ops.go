// Package ops serves the operational endpoints every service exposes:
// /healthz (alive), /readyz (accepting work), /metrics (Prometheus) and
// /debug/pprof/.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

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

// Server serves the ops routes of a service that has no HTTP server of
// its own (writer, correlator) on a listener it was given.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// NewServer prepares the ops routes on ln; nil ln gives a Server whose
// methods do nothing.
func NewServer(ln net.Listener, reg *prometheus.Registry, ready *Readiness) *Server {
	if ln == nil {
		return &Server{}
	}
	mux := http.NewServeMux()
	Register(mux, reg, ready)
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
}

// Serve blocks until Shutdown; nil after a Shutdown.
func (s *Server) Serve() error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ops server: %w", err)
	}
	return nil
}

// Shutdown stops Serve, waiting up to a second for scrapes in progress.
func (s *Server) Shutdown(ctx context.Context) {
	if s.srv == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
}
