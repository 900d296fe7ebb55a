package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// fakeKeys is an in-memory KeyStore that counts lookups.
type fakeKeys struct {
	mu      sync.Mutex
	keys    map[[32]byte]pgstore.KeyOwner
	err     error
	lookups int
	during  func()        // runs inside LookupKey, before answering
	block   chan struct{} // when set, LookupKey waits for it to close (or ctx)
	active  int           // lookups running now
	peak    int           // most lookups running at once
}

func newFakeKeys(keys map[string]pgstore.KeyOwner) *fakeKeys {
	f := &fakeKeys{keys: map[[32]byte]pgstore.KeyOwner{}}
	for k, o := range keys {
		f.keys[sha256.Sum256([]byte(k))] = o
	}
	return f
}

func (f *fakeKeys) LookupKey(ctx context.Context, h [32]byte) (pgstore.KeyOwner, error) {
	f.mu.Lock()
	f.lookups++
	f.active++
	f.peak = max(f.peak, f.active)
	during, block := f.during, f.block
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	if during != nil {
		during()
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return pgstore.KeyOwner{}, apperr.Wrap(apperr.KindUnavailable, ctx.Err(), "lookup cancelled")
		}
	}
	f.mu.Lock()
	o, ok := f.keys[h]
	err := f.err
	f.mu.Unlock()
	switch {
	case err != nil:
		return pgstore.KeyOwner{}, err
	case !ok:
		return pgstore.KeyOwner{}, apperr.New(apperr.KindNotFound, "unknown or revoked api key")
	}
	return o, nil
}

func (f *fakeKeys) revoke(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, sha256.Sum256([]byte(key)))
}

func (f *fakeKeys) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func TestCachedAuthenticate(t *testing.T) {
	ctx := context.Background()
	store := newFakeKeys(map[string]pgstore.KeyOwner{
		"key-a": {KeyID: "0a", TenantID: "ta"},
		"key-b": {KeyID: "0b", TenantID: "tb"},
	})
	c := NewCached(store, CacheConfig{TTL: time.Minute, MaxEntries: 10})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	for _, tc := range []struct {
		key, tenant string
		unauth      bool
	}{
		{"key-a", "ta", false},
		{"key-b", "tb", false},
		{"key-a", "ta", false},
		{"", "", true},
		{"key-c", "", true},
		{string(make([]byte, maxKeyLen+1)), "", true},
	} {
		got, err := c.Authenticate(ctx, tc.key)
		if tc.unauth {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("key %.10q: err = %v, want unauthenticated", tc.key, err)
			}
			continue
		}
		if err != nil || got.ID != tc.tenant {
			t.Errorf("key %q: %+v, %v; want tenant %s", tc.key, got, err, tc.tenant)
		}
	}
	// key-a twice, key-b, key-c: the empty and the oversized key never reach the store.
	if n := store.count(); n != 3 {
		t.Errorf("lookups = %d, want 3 (key-a cached, unknown key looked up)", n)
	}

	// Revoked in the store: still cached until evicted or expired.
	store.revoke("key-a")
	if _, err := c.Authenticate(ctx, "key-a"); err != nil {
		t.Fatalf("cached key-a: %v", err)
	}
	c.Evict("0a")
	if _, err := c.Authenticate(ctx, "key-a"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("key-a after Evict: %v, want unauthenticated", err)
	}
	if _, err := c.Authenticate(ctx, "key-b"); err != nil {
		t.Fatalf("key-b after evicting key-a: %v", err)
	}

	// TTL: an expired entry is looked up again.
	store.revoke("key-b")
	now = now.Add(time.Minute)
	if _, err := c.Authenticate(ctx, "key-b"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("key-b after TTL: %v, want unauthenticated", err)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d, want 0", c.Len())
	}
}

func TestCachedEvictAll(t *testing.T) {
	ctx := context.Background()
	store := newFakeKeys(map[string]pgstore.KeyOwner{"k1": {KeyID: "01", TenantID: "t"}, "k2": {KeyID: "02", TenantID: "t"}})
	c := NewCached(store, CacheConfig{})
	for _, k := range []string{"k1", "k2"} {
		if _, err := c.Authenticate(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	store.revoke("k1")
	store.revoke("k2")
	c.Evict("")
	for _, k := range []string{"k1", "k2"} {
		if _, err := c.Authenticate(ctx, k); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s after Evict(\"\"): %v", k, err)
		}
	}
}

func TestCachedIsBounded(t *testing.T) {
	ctx := context.Background()
	keys := map[string]pgstore.KeyOwner{}
	for i := range 20 {
		keys[string(rune('a'+i))+"-key"] = pgstore.KeyOwner{KeyID: "id", TenantID: "t"}
	}
	store := newFakeKeys(keys)
	c := NewCached(store, CacheConfig{TTL: time.Hour, MaxEntries: 5})
	for k := range keys {
		if _, err := c.Authenticate(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 5 {
		t.Fatalf("Len = %d, want 5", c.Len())
	}
	// LRU: a recently used key survives new ones.
	if _, err := c.Authenticate(ctx, "a-key"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Authenticate(ctx, "b-key")
	_, _ = c.Authenticate(ctx, "a-key")
	for _, k := range []string{"c-key", "d-key", "e-key", "f-key"} {
		_, _ = c.Authenticate(ctx, k)
	}
	before := store.count()
	if _, err := c.Authenticate(ctx, "a-key"); err != nil || store.count() != before {
		t.Errorf("a-key was evicted although recently used (lookups %d → %d)", before, store.count())
	}
}

// TestCachedEvictRacesLookup: a lookup that started before an eviction
// must not put the evicted key back.
func TestCachedEvictRacesLookup(t *testing.T) {
	ctx := context.Background()
	store := newFakeKeys(map[string]pgstore.KeyOwner{"k": {KeyID: "01", TenantID: "t"}})
	c := NewCached(store, CacheConfig{TTL: time.Hour})
	store.during = func() { c.Evict("01") } // the revocation lands mid-lookup
	if _, err := c.Authenticate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	store.during = nil
	if c.Len() != 0 {
		t.Fatalf("the raced lookup was cached")
	}
}

func TestCachedStoreFailureIsNotUnauthenticated(t *testing.T) {
	store := newFakeKeys(nil)
	store.err = apperr.Unavailable(errors.New("down"), "tenant database unavailable, retry later", time.Second)
	c := NewCached(store, CacheConfig{})
	_, err := c.Authenticate(context.Background(), "some-key")
	if apperr.KindOf(err) != apperr.KindUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}
