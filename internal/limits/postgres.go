package limits

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres reads overrides from the tenant_limits table
// (migrations/postgres/000003_tenant_limits.up.sql).
type Postgres struct{ Pool *pgxpool.Pool }

var _ Source = Postgres{}

const overridesSQL = `SELECT tenant_id, records_per_second, records_burst, bytes_per_second, bytes_burst
FROM tenant_limits`

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
			id string
			o  Override
		)
		if err := rows.Scan(&id, &o.RecordsPerSecond, &o.RecordsBurst, &o.BytesPerSecond, &o.BytesBurst); err != nil {
			return nil, fmt.Errorf("scan tenant_limits: %w", err)
		}
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenant_limits: %w", err)
	}
	return out, nil
}
