// Package api is the HTTP query API: traces by id, trace search and the
// service list, read from ClickHouse for the tenant of the request's API
// key. The routes are described by api/openapi.yaml.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/prometheus/prometheus/promql"

	"github.com/aftertrace/aftertrace/internal/ops"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/services/api/ui"
)

// Store reads traces; implemented by *chstore.Store.
type Store interface {
	// GetTraceLimited returns the spans of one trace, each once, by start
	// time, at most maxSpans, and whether the trace has more; an unknown
	// trace is an apperr KindNotFound.
	GetTraceLimited(ctx context.Context, tenantID string, traceID [16]byte, maxSpans int) ([]chstore.Span, bool, error)
	// SearchTraces returns up to q.Limit summaries, newest first by trace
	// start (ties by trace id, descending), after q.Cursor if set.
	SearchTraces(ctx context.Context, q chstore.TraceQuery) ([]chstore.TraceSummary, error)
	// ListServices returns the services seen from start to end, by name.
	ListServices(ctx context.Context, tenantID string, start, end time.Time) ([]chstore.ServiceSummary, error)
	// SearchLogs returns up to q.Limit log records, newest first (ties by
	// record id, descending), each once, after q.Cursor if set.
	SearchLogs(ctx context.Context, q chstore.LogQuery) ([]chstore.LogRecord, error)
	// MetricNames returns the metrics seen from start to end, by name.
	MetricNames(ctx context.Context, tenantID string, start, end time.Time) ([]chstore.MetricName, error)
	// MetricSeries returns the points of one metric per series, each once.
	MetricSeries(ctx context.Context, q chstore.SeriesQuery) ([]chstore.MetricSeries, error)
	// MetricExemplars returns up to limit exemplars of one metric, newest first.
	MetricExemplars(ctx context.Context, tenantID, name string, start, end time.Time, limit int) ([]chstore.MetricExemplar, error)
}

var _ Store = (*chstore.Store)(nil)

// Deps are the collaborators of the API.
type Deps struct {
	Logger   *slog.Logger         // nil: discard
	Store    Store                // required
	Auth     authn.Authenticator  // required
	Registry *prometheus.Registry // metrics are registered and served here; nil: a private registry

	// Admin, with AdminKey, serves /admin/v1 (tenants and API keys) to
	// requests bearing AdminKey; without both the routes do not exist (404).
	Admin    Admin
	AdminKey string

	// RCA serves POST /api/v1/rca; nil answers 503.
	RCA RCA
	// IncidentRootCauses (with RCA) serves GET
	// /api/v1/incidents/{id}/root-causes; nil answers 503.
	IncidentRootCauses IncidentRootCauseStore

	// Events serves GET /api/v1/events, /containers/{containerId} (and its
	// timeline) and /pods/{podUid}; nil answers 503.
	Events EventStore

	// Retention serves /api/v1/retention, /holds, /capture-rules and
	// /evidence; nil answers 503.
	Retention Retention

	// Correlations serves GET /events/{eventId}, its impact and
	// GET /traces/{traceId}/events; BusinessTransactions and Incidents serve
	// their routes. Nil answers 503.
	Correlations         Correlations
	BusinessTransactions BusinessTransactions
	Incidents            Incidents

	// IncidentRules serves GET/PUT /api/v1/incident-rules (nil answers
	// 503); IncidentRuleDefaults is what GET shows for a tenant without
	// rules of its own (the correlator's configured rule).
	IncidentRules        IncidentRuleStore
	IncidentRuleDefaults pgstore.IncidentRules
}

// Service is the query API server. Create it with New, then call Run (or
// Close to release the listener without serving).
type Service struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	reg     *prometheus.Registry
	metrics *metrics
	slots   *tenantSlots // expensive reads in flight per tenant
	reads   *tenantReads // each tenant's share of ClickHouse
	ready   ops.Readiness
	router  *chi.Mux
	prom    *promql.Engine // the Prometheus query API's

	srv *http.Server
	ln  net.Listener

	// baseCtx is the parent of every request context; cancelled when the
	// drain gives up, so queries still running are abandoned.
	baseCtx    context.Context
	baseCancel context.CancelFunc

	state atomic.Int32 // stateNew → stateRunning | stateClosed
}

const (
	stateNew int32 = iota
	stateRunning
	stateClosed
)

