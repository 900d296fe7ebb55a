package api

import (
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

type metrics struct {
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec

	// Expensive reads (read_limits.go), by route class.
	expensiveRejected *prometheus.CounterVec
	expensiveInFlight *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aftertrace_api_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status code.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_api_rejected_total",
			Help: "API requests answered with an error, by reason (the error code: invalid_argument, too_large, timeout, unauthenticated, ...).",
		}, []string{"reason"}),
		expensiveRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_api_expensive_reads_rejected_total",
			Help: "Expensive reads answered 429 because their tenant had its most expensive reads in flight, by route class (rca, search, timeline, bundle).",
		}, []string{"class"}),
		expensiveInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aftertrace_api_expensive_reads_in_flight",
			Help: "Expensive reads being answered (all tenants), by route class.",
		}, []string{"class"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.rejected, m.expensiveRejected, m.expensiveInFlight}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	cs := m.collectors()
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return errors.Join(errors.New("api: registering metrics"), err)
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

// routeUnmatched labels requests no route matched, so that arbitrary paths
// cannot create label values.
const routeUnmatched = "unmatched"

// observe records the duration of every request by its route pattern, and
// echoes the request id.
func (s *Service) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if id := middleware.GetReqID(r.Context()); id != "" {
			w.Header().Set(middleware.RequestIDHeader, id)
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			route := routeUnmatched
			if rc := chi.RouteContext(r.Context()); rc != nil {
				if p := rc.RoutePattern(); p != "" && !isCatchAllOf(p, "/api/v1") && !isCatchAllOf(p, "/admin/v1") {
					route = p
				}
			}
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.duration.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(code)).
				Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

// isCatchAllOf reports a pattern that only says which subrouter a request
// reached ("/api/v1/*"), not which route.
func isCatchAllOf(pattern, prefix string) bool { return pattern == prefix+"/*" }

// methodLabel keeps the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// recoverJSON turns a panic in a handler into a logged internal error with
// the JSON error body (chi's Recoverer, further out, stays as the backstop
// for the middlewares in between and answers without a body).
func (s *Service) recoverJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(rec)
			}
			s.log.ErrorContext(r.Context(), "api handler panicked",
				"method", r.Method, "path", r.URL.Path,
				"request_id", middleware.GetReqID(r.Context()),
				"panic", rec, "stack", string(debug.Stack()))
			apperr.WriteHTTP(w, apperr.New(apperr.KindInternal, "internal error"))
		}()
		next.ServeHTTP(w, r)
	})
}
