package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

// IncidentRules is a tenant's rule for opening incidents (migration
// 000007); it replaces the correlator's flag defaults for that tenant.
type IncidentRules struct {
	MinSeverity     uint8    // events at or above open an incident (OTLP severity number)
	EventTypes      []string // events of these types open one whatever their severity
	AnomalyMinScore float64  // an anomaly whose top candidate scores at least this opens one; 0: never
	UpdatedAt       time.Time
}

// Bounds of IncidentRules.
const (
	MaxIncidentRuleTypes = 16
	MaxAnomalyMinScore   = 1000
)

// IncidentEventTypes are the event types a rule may name.
var IncidentEventTypes = []string{
	events.TypeSecurityAlert, events.TypeOOMKilled, events.TypeCrashLoop, events.TypeContainerError,
	events.TypeEvicted, events.TypeImagePullFailed, events.TypeK8sEvent,
}

// Validate names the first bad field (apperr KindInvalid).
func (r IncidentRules) Validate() error {
	if r.MinSeverity < 1 || r.MinSeverity > 24 {
		return apperr.Invalid("minSeverity", "must be an OTLP severity number from 1 to 24 (13 warning, 17 error, 18 critical)")
	}
	if len(r.EventTypes) > MaxIncidentRuleTypes {
		return apperr.Invalid("eventTypes", "at most %d types", MaxIncidentRuleTypes)
	}
	for i, t := range r.EventTypes {
		field := fmt.Sprintf("eventTypes[%d]", i)
		if !slices.Contains(IncidentEventTypes, t) {
			return apperr.Invalid(field, "must be one of %v", IncidentEventTypes)
		}
		if slices.Contains(r.EventTypes[:i], t) {
			return apperr.Invalid(field, "is listed twice")
		}
	}
	if math.IsNaN(r.AnomalyMinScore) || r.AnomalyMinScore < 0 || r.AnomalyMinScore > MaxAnomalyMinScore {
		return apperr.Invalid("anomalyMinScore", "must be a number from 0 (anomalies never open incidents) to %d", MaxAnomalyMinScore)
	}
	return nil
}

// IncidentRules returns the tenant's rules; ok is false when the tenant
// has none (the correlator's defaults apply).
func (s *Store) IncidentRules(ctx context.Context, tenantID string) (IncidentRules, bool, error) {
	var (
		r   IncidentRules
		sev int16
	)
	err := s.pool.QueryRow(ctx, `SELECT min_severity, event_types, anomaly_min_score, updated_at
		FROM incident_rules WHERE tenant_id = $1`, tenantID).Scan(&sev, &r.EventTypes, &r.AnomalyMinScore, &r.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return IncidentRules{}, false, nil
	case err != nil:
		return IncidentRules{}, false, dbErr(err, "get incident rules")
	}
	r.MinSeverity = uint8(sev)
	if r.EventTypes == nil {
		r.EventTypes = []string{}
	}
	return r, true, nil
}

// SetIncidentRules stores (or replaces) the tenant's rules, validated.
func (s *Store) SetIncidentRules(ctx context.Context, tenantID string, r IncidentRules) (IncidentRules, error) {
	if err := r.Validate(); err != nil {
		return IncidentRules{}, err
	}
	if r.EventTypes == nil {
		r.EventTypes = []string{}
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO incident_rules (tenant_id, min_severity, event_types, anomaly_min_score, updated_at)
		VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (tenant_id) DO UPDATE SET min_severity = EXCLUDED.min_severity, event_types = EXCLUDED.event_types,
			anomaly_min_score = EXCLUDED.anomaly_min_score, updated_at = EXCLUDED.updated_at
		RETURNING updated_at`, tenantID, int16(r.MinSeverity), r.EventTypes, r.AnomalyMinScore).Scan(&r.UpdatedAt)
	if err != nil {
		return IncidentRules{}, dbErr(err, "set incident rules")
	}
	return r, nil
}