// HTTP server timeouts: requests are small GETs; answers may take up to the
// store's query timeout, so there is no write timeout.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// New validates cfg and deps, builds the routes and binds the listener, so
// Addr is known (also for port 0) before Run.
func New(cfg Config, deps Deps) (*Service, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.Store == nil {
		errs = append(errs, errors.New("api: Deps.Store is required"))
	}
	if deps.Auth == nil {
		errs = append(errs, errors.New("api: Deps.Auth is required"))
	}
	if deps.AdminKey != "" && deps.Admin == nil {
		errs = append(errs, errors.New("api: Deps.Admin is required with an admin key"))
	}
	if deps.AdminKey != "" && len(deps.AdminKey) < MinAdminKeyLen {
		errs = append(errs, fmt.Errorf("api: the admin key must be at least %d characters", MinAdminKeyLen))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLS.Server()
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		log:     deps.Logger,
		store:   deps.Store,
		reg:     deps.Registry,
		metrics: newMetrics(),
		slots:   newTenantSlots(cfg.Reads.TenantExpensiveReads),
		reads:   &tenantReads{n: max(cfg.Reads.TenantQueries, 1)},
		prom:    newPromEngine(cfg.Reads.QueryTimeout),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if err := s.metrics.register(s.reg); err != nil {
		return nil, err
	}
	s.router = s.routes(deps)
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		TLSConfig:         tlsCfg,
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.baseCancel()
		s.metrics.unregister(s.reg)
		return nil, fmt.Errorf("api: listening on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	return s, nil
}

// routes builds the router: operational routes without authentication,
// /api/v1 behind a tenant's API key, /admin/v1 (if enabled) behind the
// admin key.
func (s *Service) routes(deps Deps) *chi.Mux {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer, s.observe, s.recoverJSON)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errNoRoute) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.fail(w, r, errMethod) })

	ops.RegisterHealth(chiHandle{r}, &s.ready) // /metrics and /debug/pprof/ are on the process's ops listener
	r.Get("/ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ui/", http.StatusMovedPermanently) // relative: keeps a proxy's prefix
	})
	r.Get(ui.Prefix+"*", ui.Handler().ServeHTTP)

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.authenticate(deps.Auth), s.readDeadline, s.limitExpensive)
		r.Get("/traces", s.serve(s.searchTraces))
		r.Get("/traces/{traceId}", s.serve(s.getTrace))
		r.Get("/services", s.serve(s.listServices))
		r.Get("/logs", s.serve(s.searchLogs))
		r.Get("/metrics/names", s.serve(s.metricNames))
		r.Get("/metrics/series", s.serve(s.metricSeries))
		r.Get("/metrics/exemplars", s.serve(s.metricExemplars))
		r.Post("/rca", s.serve(s.rootCauses(deps.RCA)))
		r.Get("/incidents/{id}/root-causes", s.serve(s.incidentRootCauses(deps.RCA, deps.IncidentRootCauses)))
		s.retentionRoutes(r, deps.Retention)
		s.correlateRoutes(r, deps.Correlations)
		s.eventRoutes(r, deps.Events)
		s.bizTxRoutes(r, deps.BusinessTransactions)
		s.incidentRoutes(r, deps.Incidents, deps.Correlations)
		s.incidentRuleRoutes(r, deps.IncidentRules, deps.IncidentRuleDefaults)
	})
	r.Route(PrometheusPrefix, func(r chi.Router) {
		r.Use(basicAsBearer, s.authenticate(deps.Auth), s.readDeadline, s.limitExpensive)
		s.prometheusRoutes(r)
	})
	if deps.Admin != nil && deps.AdminKey != "" {
		s.adminRoutes(r, deps.Admin, deps.AdminKey)
	}
	return r
}

// authenticate is authn.Middleware answering through fail, so refused
// credentials are logged and counted (aftertrace_api_rejected_total:
// unauthenticated, rate_limited, ...) like every other error.
func (s *Service) authenticate(a authn.Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, err := a.Authenticate(authn.WithSource(r.Context(), r.RemoteAddr), authn.BearerToken(r.Header.Get("Authorization")))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(authn.WithTenant(r.Context(), t)))
		})
	}
}

// chiHandle adapts a chi router to ops.RegisterHealth, whose patterns follow
// http.ServeMux: a trailing slash there matches the whole subtree.
type chiHandle struct{ r chi.Router }

func (c chiHandle) Handle(pattern string, h http.Handler) {
	if len(pattern) > 1 && strings.HasSuffix(pattern, "/") {
		pattern += "*"
	}
	c.r.Handle(pattern, h)
}

// Addr is the bound listen address.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Handler is the HTTP handler of every route (for tests).
func (s *Service) Handler() http.Handler { return s.router }

// Router is the chi router of every route (for tests: chi.Walk).
func (s *Service) Router() chi.Router { return s.router }

// Ready reports whether /readyz answers ready.
func (s *Service) Ready() bool { return s.ready.Ready() }

// Run serves until ctx is done, then reports not-ready (first, so load
// balancers stop routing here) and drains the server within
// ShutdownTimeout, after which connections are closed and queries still
// running are cancelled. It returns nil after a ctx-initiated shutdown, or
// the error that stopped the server early. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("api: Run called twice or after Close")
	}
	errc := make(chan error, 1)
	go func() {
		serve := s.srv.Serve
		if s.srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return s.srv.ServeTLS(ln, "", "") }
		}
		err := serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	s.ready.Set(true)
	s.log.Info("api serving", "addr", s.Addr())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		runErr = fmt.Errorf("api: server: %w", runErr)
		s.log.Error("api server failed, shutting down", "err", runErr)
	}

	s.ready.Set(false)
	s.log.Info("api draining", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("api drain timed out, closing connections", "err", err)
		s.baseCancel()
		_ = s.srv.Close()
	}
	s.baseCancel()
	if runErr == nil {
		if err := <-errc; err != nil {
			runErr = fmt.Errorf("api: server: %w", err)
		}
	}
	s.log.Info("api stopped")
	return runErr
}

// Close releases the listener of a Service whose Run was never called.
// Once Run has started it does nothing: Run owns the listener then.
func (s *Service) Close() error {
	if !s.state.CompareAndSwap(stateNew, stateClosed) {
		return nil
	}
	s.ready.Set(false)
	s.baseCancel()
	return s.ln.Close()
}
