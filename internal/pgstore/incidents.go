package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Incident statuses.
const (
	IncidentOpen         = "open"
	IncidentAcknowledged = "acknowledged"
	IncidentResolved     = "resolved"
)

// Incident kinds: what opened the incident.
const (
	IncidentKindEvent   = "event"   // a container event crossed the severity rule
	IncidentKindAnomaly = "anomaly" // the correlator's root-cause analysis found an anomaly above the score threshold
)

// Outcomes of RecordIncidentEvent.
const (
	IncidentOutcomeOpened  = "opened"  // the event opened a new incident
	IncidentOutcomeGrouped = "grouped" // the event joined an active incident
	IncidentOutcomeKnown   = "known"   // the event was already recorded (re-delivery)
	IncidentOutcomeNone    = "none"    // below the rule and nothing related: no incident
)

// Incident is a group of related events with a status.
type Incident struct {
	ID             string
	TenantID       string
	Kind           string // IncidentKindEvent or IncidentKindAnomaly
	Title          string
	Status         string
	Severity       uint8
	Namespace      string
	Workload       string
	Services       []string // services of the incident's events (the service-graph grouping key)
	FirstEventAt   time.Time
	LastEventAt    time.Time
	OpenedAt       time.Time
	UpdatedAt      time.Time
	AcknowledgedAt *time.Time
	AcknowledgedBy string
	ResolvedAt     *time.Time
	ResolvedBy     string
	EventCount     int
}

// IncidentEvent is one event of an incident.
type IncidentEvent struct {
	EventID     string // lower-case hex
	EventTime   time.Time
	Type        string
	Severity    uint8
	Reason      string
	Namespace   string
	Workload    string
	PodName     string
	PodUID      string
	ContainerID string
	// Score and Summary describe an anomaly record (Type "anomaly"): the
	// root-cause candidate's score and its evidence in plain language.
	Score   float64
	Summary string
}

// IncidentChange is one entry of an incident's history.
type IncidentChange struct {
	At     time.Time
	Actor  string
	Action string // open, acknowledge, resolve
	From   string
	To     string
	Note   string
}

// IncidentInput is an event the correlator offers for grouping.
type IncidentInput struct {
	TenantID string
	Kind     string // of an incident this opens; "" is IncidentKindEvent
	Event    IncidentEvent
	// Services is the event's own service(s); Neighbors the services
	// directly connected to them in the service graph of its traces.
	Services  []string
	Neighbors []string
	Opens     bool          // the event crosses the severity rule: it may open an incident
	Title     string        // title of an incident it opens
	Window    time.Duration // events this close to an incident's events are "overlapping in time"
}

const incidentColumns = `i.id, i.tenant_id, i.title, i.status, i.severity, i.namespace, i.workload, i.services,
    i.first_event_at, i.last_event_at, i.opened_at, i.updated_at, i.acknowledged_at, coalesce(i.acknowledged_by, ''),
    i.resolved_at, coalesce(i.resolved_by, ''), (SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id), i.kind`

func scanIncident(row pgx.Row) (Incident, error) {
	var (
		in  Incident
		sev int16
		n   int64
	)
	err := row.Scan(&in.ID, &in.TenantID, &in.Title, &in.Status, &sev, &in.Namespace, &in.Workload, &in.Services,
		&in.FirstEventAt, &in.LastEventAt, &in.OpenedAt, &in.UpdatedAt, &in.AcknowledgedAt, &in.AcknowledgedBy,
		&in.ResolvedAt, &in.ResolvedBy, &n, &in.Kind)
	in.Severity, in.EventCount = uint8(sev), int(n)
	return in, err
}

