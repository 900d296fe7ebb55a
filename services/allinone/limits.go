package allinone

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aftertrace/aftertrace/internal/limits"
)

// openLimitOverrides returns the per-tenant rate limit overrides of the
// Postgres tenant_limits table for the gateway, or nil without Postgres or
// gateway (the configured defaults then apply to every tenant). The pool
// connects lazily; close must be called.
func (a *App) openLimitOverrides(ctx context.Context) (src limits.Source, close func(), err error) {
	if a.cfg.PostgresDSN == "" || !a.cfg.Roles.Gateway {
		return nil, func() {}, nil
	}
	pcfg, err := pgxpool.ParseConfig(a.cfg.PostgresDSN)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	pcfg.MaxConns = 2 // one small query per refresh interval
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	return limits.Postgres{Pool: pool}, pool.Close, nil
}
