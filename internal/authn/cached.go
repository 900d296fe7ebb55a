package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// KeyStore finds the owner of a working key by the key's SHA-256 hash; an
// unknown or revoked key is an apperr KindNotFound. *pgstore.Store is one.
type KeyStore interface {
	LookupKey(ctx context.Context, hash [32]byte) (pgstore.KeyOwner, error)
}

var _ KeyStore = (*pgstore.Store)(nil)

// CacheConfig bounds what a Cached authenticator remembers and how much
// work unknown keys may cause. Zero fields get the defaults.
type CacheConfig struct {
	// TTL is how long a looked-up key is trusted without asking the store
	// again: the safety net should a revocation notice be lost.
	TTL time.Duration
	// MaxEntries caps the cache of working keys; the least recently used
	// key goes first.
	MaxEntries int
	// NegativeTTL is how long an unknown key is refused without asking the
	// store again. A key created by another process (`aftertrace key
	// create`) after it was tried here works at the latest NegativeTTL
	// after that attempt; keys created through this process's admin API
	// work at once (KeyCreated).
	NegativeTTL time.Duration
	// MaxNegativeEntries caps the cache of unknown keys (LRU).
	MaxNegativeEntries int
	// LookupTimeout bounds one store lookup, waiting for a lookup slot
	// included; over it the request is answered unavailable (503).
	LookupTimeout time.Duration
	// MaxConcurrentLookups bounds the store lookups in flight (identical
	// keys share one lookup).
	MaxConcurrentLookups int
	// FailuresPerSecond and FailureBurst are the token bucket of failed
	// authentications per source address (IP, or IPv6 /64): a key not in
	// the cache takes a token before it is checked and gives it back if it
	// works. With no token left such keys are refused (429 / gRPC
	// RESOURCE_EXHAUSTED) without a lookup, and the refusal is charged too
	// (down to a debt of FailureBurst tokens), so a source that keeps
	// flooding stays refused; cached keys, and working keys whose TTL ran
	// out, always pass.
	FailuresPerSecond float64
	FailureBurst      int
	// MaxSources caps the source addresses tracked (LRU).
	MaxSources int
}

// DefaultCacheConfig: working keys 5 s (10,000), unknown keys 30 s
// (100,000), lookups 2 s and 4 at once, 10 failures/s per source with a
// burst of 20, 10,000 sources.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{
		TTL:                  5 * time.Second,
		MaxEntries:           10_000,
		NegativeTTL:          30 * time.Second,
		MaxNegativeEntries:   100_000,
		LookupTimeout:        2 * time.Second,
		MaxConcurrentLookups: 4,
		FailuresPerSecond:    10,
		FailureBurst:         20,
		MaxSources:           10_000,
	}
}

// Validate reports every negative field (zero means the default).
func (c CacheConfig) Validate() error {
	var errs []error
	neg := func(name string, v float64) {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("authn: %s must not be negative, got %v", name, v))
		}
	}
	neg("TTL", float64(c.TTL))
	neg("MaxEntries", float64(c.MaxEntries))
	neg("NegativeTTL", float64(c.NegativeTTL))
	neg("MaxNegativeEntries", float64(c.MaxNegativeEntries))
	neg("LookupTimeout", float64(c.LookupTimeout))
	neg("MaxConcurrentLookups", float64(c.MaxConcurrentLookups))
	neg("FailuresPerSecond", c.FailuresPerSecond)
	neg("FailureBurst", float64(c.FailureBurst))
	neg("MaxSources", float64(c.MaxSources))
	return errors.Join(errs...)
}

func (c CacheConfig) withDefaults() CacheConfig {
	def := DefaultCacheConfig()
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setD(&c.TTL, def.TTL)
	set(&c.MaxEntries, def.MaxEntries)
	setD(&c.NegativeTTL, def.NegativeTTL)
	set(&c.MaxNegativeEntries, def.MaxNegativeEntries)
	setD(&c.LookupTimeout, def.LookupTimeout)
	set(&c.MaxConcurrentLookups, def.MaxConcurrentLookups)
	if !(c.FailuresPerSecond > 0) || math.IsInf(c.FailuresPerSecond, 0) {
		c.FailuresPerSecond = def.FailuresPerSecond
	}
	set(&c.FailureBurst, def.FailureBurst)
	set(&c.MaxSources, def.MaxSources)
	return c
}