// RecordIncidentEvent groups one event: an event already recorded keeps
// its incident (idempotent); else it joins the oldest active (open or
// acknowledged) incident of the tenant that overlaps it in time (within
// in.Window) and is related (same namespace and workload, or sharing a
// service with the event's services and their neighbors); else, if
// in.Opens, it opens a new incident whose id is the event id. Decisions
// of one tenant are serialized (advisory lock).
func (s *Store) RecordIncidentEvent(ctx context.Context, in IncidentInput) (incidentID, outcome string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", "", dbErr(err, "record incident event")
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('incidents:' || $1))`, in.TenantID); err != nil {
		return "", "", dbErr(err, "record incident event: lock")
	}
	ev := &in.Event
	err = tx.QueryRow(ctx, `SELECT incident_id FROM incident_events WHERE tenant_id = $1 AND event_id = $2`,
		in.TenantID, ev.EventID).Scan(&incidentID)
	switch {
	case err == nil:
		return incidentID, IncidentOutcomeKnown, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return "", "", dbErr(err, "record incident event: lookup")
	}
	related := append(slices.Clone(in.Services), in.Neighbors...)
	err = tx.QueryRow(ctx, `SELECT id FROM incidents
		WHERE tenant_id = $1 AND status <> 'resolved'
		  AND first_event_at - $3::float8 * interval '1 second' <= $2 AND last_event_at + $3::float8 * interval '1 second' >= $2
		  AND ((namespace = $4 AND workload = $5 AND workload <> '') OR (cardinality($6::text[]) > 0 AND services && $6::text[]))
		ORDER BY opened_at, id LIMIT 1`,
		in.TenantID, ev.EventTime, in.Window.Seconds(), ev.Namespace, ev.Workload, related).Scan(&incidentID)
	switch {
	case err == nil:
		outcome = IncidentOutcomeGrouped
		if _, err := tx.Exec(ctx, `UPDATE incidents SET
			first_event_at = least(first_event_at, $2), last_event_at = greatest(last_event_at, $2),
			severity = greatest(severity, $3),
			services = ARRAY(SELECT DISTINCT unnest(services || $4::text[]) ORDER BY 1),
			updated_at = now()
			WHERE id = $1`, incidentID, ev.EventTime, int16(ev.Severity), nonNilStrings(in.Services)); err != nil {
			return "", "", dbErr(err, "record incident event: group")
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return "", "", dbErr(err, "record incident event: related")
	case !in.Opens:
		return "", IncidentOutcomeNone, nil
	default:
		outcome, incidentID = IncidentOutcomeOpened, ev.EventID
		kind := in.Kind
		if kind == "" {
			kind = IncidentKindEvent
		}
		services := slices.Clone(nonNilStrings(in.Services))
		slices.Sort(services)
		services = slices.Compact(services)
		if _, err := tx.Exec(ctx, `INSERT INTO incidents
			(id, tenant_id, kind, title, status, severity, namespace, workload, services, first_event_at, last_event_at)
			VALUES ($1, $2, $9, $3, 'open', $4, $5, $6, $7, $8, $8) ON CONFLICT (id) DO NOTHING`,
			incidentID, in.TenantID, in.Title, int16(ev.Severity), ev.Namespace, ev.Workload, services, ev.EventTime, kind); err != nil {
			return "", "", dbErr(err, "record incident event: open")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO incident_history (incident_id, actor, action, status_from, status_to, note)
			VALUES ($1, 'correlator', 'open', '', 'open', $2)`, incidentID, in.Title); err != nil {
			return "", "", dbErr(err, "record incident event: history")
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO incident_events
		(tenant_id, event_id, incident_id, event_time, type, severity, reason, namespace, workload, pod_name, pod_uid, container_id, score, summary)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (tenant_id, event_id) DO NOTHING`,
		in.TenantID, ev.EventID, incidentID, ev.EventTime, ev.Type, int16(ev.Severity), ev.Reason, ev.Namespace,
		ev.Workload, ev.PodName, ev.PodUID, ev.ContainerID, ev.Score, ev.Summary); err != nil {
		return "", "", dbErr(err, "record incident event: add")
	}
	if err := tx.Commit(ctx); err != nil {
		return "", "", dbErr(err, "record incident event: commit")
	}
	return incidentID, outcome, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// IncidentQuery selects incidents for ListIncidents.
type IncidentQuery struct {
	TenantID string
	Status   string    // "" for any
	Start    time.Time // incidents whose events overlap [Start, End]
	End      time.Time
	Limit    int
	// After is the cursor: incidents opened before it (opened_at, id
	// descending).
	AfterOpened *time.Time
	AfterID     string
}

// ListIncidents returns incidents newest first (opened_at, id descending).
func (s *Store) ListIncidents(ctx context.Context, q IncidentQuery) ([]Incident, error) {
	limit := q.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	rows, err := s.pool.Query(ctx, `SELECT `+incidentColumns+` FROM incidents i
		WHERE i.tenant_id = $1 AND ($2 = '' OR i.status = $2)
		  AND i.last_event_at >= $3 AND i.first_event_at <= $4
		  AND ($5::timestamptz IS NULL OR (i.opened_at, i.id) < ($5::timestamptz, $6))
		ORDER BY i.opened_at DESC, i.id DESC LIMIT $7`,
		q.TenantID, q.Status, q.Start, q.End, q.AfterOpened, q.AfterID, limit)
	if err != nil {
		return nil, dbErr(err, "list incidents")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) { return scanIncident(r) })
	if err != nil {
		return nil, dbErr(err, "list incidents")
	}
	return out, nil
}

// GetIncident returns one incident of the tenant.
func (s *Store) GetIncident(ctx context.Context, tenantID, id string) (Incident, error) {
	in, err := scanIncident(s.pool.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents i WHERE i.tenant_id = $1 AND i.id = $2`, tenantID, id))
	return in, oneRow(err, "get incident", "incident %q not found", id)
}

