package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func (f *fakeKeys) add(key string, o pgstore.KeyOwner) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[sha256.Sum256([]byte(key))] = o
}

func (f *fakeKeys) peakLookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// fakeClock is a settable Cached.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCached(store KeyStore, cfg CacheConfig) (*Cached, *fakeClock) {
	c := NewCached(store, cfg)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c.now = clk.now
	return c, clk
}

func from(addr string) context.Context { return WithSource(context.Background(), addr) }

func rejectedCount(t *testing.T, c *Cached, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.metrics.rejected.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSourceFrom(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:4317", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
		{"", ""},
		{"not an address", ""},
	} {
		if got := SourceFrom(WithSource(context.Background(), tc.addr)); got != tc.want {
			t.Errorf("SourceFrom(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := SourceFrom(context.Background()); got != "" {
		t.Errorf("SourceFrom without source = %q", got)
	}
}

// Unknown keys are remembered for NegativeTTL; KeyCreated forgets one at
// once, even when it lands during a lookup of that key.
func TestCachedRemembersUnknownKeys(t *testing.T) {
	store := newFakeKeys(nil)
	c, clk := newTestCached(store, CacheConfig{NegativeTTL: 30 * time.Second})
	ctx := context.Background()
	for range 5 {
		if _, err := c.Authenticate(ctx, "new-key"); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := store.count(); n != 1 {
		t.Fatalf("lookups = %d, want 1 (then remembered as unknown)", n)
	}

	// Created elsewhere: works once NegativeTTL has passed.
	store.add("new-key", pgstore.KeyOwner{KeyID: "01", TenantID: "t"})
	if _, err := c.Authenticate(ctx, "new-key"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("within NegativeTTL: %v, want still unknown", err)
	}
	clk.advance(30 * time.Second)
	if got, err := c.Authenticate(ctx, "new-key"); err != nil || got.ID != "t" {
		t.Fatalf("after NegativeTTL: %+v, %v", got, err)
	}

	// Created in this process: works at once.
	if _, err := c.Authenticate(ctx, "other-key"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal(err)
	}
	store.add("other-key", pgstore.KeyOwner{KeyID: "02", TenantID: "t"})
	c.KeyCreated("other-key")
	if _, err := c.Authenticate(ctx, "other-key"); err != nil {
		t.Fatalf("after KeyCreated: %v", err)
	}

	// A lookup that began before KeyCreated does not remember the key.
	store.during = func() { c.KeyCreated("racing-key") }
	if _, err := c.Authenticate(ctx, "racing-key"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal(err)
	}
	store.during = nil
	store.add("racing-key", pgstore.KeyOwner{KeyID: "03", TenantID: "t"})
	if _, err := c.Authenticate(ctx, "racing-key"); err != nil {
		t.Fatalf("the raced lookup remembered the key as unknown: %v", err)
	}
}

func TestCachedLimitsFailuresPerSource(t *testing.T) {
	store := newFakeKeys(map[string]pgstore.KeyOwner{
		"good":  {KeyID: "01", TenantID: "t"},
		"good2": {KeyID: "02", TenantID: "t"},
	})
	c, clk := newTestCached(store, CacheConfig{FailuresPerSecond: 1, FailureBurst: 3})
	a, b := from("192.0.2.1:1000"), from("192.0.2.2:1000")
	if _, err := c.Authenticate(a, "good"); err != nil { // cached from now on
		t.Fatal(err)
	}
	type step struct {
		ctx     context.Context
		key     string
		want    apperr.Kind // KindInternal: success
		lookups int         // store lookups the step adds
	}
	ok := apperr.KindInternal
	steps := []step{
		{a, "bad-1", apperr.KindUnauthenticated, 1},
		{a, "bad-1", apperr.KindUnauthenticated, 0}, // remembered, still a failure
		{a, "bad-2", apperr.KindUnauthenticated, 1},
		{a, "bad-3", apperr.KindRateLimited, 0},     // burst of 3 spent
		{a, "good", ok, 0},                          // cached keys always pass
		{a, "good2", apperr.KindRateLimited, 0},     // uncached keys wait for a token
		{b, "bad-3", apperr.KindUnauthenticated, 1}, // another source has its own bucket
		{context.Background(), "bad-4", apperr.KindUnauthenticated, 1},
	}
	for i, s := range steps {
		before := store.count()
		_, err := c.Authenticate(s.ctx, s.key)
		if got := apperr.KindOf(err); (err == nil) != (s.want == ok) || (err != nil && got != s.want) {
			t.Fatalf("step %d (%s): err = %v, want kind %v", i, s.key, err, s.want)
		}
		if n := store.count() - before; n != s.lookups {
			t.Errorf("step %d (%s): %d lookups, want %d", i, s.key, n, s.lookups)
		}
	}
	if got := rejectedCount(t, c, RejectRateLimited); got != 2 {
		t.Errorf("rejected{rate_limited} = %v, want 2", got)
	}

	// One token a second, after the debt of the two refusals; a working
	// key gives its token back.
	clk.advance(2 * time.Second)
	if _, err := c.Authenticate(a, "bad-4"); apperr.KindOf(err) != apperr.KindRateLimited {
		t.Fatalf("refusals were not charged: %v", err)
	}
	clk.advance(2 * time.Second)
	for range 3 {
		c.Evict("")
		if _, err := c.Authenticate(a, "good2"); err != nil {
			t.Fatalf("working key with one token: %v", err)
		}
	}
	if _, err := c.Authenticate(a, "bad-5"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the refunded token was lost: %v", err)
	}
	if _, err := c.Authenticate(a, "bad-6"); apperr.KindOf(err) != apperr.KindRateLimited {
		t.Fatalf("err = %v, want rate limited", err)
	}
}

// A flood of unknown keys costs at most MaxConcurrentLookups queries at a
// time, identical keys share one, slow lookups end at LookupTimeout, and a
// cached key is answered meanwhile without waiting.
func TestCachedBoundsLookups(t *testing.T) {
	store := newFakeKeys(map[string]pgstore.KeyOwner{"good": {KeyID: "01", TenantID: "t"}})
	c := NewCached(store, CacheConfig{MaxConcurrentLookups: 2, LookupTimeout: time.Hour})
	ctx := context.Background()
	if _, err := c.Authenticate(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	before := store.count()
	block := make(chan struct{})
	store.mu.Lock()
	store.block = block
	store.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 10 {
		wg.Go(func() { _, err := c.Authenticate(ctx, fmt.Sprintf("unknown-%d", i)); errs <- err })
	}
	for range 50 {
		wg.Go(func() { _, err := c.Authenticate(ctx, "same-unknown"); errs <- err })
	}
	eventually(t, "2 lookups running", func() bool { return store.peakLookups() == 2 })

	done := make(chan error, 1)
	go func() { _, err := c.Authenticate(ctx, "good"); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cached key during the flood: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cached key waited for the lookups of unknown keys")
	}

	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("flood answer %v, want unauthenticated", err)
		}
	}
	if n := store.count() - before; n != 11 {
		t.Errorf("%d lookups for 11 distinct keys", n)
	}
	if p := store.peakLookups(); p != 2 {
		t.Errorf("peak concurrent lookups = %d, want 2", p)
	}

	// A store that does not answer: unavailable after LookupTimeout.
	slow := newFakeKeys(nil)
	slow.block = make(chan struct{}) // never closed
	c2 := NewCached(slow, CacheConfig{LookupTimeout: 50 * time.Millisecond})
	if _, err := c2.Authenticate(ctx, "whatever"); apperr.KindOf(err) != apperr.KindUnavailable {
		t.Fatalf("slow store: %v, want unavailable", err)
	}
	if got := rejectedCount(t, c2, RejectLookupFailed); got != 1 {
		t.Errorf("rejected{lookup_failed} = %v", got)
	}
}

func TestCachedMetricsRegister(t *testing.T) {
	c := NewCached(newFakeKeys(nil), CacheConfig{})
	reg := prometheus.NewRegistry()
	for _, col := range c.Collectors() {
		if err := reg.Register(col); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Authenticate(context.Background(), "")
	_, _ = c.Authenticate(context.Background(), "x")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"aftertrace_auth_rejected_total", "aftertrace_auth_key_lookups_total",
		"aftertrace_auth_cached_unknown_keys", "aftertrace_auth_key_lookups_in_flight"} {
		if !seen[name] {
			t.Errorf("metric %s not gathered", name)
		}
	}
}

func TestCacheConfigValidate(t *testing.T) {
	if err := DefaultCacheConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (CacheConfig{}).Validate(); err != nil {
		t.Fatalf("zero (defaults): %v", err)
	}
	err := CacheConfig{NegativeTTL: -1, FailureBurst: -1}.Validate()
	if err == nil {
		t.Fatal("negative fields accepted")
	}
	for _, want := range []string{"NegativeTTL", "FailureBurst"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// A working key whose TTL ran out is looked up again without a failure
// token: a flood from its address does not lock it out.
func TestCachedStaleKeyIsNotThrottled(t *testing.T) {
	store := newFakeKeys(map[string]pgstore.KeyOwner{"good": {KeyID: "01", TenantID: "t"}})
	c, clk := newTestCached(store, CacheConfig{TTL: time.Second, FailuresPerSecond: 0.001, FailureBurst: 1})
	src := from("192.0.2.9:1")
	if _, err := c.Authenticate(src, "good"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(src, "bad"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(src, "bad-2"); apperr.KindOf(err) != apperr.KindRateLimited {
		t.Fatalf("bucket not empty: %v", err)
	}
	for range 3 {
		clk.advance(2 * time.Second)
		before := store.count()
		if got, err := c.Authenticate(src, "good"); err != nil || got.ID != "t" {
			t.Fatalf("stale working key from a throttled address: %+v, %v", got, err)
		}
		if store.count() != before+1 {
			t.Errorf("stale key not looked up again")
		}
	}
	// Revoked while stale: refused, and no longer exempt.
	store.revoke("good")
	clk.advance(2 * time.Second)
	if _, err := c.Authenticate(src, "good"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked stale key: %v", err)
	}
	if _, err := c.Authenticate(src, "good"); apperr.KindOf(err) != apperr.KindRateLimited {
		t.Fatalf("revoked key is still exempt: %v", err)
	}
}
