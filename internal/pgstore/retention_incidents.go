package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// incidentExists is nil when the incident is one of the tenant's, else
// apperr.KindNotFound naming the request field "id": a hold or bundle of
// an unknown incident is refused when it is asked for, not found out by
// every later retention pass.
func (s *Store) incidentExists(ctx context.Context, tenantID, incidentID string) error {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM incidents WHERE tenant_id = $1 AND id = $2`, tenantID, incidentID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return &apperr.Error{Kind: apperr.KindNotFound, Field: "id", Message: fmt.Sprintf("id: incident %q not found", incidentID)}
	}
	if err != nil {
		return dbErr(err, "get incident")
	}
	return nil
}

// IncidentSelection is what a hold or bundle of incident scope selects: the
// containers (short ids) and pods of the incident's events, as they are now
// (an open incident's hold picks up containers that join it later). An
// unknown incident, or another tenant's, is apperr.KindNotFound.
func (s *Store) IncidentSelection(ctx context.Context, tenantID, incidentID string) (retention.Selection, error) {
	sel := retention.Selection{TenantID: tenantID}
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM incidents WHERE tenant_id = $1 AND id = $2`, tenantID, incidentID).Scan(&one)
	if err := oneRow(err, "get incident", "incident %q not found", incidentID); err != nil {
		return sel, err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT DISTINCT container_id, pod_uid FROM incident_events WHERE tenant_id = $1 AND incident_id = $2`, tenantID, incidentID)
	if err != nil {
		return sel, dbErr(err, "incident containers")
	}
	defer rows.Close()
	seenC, seenP := map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var c, p string
		if err := rows.Scan(&c, &p); err != nil {
			return sel, dbErr(err, "incident containers")
		}
		if c = events.ShortContainerID(c); c != "" && !seenC[c] {
			seenC[c] = true
			sel.Containers = append(sel.Containers, c)
		}
		if p != "" && !seenP[p] {
			seenP[p] = true
			sel.Pods = append(sel.Pods, p)
		}
	}
	if err := rows.Err(); err != nil {
		return sel, dbErr(err, "incident containers")
	}
	return sel, nil
}

// OpenedIncident is an incident a capture rule may fire on.
type OpenedIncident struct {
	TenantID     string
	ID           string
	Namespace    string
	Title        string
	FirstEventAt time.Time
	LastEventAt  time.Time
	OpenedAt     time.Time
}

// IncidentsOpenedSince returns the incidents of the tenants opened after
// since, oldest first, at most limit.
func (s *Store) IncidentsOpenedSince(ctx context.Context, tenants []string, since time.Time, limit int) ([]OpenedIncident, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT tenant_id, id, namespace, title, first_event_at, last_event_at, opened_at FROM incidents
		 WHERE tenant_id = ANY($1) AND opened_at > $2 ORDER BY opened_at, id LIMIT $3`, tenants, since, limit)
	if err != nil {
		return nil, dbErr(err, "incidents opened")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenedIncident, error) {
		var o OpenedIncident
		err := r.Scan(&o.TenantID, &o.ID, &o.Namespace, &o.Title, &o.FirstEventAt, &o.LastEventAt, &o.OpenedAt)
		return o, err
	})
	if err != nil {
		return nil, dbErr(err, "incidents opened")
	}
	return out, nil
}
