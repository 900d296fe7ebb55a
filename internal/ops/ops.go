// Package ops serves the operational endpoints: /healthz (alive) and
// /readyz (accepting work) on every listener, so load balancers can probe
// the public ports, and /metrics (Prometheus) and /debug/pprof/ only on a
// process's ops listener (--ops-addr, loopback by default): they have no
// authentication and must not be reachable from tenant networks.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
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

// Ready reports the flag; a nil Readiness is never ready.
func (r *Readiness) Ready() bool { return r != nil && r.ready.Load() }

// Checker tells whether /readyz answers ready: a Readiness, or the
// conjunction of a process's services.
type Checker interface{ Ready() bool }

// Mux is what the routes are added to: an http.ServeMux, or an adapter.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// RegisterHealth adds /healthz and /readyz, the only ops routes public
// listeners serve. A nil ready is never ready.
func RegisterHealth(mux Mux, ready Checker) {
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
}

// Register adds every ops route: health, /metrics of gatherer (nil: an
// empty registry) and the bounded /debug/pprof/ (see pprof.go). Only for
// an ops listener.
func Register(mux Mux, gatherer prometheus.Gatherer, ready Checker) {
	RegisterHealth(mux, ready)
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	registerPprof(mux, gatherer)
}

// Server serves every ops route on a listener it was given: the ops
// listener of a process (services/allinone), or of a service run on its
// own.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	shutdown sync.Once
}

// NewServer prepares the ops routes on ln; nil ln gives a Server whose
// methods do nothing.
func NewServer(ln net.Listener, reg prometheus.Gatherer, ready Checker) *Server {
	if ln == nil {
		return &Server{}
	}
	mux := http.NewServeMux()
	Register(mux, reg, ready)
	return &Server{srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// The longest answer is a profile of MaxProfileSeconds.
		WriteTimeout: (MaxProfileSeconds + 30) * time.Second,
		IdleTimeout:  2 * time.Minute,
	}, ln: ln}
}

// Addr is the bound address, or "" without a listener.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
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

// Shutdown stops Serve, waiting up to a second for scrapes in progress
// (a profile being taken is cut short), and closes the listener also when
// Serve never ran. Calls after the first do nothing.
func (s *Server) Shutdown(ctx context.Context) {
	if s.srv == nil {
		return
	}
	s.shutdown.Do(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close()
		}
		_ = s.ln.Close() // Serve closes it too; this is for a Serve that never ran
	})
}
