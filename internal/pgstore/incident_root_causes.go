package pgstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// IncidentRootCauses is the stored RCA result of an incident (migration
// 000006): Result is the JSON document of the analysis.
type IncidentRootCauses struct {
	IncidentID  string
	TenantID    string
	WindowStart time.Time
	WindowEnd   time.Time
	ComputedAt  time.Time
	Result      json.RawMessage
}

// GetIncidentRootCauses returns the stored root causes of an incident of
// the tenant; none stored is apperr.KindNotFound.
func (s *Store) GetIncidentRootCauses(ctx context.Context, tenantID, incidentID string) (IncidentRootCauses, error) {
	var rc IncidentRootCauses
	err := s.pool.QueryRow(ctx, `SELECT incident_id, tenant_id, window_start, window_end, computed_at, result
		FROM incident_root_causes WHERE tenant_id = $1 AND incident_id = $2`, tenantID, incidentID).
		Scan(&rc.IncidentID, &rc.TenantID, &rc.WindowStart, &rc.WindowEnd, &rc.ComputedAt, &rc.Result)
	return rc, oneRow(err, "get incident root causes", "no root causes stored for incident %q", incidentID)
}

// SaveIncidentRootCauses stores (or replaces) the root causes of an
// incident of the tenant; ComputedAt zero means now. An unknown incident
// is apperr.KindNotFound.
func (s *Store) SaveIncidentRootCauses(ctx context.Context, rc IncidentRootCauses) (IncidentRootCauses, error) {
	if rc.ComputedAt.IsZero() {
		rc.ComputedAt = time.Now()
	}
	rc.ComputedAt = rc.ComputedAt.UTC().Truncate(time.Microsecond)
	tag, err := s.pool.Exec(ctx, `INSERT INTO incident_root_causes (incident_id, tenant_id, window_start, window_end, computed_at, result)
		SELECT id, tenant_id, $3, $4, $5, $6 FROM incidents WHERE tenant_id = $1 AND id = $2
		ON CONFLICT (incident_id) DO UPDATE SET window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
			computed_at = EXCLUDED.computed_at, result = EXCLUDED.result`,
		rc.TenantID, rc.IncidentID, rc.WindowStart, rc.WindowEnd, rc.ComputedAt, []byte(rc.Result))
	if err != nil {
		return rc, dbErr(err, "save incident root causes")
	}
	if tag.RowsAffected() == 0 {
		return rc, oneRow(pgx.ErrNoRows, "save incident root causes", "incident %q not found", rc.IncidentID)
	}
	return rc, nil
}
