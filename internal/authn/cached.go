package authn

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// KeyStore finds the owner of a working key by the key's SHA-256 hash; an
// unknown or revoked key is an apperr KindNotFound. *pgstore.Store is one.
type KeyStore interface {
	LookupKey(ctx context.Context, hash [32]byte) (pgstore.KeyOwner, error)
}

var _ KeyStore = (*pgstore.Store)(nil)

// CacheConfig bounds the cache of a Cached authenticator.
type CacheConfig struct {
	// TTL is how long a looked-up key is trusted without asking the store
	// again: the safety net should a revocation notice be lost.
	TTL time.Duration
	// MaxEntries caps the cache; the least recently used key goes first.
	MaxEntries int
}

// DefaultCacheConfig: 5 s, 10,000 keys.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{TTL: 5 * time.Second, MaxEntries: 10_000}
}

// maxKeyLen: longer credentials are refused without a lookup.
const maxKeyLen = 512

// Cached authenticates keys against a KeyStore, keeping recently used
// working keys in a small LRU cache with a TTL, so most requests do not
// reach the store. Unknown keys are not cached (a key created a moment ago
// works at once). Evict drops revoked keys: call it when a key is revoked
// in this process, and from pgstore's RevocationListener for every other
// process.
type Cached struct {
	store KeyStore
	cfg   CacheConfig
	now   func() time.Time

	mu      sync.Mutex
	epoch   uint64 // bumped by Evict: lookups begun before do not fill the cache
	entries map[[32]byte]*list.Element
	lru     *list.List // of *cacheEntry, most recently used first
}

type cacheEntry struct {
	hash    [32]byte
	keyID   string
	tenant  Tenant
	expires time.Time
}

// NewCached returns a Cached authenticator; zero fields of cfg get the
// defaults.
func NewCached(store KeyStore, cfg CacheConfig) *Cached {
	def := DefaultCacheConfig()
	if cfg.TTL <= 0 {
		cfg.TTL = def.TTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = def.MaxEntries
	}
	return &Cached{
		store:   store,
		cfg:     cfg,
		now:     time.Now,
		entries: make(map[[32]byte]*list.Element),
		lru:     list.New(),
	}
}

// Authenticate implements Authenticator. A store failure other than an
// unknown key is returned as is (e.g. unavailable: 503, not 401).
func (c *Cached) Authenticate(ctx context.Context, apiKey string) (Tenant, error) {
	if apiKey == "" || len(apiKey) > maxKeyLen {
		return Tenant{}, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(apiKey))
	now := c.now()

	c.mu.Lock()
	if el, ok := c.entries[h]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.tenant, nil
		}
		c.remove(el)
	}
	epoch := c.epoch
	c.mu.Unlock()

	owner, err := c.store.LookupKey(ctx, h)
	switch {
	case err == nil && owner.TenantID == "":
		return Tenant{}, errors.New("authn: key store returned a key without tenant")
	case apperr.KindOf(err) == apperr.KindNotFound:
		return Tenant{}, ErrUnauthenticated
	case err != nil:
		return Tenant{}, err
	}
	t := Tenant{ID: owner.TenantID, KeyID: owner.KeyID}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return t, nil // an eviction raced the lookup: answer, but do not cache
	}
	if el, ok := c.entries[h]; ok {
		c.remove(el)
	}
	c.entries[h] = c.lru.PushFront(&cacheEntry{hash: h, keyID: owner.KeyID, tenant: t, expires: now.Add(c.cfg.TTL)})
	for c.lru.Len() > c.cfg.MaxEntries {
		c.remove(c.lru.Back())
	}
	return t, nil
}

// Evict drops the key with keyID from the cache, or every key when keyID
// is "" (notices may have been lost). Lookups in flight do not refill the
// cache.
func (c *Cached) Evict(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if keyID == "" {
		clear(c.entries)
		c.lru.Init()
		return
	}
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).keyID == keyID {
			c.remove(el)
		}
		el = next
	}
}

// Len is the number of cached keys.
func (c *Cached) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cached) remove(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).hash)
	c.lru.Remove(el)
}