// IncidentEvents returns the events of an incident by time (at most
// MaxPageSize).
func (s *Store) IncidentEvents(ctx context.Context, tenantID, id string) ([]IncidentEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, event_time, type, severity, reason, namespace, workload, pod_name, pod_uid, container_id, score, summary
		FROM incident_events WHERE tenant_id = $1 AND incident_id = $2 ORDER BY event_time, event_id LIMIT $3`, tenantID, id, MaxPageSize)
	if err != nil {
		return nil, dbErr(err, "incident events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IncidentEvent, error) {
		var (
			e   IncidentEvent
			sev int16
		)
		err := r.Scan(&e.EventID, &e.EventTime, &e.Type, &sev, &e.Reason, &e.Namespace, &e.Workload, &e.PodName, &e.PodUID, &e.ContainerID, &e.Score, &e.Summary)
		e.Severity = uint8(sev)
		return e, err
	})
	if err != nil {
		return nil, dbErr(err, "incident events")
	}
	return out, nil
}

// IncidentHistory returns the status changes of an incident, oldest first.
func (s *Store) IncidentHistory(ctx context.Context, id string) ([]IncidentChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, actor, action, status_from, status_to, note
		FROM incident_history WHERE incident_id = $1 ORDER BY id LIMIT $2`, id, MaxPageSize)
	if err != nil {
		return nil, dbErr(err, "incident history")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IncidentChange, error) {
		var c IncidentChange
		err := r.Scan(&c.At, &c.Actor, &c.Action, &c.From, &c.To, &c.Note)
		return c, err
	})
	if err != nil {
		return nil, dbErr(err, "incident history")
	}
	return out, nil
}

// SetIncidentStatus moves an incident to acknowledged or resolved and
// records who did it. Acknowledging an acknowledged incident or resolving
// a resolved one changes nothing; acknowledging a resolved incident is
// apperr.KindConflict.
func (s *Store) SetIncidentStatus(ctx context.Context, tenantID, id, status, actor, note string) (Incident, error) {
	var action string
	switch status {
	case IncidentAcknowledged:
		action = "acknowledge"
	case IncidentResolved:
		action = "resolve"
	default:
		return Incident{}, apperr.Invalid("status", "must be %q or %q", IncidentAcknowledged, IncidentResolved)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Incident{}, dbErr(err, "set incident status")
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	var cur string
	err = tx.QueryRow(ctx, `SELECT status FROM incidents WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, id).Scan(&cur)
	if err != nil {
		return Incident{}, oneRow(err, "set incident status", "incident %q not found", id)
	}
	switch {
	case cur == status:
		return s.GetIncident(ctx, tenantID, id)
	case cur == IncidentResolved:
		return Incident{}, apperr.New(apperr.KindConflict, "incident %s is resolved", id)
	}
	set := `acknowledged_at = now(), acknowledged_by = $3`
	if status == IncidentResolved {
		set = `resolved_at = now(), resolved_by = $3`
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE incidents SET status = $2, %s, updated_at = now() WHERE id = $1`, set),
		id, status, actor); err != nil {
		return Incident{}, dbErr(err, "set incident status")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO incident_history (incident_id, actor, action, status_from, status_to, note)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, actor, action, cur, status, note); err != nil {
		return Incident{}, dbErr(err, "set incident status: history")
	}
	if err := tx.Commit(ctx); err != nil {
		return Incident{}, dbErr(err, "set incident status: commit")
	}
	return s.GetIncident(ctx, tenantID, id)
}