// maxKeyLen: longer credentials are refused without a lookup.
const maxKeyLen = 512

// Reasons a Cached authenticator refuses a request: the values of the
// "reason" label of aftertrace_auth_rejected_total.
const (
	RejectMissingKey   = "missing_key"   // no credential
	RejectMalformedKey = "malformed_key" // longer than any key
	RejectUnknownKey   = "unknown_key"   // unknown or revoked (looked up, or remembered as unknown)
	RejectRateLimited  = "rate_limited"  // the source failed too often: 429
	RejectLookupFailed = "lookup_failed" // the store failed, timed out or was too busy: 503
)

// errUnknownKey is the store's answer for an unknown key, remembered.
var errUnknownKey = apperr.New(apperr.KindNotFound, "unknown or revoked api key")

// ErrTooManyFailures answers a key not in the cache from a source address
// without failure tokens left.
var ErrTooManyFailures = &apperr.Error{
	Kind:       apperr.KindRateLimited,
	Message:    "too many failed authentications from this address, retry later",
	RetryAfter: time.Second,
}

// Cached authenticates keys against a KeyStore. Working keys are kept in
// an LRU cache with a TTL, so most requests never wait for anything; Evict
// drops revoked keys (call it when a key is revoked in this process, and
// from pgstore's RevocationListener for every other process). Unknown keys
// are remembered for NegativeTTL; KeyCreated forgets one. Lookups are
// coalesced per key, bounded in number and time, and charged to their
// source address (see CacheConfig.FailuresPerSecond), so a flood of
// unknown keys costs the store a bounded number of queries and never
// delays the keys already cached.
type Cached struct {
	store   KeyStore
	cfg     CacheConfig
	now     func() time.Time
	metrics *cacheMetrics
	slots   chan struct{} // MaxConcurrentLookups
	flight  singleflight.Group

	mu       sync.Mutex
	epoch    uint64 // bumped by Evict: lookups begun before do not fill the cache
	known    *lru[[32]byte, cacheEntry]
	negEpoch uint64 // bumped by KeyCreated: lookups begun before do not remember unknown keys
	unknown  *lru[[32]byte, time.Time]
	sources  *lru[string, *bucket]
}

type cacheEntry struct {
	keyID   string
	tenant  Tenant
	expires time.Time
}

// NewCached returns a Cached authenticator; zero fields of cfg get the
// defaults.
func NewCached(store KeyStore, cfg CacheConfig) *Cached {
	cfg = cfg.withDefaults()
	c := &Cached{
		store:   store,
		cfg:     cfg,
		now:     time.Now,
		slots:   make(chan struct{}, cfg.MaxConcurrentLookups),
		known:   newLRU[[32]byte, cacheEntry](cfg.MaxEntries),
		unknown: newLRU[[32]byte, time.Time](cfg.MaxNegativeEntries),
		sources: newLRU[string, *bucket](cfg.MaxSources),
	}
	c.metrics = newCacheMetrics(c)
	return c
}

