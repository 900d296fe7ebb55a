package pgstore

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// TimeBounds are a tenant's overrides of the gateway's window of record
// times (tenant_limits, migrations/postgres/000008); nil keeps the default.
type TimeBounds struct {
	MaxAge    *time.Duration // 0: the tenant's longest retention
	MaxFuture *time.Duration // 0: no bound
}

// SetTimeBounds stores tenantID's time bounds; nil fields are reset to the
// default. Gateways pick the change up at their next refresh
// (--tenant-limits-refresh).
func (s *Store) SetTimeBounds(ctx context.Context, tenantID string, b TimeBounds) error {
	secs := func(d *time.Duration) *int64 {
		if d == nil {
			return nil
		}
		v := int64(*d / time.Second)
		return &v
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO tenant_limits (tenant_id, max_record_age_seconds, max_future_seconds)
SELECT id, $2, $3 FROM tenants WHERE id = $1
ON CONFLICT (tenant_id) DO UPDATE SET max_record_age_seconds = EXCLUDED.max_record_age_seconds,
    max_future_seconds = EXCLUDED.max_future_seconds, updated_at = now()`, tenantID, secs(b.MaxAge), secs(b.MaxFuture))
	if err != nil {
		return dbErr(err, "set tenant time bounds")
	}
	if tag.RowsAffected() == 0 {
		return apperr.New(apperr.KindNotFound, "tenant %q not found", tenantID)
	}
	return nil
}
