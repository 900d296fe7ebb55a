// Package limits holds the per-tenant ingest limits: token buckets of
// records per second and bytes per second, and the window of record times
// a tenant may send, with defaults from configuration and per-tenant
// overrides loaded (and periodically refreshed) from a Source such as the
// Postgres tenant_limits table.
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is the ingest allowance of one tenant. A rate of zero means
// unlimited; a burst of zero means one second of the rate.
type Limit struct {
	RecordsPerSecond float64
	RecordsBurst     int
	BytesPerSecond   float64
	BytesBurst       int

	// MaxAge rejects records older than this; zero means the tenant's
	// longest retention (Retention, raised by its longest policy): a
	// record nothing would keep is not worth a partition.
	MaxAge time.Duration
	// MaxFuture rejects records whose time is further ahead than this;
	// zero: no bound.
	MaxFuture time.Duration
	// Retention is the longest default retention of any signal, the floor
	// of "the tenant's longest retention"; zero (and MaxAge zero): no bound.
	Retention time.Duration

	// ShareRecordsPerSecond is the tenant's fair share of the ingest rate:
	// records within it travel in the share lane, the rest (still within
	// RecordsPerSecond) in the bulk lane (internal/bus lanes). Zero: all
	// in the share lane.
	ShareRecordsPerSecond float64
}

// OldestAge is how old a record of a tenant under l may be; zero: any age.
func (l Limit) OldestAge() time.Duration {
	if l.MaxAge > 0 {
		return l.MaxAge
	}
	return l.Retention
}

// Validate reports every problem of l at once.
func (l Limit) Validate() error {
	var errs []error
	if l.RecordsPerSecond < 0 || math.IsNaN(l.RecordsPerSecond) || math.IsInf(l.RecordsPerSecond, 0) {
		errs = append(errs, fmt.Errorf("records per second must be a finite number >= 0 (0: unlimited), got %v", l.RecordsPerSecond))
	}
	if l.BytesPerSecond < 0 || math.IsNaN(l.BytesPerSecond) || math.IsInf(l.BytesPerSecond, 0) {
		errs = append(errs, fmt.Errorf("bytes per second must be a finite number >= 0 (0: unlimited), got %v", l.BytesPerSecond))
	}
	if l.RecordsBurst < 0 {
		errs = append(errs, fmt.Errorf("records burst must be >= 0, got %d", l.RecordsBurst))
	}
	if l.BytesBurst < 0 {
		errs = append(errs, fmt.Errorf("bytes burst must be >= 0, got %d", l.BytesBurst))
	}
	if l.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max record age must be >= 0 (0: the tenant's longest retention), got %v", l.MaxAge))
	}
	if l.MaxFuture < 0 {
		errs = append(errs, fmt.Errorf("max future must be >= 0 (0: no bound), got %v", l.MaxFuture))
	}
	if l.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention must be >= 0, got %v", l.Retention))
	}
	if l.ShareRecordsPerSecond < 0 || math.IsNaN(l.ShareRecordsPerSecond) || math.IsInf(l.ShareRecordsPerSecond, 0) {
		errs = append(errs, fmt.Errorf("share records per second must be a finite number >= 0 (0: no bulk lane), got %v", l.ShareRecordsPerSecond))
	}
	return errors.Join(errs...)
}

// Override is a tenant's row of overrides; nil fields keep the default.
type Override struct {
	RecordsPerSecond *float64
	RecordsBurst     *int64
	BytesPerSecond   *float64
	BytesBurst       *int64
	MaxAge           *time.Duration
	MaxFuture        *time.Duration
	// PolicyDays is the longest of the tenant's retention policies; it
	// raises Retention, never lowers it.
	PolicyDays *int64
}

// apply returns def with o's set fields replacing its own.
func (o Override) apply(def Limit) Limit {
	l := def
	if o.RecordsPerSecond != nil {
		l.RecordsPerSecond = *o.RecordsPerSecond
	}
	if o.RecordsBurst != nil {
		l.RecordsBurst = clampInt(*o.RecordsBurst)
	}
	if o.BytesPerSecond != nil {
		l.BytesPerSecond = *o.BytesPerSecond
	}
	if o.BytesBurst != nil {
		l.BytesBurst = clampInt(*o.BytesBurst)
	}
	if o.MaxAge != nil {
		l.MaxAge = *o.MaxAge
	}
	if o.MaxFuture != nil {
		l.MaxFuture = *o.MaxFuture
	}
	if o.PolicyDays != nil {
		l.Retention = max(l.Retention, time.Duration(min(*o.PolicyDays, 1<<20))*24*time.Hour)
	}
	return l
}

func clampInt(v int64) int {
	return int(min(max(v, 0), math.MaxInt32))
}

// Source loads the per-tenant overrides, keyed by tenant id.
type Source interface {
	Overrides(ctx context.Context) (map[string]Override, error)
}

// Which limit refused a request: the values of Decision.Reason.
const (
	ReasonRecords = "records_per_second"
	ReasonBytes   = "bytes_per_second"
)

