package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
)

// ReadLimits bound what one request and one tenant may read, so one
// tenant's heavy reads cannot take the API (or its ClickHouse pool) from
// the others.
type ReadLimits struct {
	// QueryTimeout is the deadline of every /api/v1 request: its
	// ClickHouse and Postgres queries and the root-cause analysis. The
	// API's ClickHouse store also sends it as max_execution_time (see
	// services/allinone). Over it: 504 timeout.
	QueryTimeout time.Duration
	// MaxTraceSpans bounds GET /api/v1/traces/{traceId}: a trace with more
	// spans is answered with its first MaxTraceSpans spans by start time
	// and truncated: true.
	MaxTraceSpans int
	// TenantExpensiveReads is how many expensive reads (ExpensiveRoutes)
	// one tenant may have in flight; one more is answered 429 with
	// Retry-After. A slot is held for the whole request. 0: unlimited.
	TenantExpensiveReads int
	// TenantQueries is how many ClickHouse queries of one tenant's reads
	// run at once (more wait, within the request's deadline); they run at
	// a priority that falls with the tenant's queries running (see
	// chstore.TenantReads). 0 is resolved by the caller (services/allinone:
	// half of ClickHouse's max_threads); New takes it as 1.
	TenantQueries int
}

// DefaultReadLimits returns the defaults: 30 s, 10,000 spans, 4 expensive
// reads per tenant.
func DefaultReadLimits() ReadLimits {
	return ReadLimits{QueryTimeout: 30 * time.Second, MaxTraceSpans: 10_000, TenantExpensiveReads: 4}
}

func (l ReadLimits) validate() error {
	var errs []error
	if l.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api: query timeout must be positive, got %v", l.QueryTimeout))
	}
	if l.MaxTraceSpans <= 0 {
		errs = append(errs, fmt.Errorf("api: max trace spans must be positive, got %d", l.MaxTraceSpans))
	}
	if l.TenantQueries < 0 {
		errs = append(errs, fmt.Errorf("api: tenant queries must not be negative (0: auto), got %d", l.TenantQueries))
	}
	if l.TenantExpensiveReads < 0 {
		errs = append(errs, fmt.Errorf("api: tenant expensive reads must not be negative, got %d", l.TenantExpensiveReads))
	}
	return errors.Join(errs...)
}

// Route classes of the expensive reads.
const (
	ClassRCA      = "rca"      // root-cause analysis
	ClassSearch   = "search"   // searches over a time window
	ClassTimeline = "timeline" // a container's timeline, an incident's events and links
	ClassBundle   = "bundle"   // evidence bundles: made and downloaded
)

// expensiveRoutes maps "METHOD pattern" of the expensive reads to their
// class; every other route is not limited per tenant.
var expensiveRoutes = map[string]string{
	"POST /api/v1/rca":                              ClassRCA,
	"GET /api/v1/incidents/{id}/root-causes":        ClassRCA,
	"GET /api/v1/traces":                            ClassSearch,
	"GET /api/v1/logs":                              ClassSearch,
	"GET /api/v1/events":                            ClassSearch,
	"GET /api/v1/metrics/series":                    ClassSearch,
	"GET /api/v1/containers/{containerId}/timeline": ClassTimeline,
	"GET /api/v1/incidents/{id}":                    ClassTimeline,
	"POST /api/v1/evidence":                         ClassBundle,
	"GET /prometheus/api/v1/query":                  ClassSearch,
	"POST /prometheus/api/v1/query":                 ClassSearch,
	"GET /prometheus/api/v1/query_range":            ClassSearch,
	"POST /prometheus/api/v1/query_range":           ClassSearch,
	"GET /prometheus/api/v1/series":                 ClassSearch,
	"POST /prometheus/api/v1/series":                ClassSearch,
	"GET /api/v1/evidence/{bundleId}/download":      ClassBundle,
}

// ExpensiveRoutes returns the expensive reads: "METHOD pattern" → class.
func ExpensiveRoutes() map[string]string { return maps.Clone(expensiveRoutes) }

// expensiveRetryAfter is the Retry-After of a refused expensive read.
const expensiveRetryAfter = 2 * time.Second

// tenantSlots counts each tenant's expensive reads in flight. Only tenants
// with reads in flight have an entry, so it is bounded by the requests
// being served.
type tenantSlots struct {
	max  int // 0: unlimited
	mu   sync.Mutex
	held map[string]int
}

func newTenantSlots(perTenant int) *tenantSlots {
	return &tenantSlots{max: perTenant, held: map[string]int{}}
}

// acquire takes one of tenant's slots; false: all are held.
func (t *tenantSlots) acquire(tenant string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.max > 0 && t.held[tenant] >= t.max {
		return false
	}
	t.held[tenant]++
	return true
}

func (t *tenantSlots) release(tenant string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held[tenant] <= 1 {
		delete(t.held, tenant)
	} else {
		t.held[tenant]--
	}
}

// readDeadline gives every /api/v1 request the query timeout as its
// deadline.
func (s *Service) readDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Reads.QueryTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// tenantReads are the tenants' shares of ClickHouse (chstore.TenantReads),
// made on first use; bounded by the tenant table.
type tenantReads struct {
	n  int
	mu sync.Mutex
	m  map[string]*chstore.TenantReads
}

func (t *tenantReads) of(tenant string) *chstore.TenantReads {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.m[tenant]
	if !ok {
		if t.m == nil {
			t.m = map[string]*chstore.TenantReads{}
		}
		r = chstore.NewTenantReads(t.n)
		t.m[tenant] = r
	}
	return r
}

// limitExpensive holds one of the tenant's expensive-read slots while an
// expensive route answers, and answers 429 (rate_limited, Retry-After)
// when the tenant holds all of them. Every read takes the tenant's share
// of ClickHouse (TenantQueries, falling priority); an expensive one runs
// each query on one ClickHouse thread. It runs after authentication,
// before routing, so it finds the route itself.
func (s *Service) limitExpensive(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, err := tenantOf(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ctx := chstore.WithTenantReads(r.Context(), s.reads.of(tenant.ID))
		class := s.expensiveClass(r)
		if class == "" {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if !s.slots.acquire(tenant.ID) {
			s.metrics.expensiveRejected.WithLabelValues(class).Inc()
			s.fail(w, r, &apperr.Error{
				Kind:       apperr.KindRateLimited,
				RetryAfter: expensiveRetryAfter,
				Message: fmt.Sprintf("this tenant already has %d expensive reads (root-cause analyses, searches, timelines, evidence bundles) in flight; retry later",
					s.slots.max),
			})
			return
		}
		g := s.metrics.expensiveInFlight.WithLabelValues(class)
		g.Inc()
		defer func() {
			g.Dec()
			s.slots.release(tenant.ID)
		}()
		// One ClickHouse thread per query of an expensive read: the others'
		// reads always find a core.
		next.ServeHTTP(w, r.WithContext(chstore.WithReadThreads(ctx, 1)))
	})
}

// expensiveClass is the class of the route r goes to, or "".
func (s *Service) expensiveClass(r *http.Request) string {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	pattern := s.router.Find(chi.NewRouteContext(), r.Method, path)
	if pattern == "" {
		return ""
	}
	return expensiveRoutes[r.Method+" "+pattern]
}
