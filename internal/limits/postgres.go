package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres reads overrides from the tenant_limits table
// (migrations/postgres/000003_tenant_limits.up.sql, 000008) and each
// tenant's longest retention policy.
type Postgres struct{ Pool *pgxpool.Pool }

var _ Source = Postgres{}

const overridesSQL = `SELECT coalesce(l.tenant_id, p.tenant_id), l.records_per_second, l.records_burst,
       l.bytes_per_second, l.bytes_burst, l.max_record_age_seconds, l.max_future_seconds, p.days
FROM tenant_limits l
FULL JOIN (SELECT tenant_id, max(days)::BIGINT AS days FROM retention_policies GROUP BY tenant_id) p
  ON p.tenant_id = l.tenant_id`

// Overrides returns every tenant's row.
func (p Postgres) Overrides(ctx context.Context) (map[string]Override, error) {
	rows, err := p.Pool.Query(ctx, overridesSQL)
	if err != nil {
		return nil, fmt.Errorf("query tenant_limits: %w", err)
	}
	defer rows.Close()
	out := map[string]Override{}
	for rows.Next() {
		var (
			id             string
			o              Override
			maxAge, future *int64
		)
		if err := rows.Scan(&id, &o.RecordsPerSecond, &o.RecordsBurst, &o.BytesPerSecond, &o.BytesBurst,
			&maxAge, &future, &o.PolicyDays); err != nil {
			return nil, fmt.Errorf("scan tenant_limits: %w", err)
		}
		o.MaxAge, o.MaxFuture = seconds(maxAge), seconds(future)
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenant_limits: %w", err)
	}
	return out, nil
}

// seconds converts a nullable column of seconds.
func seconds(v *int64) *time.Duration {
	if v == nil {
		return nil
	}
	d := time.Duration(min(*v, int64(1<<40))) * time.Second
	return &d
}