// Authenticate implements Authenticator. A store failure other than an
// unknown key is returned as is (e.g. unavailable: 503, not 401). The
// source address comes from WithSource.
func (c *Cached) Authenticate(ctx context.Context, apiKey string) (Tenant, error) {
	if apiKey == "" {
		c.metrics.rejected.WithLabelValues(RejectMissingKey).Inc()
		return Tenant{}, ErrUnauthenticated
	}
	now := c.now()
	var h [32]byte
	stale := false // a working key whose TTL ran out: looked up again, never throttled
	if len(apiKey) <= maxKeyLen {
		h = sha256.Sum256([]byte(apiKey))
		c.mu.Lock()
		if e, ok := c.known.get(h); ok {
			if now.Before(e.expires) {
				c.mu.Unlock()
				c.metrics.accepted.WithLabelValues("cache").Inc()
				return e.tenant, nil
			}
			stale = true // kept until the lookup refreshes or drops it
		}
		c.mu.Unlock()
	}

	// Not a known key: a failed attempt until the store says otherwise. The
	// token is taken before the lookup, so one source cannot have more
	// lookups in flight than it has tokens. A key that worked until its TTL
	// ran out takes none: a flood from a shared address must not stop it.
	refund, ok := func() {}, true
	if !stale {
		refund, ok = c.take(SourceFrom(ctx), now)
	}
	if !ok {
		c.metrics.rejected.WithLabelValues(RejectRateLimited).Inc()
		c.metrics.throttled.Inc()
		return Tenant{}, ErrTooManyFailures
	}
	if len(apiKey) > maxKeyLen {
		c.metrics.rejected.WithLabelValues(RejectMalformedKey).Inc()
		return Tenant{}, ErrUnauthenticated
	}

	c.mu.Lock()
	if exp, ok := c.unknown.get(h); ok {
		if now.Before(exp) {
			c.mu.Unlock()
			c.metrics.rejected.WithLabelValues(RejectUnknownKey).Inc()
			return Tenant{}, ErrUnauthenticated
		}
		c.unknown.remove(h)
	}
	c.mu.Unlock()

	owner, err := c.lookup(ctx, h, now)
	switch {
	case err == nil && owner.TenantID == "":
		refund()
		c.metrics.rejected.WithLabelValues(RejectLookupFailed).Inc()
		return Tenant{}, errors.New("authn: key store returned a key without tenant")
	case apperr.KindOf(err) == apperr.KindNotFound:
		c.metrics.rejected.WithLabelValues(RejectUnknownKey).Inc()
		return Tenant{}, ErrUnauthenticated
	case err != nil:
		refund() // the store's failure, not the client's
		c.metrics.rejected.WithLabelValues(RejectLookupFailed).Inc()
		return Tenant{}, err
	}
	refund() // a working key is no failed attempt
	c.metrics.accepted.WithLabelValues("lookup").Inc()
	return Tenant{ID: owner.TenantID, KeyID: owner.KeyID}, nil
}

// lookup asks the store about h and remembers the answer: one query per
// key at a time (concurrent requests for the same key share it, and the
// answer is cached before the next one can start), at most
// MaxConcurrentLookups queries at once, each within LookupTimeout whatever
// the callers' contexts.
func (c *Cached) lookup(ctx context.Context, h [32]byte, now time.Time) (pgstore.KeyOwner, error) {
	v, err, _ := c.flight.Do(string(h[:]), func() (any, error) {
		c.mu.Lock()
		epoch, negEpoch := c.epoch, c.negEpoch
		// A lookup of h that ended just before this one began has
		// answered already.
		if e, ok := c.known.get(h); ok && now.Before(e.expires) {
			c.mu.Unlock()
			return pgstore.KeyOwner{KeyID: e.keyID, TenantID: e.tenant.ID}, nil
		}
		if exp, ok := c.unknown.get(h); ok && now.Before(exp) {
			c.mu.Unlock()
			return pgstore.KeyOwner{}, errUnknownKey
		}
		c.mu.Unlock()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LookupTimeout)
		defer cancel()
		select {
		case c.slots <- struct{}{}:
		case <-lctx.Done():
			c.metrics.lookups.WithLabelValues("busy").Inc()
			return pgstore.KeyOwner{}, apperr.Unavailable(lctx.Err(), "too many API key lookups in progress, retry later", time.Second)
		}
		defer func() { <-c.slots }()
		c.metrics.inFlight.Inc()
		defer c.metrics.inFlight.Dec()
		owner, err := c.store.LookupKey(lctx, h)
		switch {
		case err == nil:
			c.metrics.lookups.WithLabelValues("found").Inc()
			if owner.TenantID == "" {
				break
			}
			c.mu.Lock()
			if c.epoch == epoch { // else an eviction raced the lookup: answer, but do not cache
				c.known.put(h, cacheEntry{keyID: owner.KeyID, tenant: Tenant{ID: owner.TenantID, KeyID: owner.KeyID}, expires: now.Add(c.cfg.TTL)})
			}
			c.mu.Unlock()
		case apperr.KindOf(err) == apperr.KindNotFound:
			c.metrics.lookups.WithLabelValues("unknown").Inc()
			c.mu.Lock()
			c.known.remove(h)           // revoked while its entry was stale
			if c.negEpoch == negEpoch { // else a key was created meanwhile
				c.unknown.put(h, now.Add(c.cfg.NegativeTTL))
			}
			c.mu.Unlock()
		case lctx.Err() != nil:
			c.metrics.lookups.WithLabelValues("timeout").Inc()
			return owner, apperr.Unavailable(err, "API key lookup timed out, retry later", time.Second)
		default:
			c.metrics.lookups.WithLabelValues("error").Inc()
		}
		return owner, err
	})
	owner, _ := v.(pgstore.KeyOwner)
	return owner, err
}

