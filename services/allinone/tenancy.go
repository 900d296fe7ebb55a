package allinone

import (
	"context"
	"fmt"

	"github.com/grafana/dskit/services"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/limits"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/services/api"
)

// tenancy is how a process authenticates: with Postgres, API keys from
// pgstore behind a small cache that Postgres LISTEN/NOTIFY keeps honest
// (a revoked key is evicted at once, in every process); without Postgres,
// the dev key alone (authn.Static).
type tenancy struct {
	auth     authn.Authenticator
	store    *pgstore.Store              // the postgres module's; nil without Postgres
	cache    *authn.Cached               // nil without Postgres
	listener *pgstore.RevocationListener // nil without Postgres
}

// tenancyModule builds the authenticator of the gateway and the API. With
// Postgres it records the dev tenant and its key (by hash; a key revoked
// there stays revoked) and listens for revocations before it counts as
// started, so no revocation after start is missed.
func (a *App) tenancyModule() (services.Service, error) {
	start := func(ctx context.Context) error {
		var err error
		a.ten, err = a.openTenancy(ctx)
		return err
	}
	run := func(ctx context.Context) error {
		if a.ten.listener == nil {
			<-ctx.Done()
			return nil
		}
		return a.ten.listener.Run(ctx, a.ten.cache.Evict)
	}
	stop := func(error) error {
		if a.ten != nil && a.ten.listener != nil {
			_ = a.ten.listener.Close(context.Background())
		}
		return nil
	}
	return services.NewBasicService(start, run, stop), nil
}

func (a *App) openTenancy(ctx context.Context) (*tenancy, error) {
	if a.pg == nil {
		return &tenancy{auth: authn.NewStatic(map[string]authn.Tenant{a.cfg.DevAPIKey: {ID: a.cfg.DevTenantID}})}, nil
	}
	t := &tenancy{store: a.pg}
	if err := a.ensureDevKey(ctx, a.pg); err != nil {
		return nil, err
	}
	t.cache = authn.NewCached(a.pg, a.cfg.AuthCache)
	t.auth = t.cache
	for _, c := range t.cache.Collectors() {
		if err := a.deps.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("tenancy: registering metrics: %w", err)
		}
	}
	var err error
	if t.listener, err = a.pg.ListenRevocations(ctx, a.log.With("component", "authn")); err != nil {
		return nil, fmt.Errorf("tenancy: %w", err)
	}
	return t, nil
}

// ensureDevKey records the dev tenant and, if configured, the dev key.
func (a *App) ensureDevKey(ctx context.Context, store *pgstore.Store) error {
	if _, err := store.EnsureTenant(ctx, a.cfg.DevTenantID, a.cfg.DevTenantID); err != nil {
		return fmt.Errorf("dev tenant: %w", err)
	}
	if a.cfg.DevAPIKey == "" {
		return nil
	}
	k, err := store.EnsureKey(ctx, a.cfg.DevTenantID, a.cfg.DevAPIKey, "dev key")
	switch {
	case err != nil:
		return fmt.Errorf("dev api key: %w", err)
	case k.RevokedAt != nil:
		a.log.Warn("the dev API key is revoked in Postgres and will be refused; configure another", "key_id", k.ID)
	case k.TenantID != a.cfg.DevTenantID:
		a.log.Warn("the dev API key belongs to another tenant in Postgres", "key_id", k.ID, "tenant", k.TenantID)
	}
	return nil
}

// limitOverrides reads per-tenant rate limits from the tenancy store's
// pool, or is nil without Postgres (the configured defaults then apply).
func (t *tenancy) limitOverrides() limits.Source {
	if t.store == nil {
		return nil
	}
	return limits.Postgres{Pool: t.store.Pool()}
}

// admin is the store behind /admin/v1, or nil without Postgres.
func (t *tenancy) admin() api.Admin {
	if t.store == nil {
		return nil
	}
	return revokingAdmin{Store: t.store, cache: t.cache}
}

// revokingAdmin evicts a key from this process's cache as soon as it is
// revoked here, without waiting for the notification, and forgets that a
// key created here was unknown (keys created by other processes work at
// the latest authn.CacheConfig.NegativeTTL after a failed attempt).
type revokingAdmin struct {
	*pgstore.Store
	cache *authn.Cached
}

func (r revokingAdmin) CreateKey(ctx context.Context, tenantID, description string) (pgstore.CreatedKey, error) {
	k, err := r.Store.CreateKey(ctx, tenantID, description)
	if err == nil {
		r.cache.KeyCreated(k.Key)
	}
	return k, err
}

func (r revokingAdmin) RevokeKey(ctx context.Context, id string) (pgstore.APIKey, error) {
	k, err := r.Store.RevokeKey(ctx, id)
	if err == nil {
		r.cache.Evict(k.ID)
	}
	return k, err
}
