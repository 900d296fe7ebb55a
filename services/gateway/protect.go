package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/limits"
)

// inflight bounds the bytes of the requests being decoded and published at
// once. Reserving never waits: shedding beats growing memory.
type inflight struct {
	mu    sync.Mutex
	max   int64
	used  int64
	gauge func(float64)
}

var errInflightFull = apperr.Unavailable(nil,
	"gateway overloaded: too many bytes of export requests in progress, retry later", time.Second)

// reserve takes n bytes; the returned release must be called once.
func (f *inflight) reserve(n int64) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+n > f.max {
		return nil, errInflightFull
	}
	f.used += n
	f.gauge(float64(f.used))
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.used -= n
			f.gauge(float64(f.used))
		})
	}, nil
}

// allowTenant takes a request of records records and size bytes from the
// tenant's rate limits; over them it counts the refusal and returns an
// apperr of KindRateLimited with a retry hint.
func (s *Service) allowTenant(tenantID string, records, size int) error {
	d := s.limits.Allow(tenantID, records, size, time.Now())
	if d.OK {
		return nil
	}
	s.metrics.tenantRejected.WithLabelValues(tenantID, d.Reason).Inc()
	what := "records"
	if d.Reason == limits.ReasonBytes {
		what = "bytes"
	}
	return &apperr.Error{
		Kind:       apperr.KindRateLimited,
		Message:    "tenant ingest rate limit exceeded (" + what + " per second), retry later",
		RetryAfter: d.RetryAfter,
	}
}

// lane picks the bus lane of an accepted request: the bulk lane when it
// is beyond the tenant's fair share of the rate or holds a record older
// than LateAfter (oldest: unix ns, 0 unknown), else the share lane. See
// bus.Lane: a tenant's flood or backfill then never queues ahead of the
// others' traffic.
func (s *Service) lane(ctx context.Context, signal, tenantID string, records int, oldest uint64) context.Context {
	now := time.Now()
	lane := bus.LaneShare
	late := oldest != 0 && s.cfg.LateAfter > 0 && int64(oldest) < now.Add(-s.cfg.LateAfter).UnixNano()
	if late || !s.limits.WithinShare(tenantID, records, now) {
		lane = bus.LaneBulk
	}
	s.metrics.laneRecords.WithLabelValues(signal, lane.String()).Add(float64(records))
	return bus.WithLane(ctx, lane)
}