// take takes a failure token of source (none needed without a source);
// the returned func gives it back.
func (c *Cached) take(source string, now time.Time) (refund func(), ok bool) {
	if source == "" {
		return func() {}, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, found := c.sources.get(source)
	if !found {
		b = &bucket{tokens: float64(c.cfg.FailureBurst), last: now}
		c.sources.put(source, b)
	}
	if !b.take(now, c.cfg.FailuresPerSecond, c.cfg.FailureBurst) {
		return nil, false
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			b.tokens = min(b.tokens+1, float64(c.cfg.FailureBurst))
		})
	}, true
}

// bucket is a token bucket of failed authentications. It is not
// golang.org/x/time/rate's Limiter because a token taken before a lookup
// must be given back when the key works, after time moved on, which
// rate.Reservation cannot do.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes a token. Without one the attempt is refused and still
// charged, down to a debt of burst tokens: a source that keeps failing
// while throttled stays throttled, and recovers within 2×burst/perSecond
// once it stops.
func (b *bucket) take(now time.Time, perSecond float64, burst int) bool {
	if now.After(b.last) {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*perSecond)
		b.last = now
	}
	if b.tokens < 1 {
		b.tokens = max(b.tokens-1, -float64(burst))
		return false
	}
	b.tokens--
	return true
}

// Evict drops the key with keyID from the cache, or every key when keyID
// is "" (notices may have been lost). Lookups in flight do not refill the
// cache.
func (c *Cached) Evict(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if keyID == "" {
		c.known.clear()
		return
	}
	c.known.removeIf(func(_ [32]byte, e cacheEntry) bool { return e.keyID == keyID })
}

// KeyCreated forgets that apiKey was unknown, so a key created in this
// process works at once even if it was tried before it existed. Lookups in
// flight do not remember it as unknown.
func (c *Cached) KeyCreated(apiKey string) {
	h := sha256.Sum256([]byte(apiKey))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.negEpoch++
	c.unknown.remove(h)
}

// Len is the number of cached working keys.
func (c *Cached) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known.len()
}

// Collectors are the metrics of c, to register once.
func (c *Cached) Collectors() []prometheus.Collector { return c.metrics.collectors() }

type cacheMetrics struct {
	accepted  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	lookups   *prometheus.CounterVec
	throttled prometheus.Counter
	inFlight  prometheus.Gauge
	sizes     []prometheus.Collector
}

func newCacheMetrics(c *Cached) *cacheMetrics {
	size := func(name, help string, n func() int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return float64(n())
		})
	}
	return &cacheMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_auth_accepted_total",
			Help: "Requests authenticated by API key, by where the key was found: cache or lookup (a key-store query).",
		}, []string{"from"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_auth_rejected_total",
			Help: "Requests refused by API key authentication, by reason: missing_key, malformed_key, unknown_key (401), rate_limited (429: the source failed too often), lookup_failed (503).",
		}, []string{"reason"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_auth_key_lookups_total",
			Help: "API key lookups in the key store (Postgres queries), by result: found, unknown, error, timeout, busy (no lookup slot within the timeout, not queried).",
		}, []string{"result"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aftertrace_auth_throttled_total",
			Help: "Requests refused without a lookup because their source address failed to authenticate too often (429 / RESOURCE_EXHAUSTED).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aftertrace_auth_key_lookups_in_flight",
			Help: "API key lookups running in the key store.",
		}),
		sizes: []prometheus.Collector{
			size("aftertrace_auth_cached_keys", "Working API keys in the authentication cache.", c.known.len),
			size("aftertrace_auth_cached_unknown_keys", "Unknown API keys remembered as unknown.", c.unknown.len),
			size("aftertrace_auth_sources", "Source addresses whose failed authentications are tracked.", c.sources.len),
		},
	}
}

func (m *cacheMetrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.accepted, m.rejected, m.lookups, m.throttled, m.inFlight}, m.sizes...)
}