// Decision is the answer of Tenants.Allow.
type Decision struct {
	OK         bool
	Reason     string        // ReasonRecords or ReasonBytes when !OK
	RetryAfter time.Duration // when the tenant may send this much again (!OK)
}

// Tenants are the token buckets of every tenant seen. Tenant ids come from
// authentication, so the map is bounded by the tenant table.
type Tenants struct {
	def     Limit
	src     Source
	refresh time.Duration
	log     *slog.Logger

	mu        sync.Mutex
	overrides map[string]Override
	buckets   map[string]*bucket
}

type bucket struct {
	limit   Limit
	records *rate.Limiter // nil: unlimited
	bytes   *rate.Limiter // nil: unlimited
	share   *rate.Limiter // nil: everything within the share
}

// New returns the buckets with default limit def. src (optional) supplies
// per-tenant overrides, re-read every refresh by Run.
func New(def Limit, src Source, refresh time.Duration, log *slog.Logger) *Tenants {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if refresh <= 0 {
		refresh = 30 * time.Second
	}
	return &Tenants{
		def: def, src: src, refresh: refresh, log: log,
		overrides: map[string]Override{},
		buckets:   map[string]*bucket{},
	}
}

// Limit returns the effective limit of tenant.
func (t *Tenants) Limit(tenant string) Limit {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limitLocked(tenant)
}

func (t *Tenants) limitLocked(tenant string) Limit {
	if o, ok := t.overrides[tenant]; ok {
		return o.apply(t.def)
	}
	return t.def
}

// Allow takes records and bytes from tenant's buckets at now, all or
// nothing. A request larger than a burst takes the whole burst (so it is
// admitted once the bucket is full, not never).
func (t *Tenants) Allow(tenant string, records, bytes int, now time.Time) Decision {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucketLocked(tenant)
	var rr, br *rate.Reservation
	if b.records != nil && records > 0 {
		rr = b.records.ReserveN(now, min(records, b.records.Burst()))
		if d := rr.DelayFrom(now); d > 0 {
			rr.CancelAt(now)
			return Decision{Reason: ReasonRecords, RetryAfter: d}
		}
	}
	if b.bytes != nil && bytes > 0 {
		br = b.bytes.ReserveN(now, min(bytes, b.bytes.Burst()))
		if d := br.DelayFrom(now); d > 0 {
			br.CancelAt(now)
			if rr != nil {
				rr.CancelAt(now)
			}
			return Decision{Reason: ReasonBytes, RetryAfter: d}
		}
	}
	return Decision{OK: true}
}

// bucketLocked returns tenant's buckets, created or adjusted to its
// current limit.
func (t *Tenants) bucketLocked(tenant string) *bucket {
	l := t.limitLocked(tenant)
	b, ok := t.buckets[tenant]
	if !ok {
		b = &bucket{}
		t.buckets[tenant] = b
	} else if b.limit == l {
		return b
	}
	b.limit = l
	b.records = adjust(b.records, l.RecordsPerSecond, l.RecordsBurst)
	b.bytes = adjust(b.bytes, l.BytesPerSecond, l.BytesBurst)
	b.share = adjust(b.share, l.ShareRecordsPerSecond, 0)
	return b
}

// WithinShare takes records from tenant's fair-share bucket at now if it
// holds them all, and reports whether it did; a request that does not fit
// (a flood, or one larger than a second of the share) travels in the bulk
// lane and takes nothing.
func (t *Tenants) WithinShare(tenant string, records int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucketLocked(tenant)
	return b.share == nil || b.share.AllowN(now, records)
}

// adjust returns a limiter of rate r and burst (default: one second of r),
// reusing lim (and so its tokens) when there is one; nil when r is 0.
func adjust(lim *rate.Limiter, r float64, burst int) *rate.Limiter {
	if r <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(min(math.Ceil(r), math.MaxInt32))
	}
	if lim == nil {
		return rate.NewLimiter(rate.Limit(r), burst)
	}
	lim.SetLimit(rate.Limit(r))
	lim.SetBurst(burst)
	return lim
}

// Refresh reloads the overrides from the source once. Without a source it
// does nothing. On error the previous overrides stay.
func (t *Tenants) Refresh(ctx context.Context) error {
	if t.src == nil {
		return nil
	}
	o, err := t.src.Overrides(ctx)
	if err != nil {
		return fmt.Errorf("limits: loading tenant overrides: %w", err)
	}
	t.mu.Lock()
	t.overrides = o
	t.mu.Unlock()
	return nil
}

// Run refreshes the overrides at once and then every refresh interval
// until ctx is done; failures are logged and retried at the next tick
// (the limits in force stay). Without a source it just waits for ctx.
func (t *Tenants) Run(ctx context.Context) {
	if t.src == nil {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(t.refresh)
	defer tick.Stop()
	for {
		if err := t.Refresh(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("tenant limits refresh failed; keeping the limits in force", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
