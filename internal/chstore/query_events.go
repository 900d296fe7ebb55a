package chstore

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// EventQuery selects container events for SearchEvents. Zero values of
// the filters mean "any".
type EventQuery struct {
	TenantID string
	// ContainerID is a normalized container id, full or Falco's 12-char
	// short form: events match on the first 12 characters, so both forms
	// find the same events.
	ContainerID string
	PodUID      string // exact
	Namespace   string // exact
	Type        string // exact, an events.Type* value
	MinSeverity uint8  // severity >= MinSeverity
	Start, End  time.Time
	Limit       int          // <= 0: DefaultSearchLimit
	Cursor      *EventCursor // if set, only events after it in the result order
}

// EventCursor is the position of the last event of a page. The result
// order is (time, event id) descending.
type EventCursor struct {
	TimeNs uint64
	ID     events.ID
}

const eventColumnsSQL = `lower(hex(event_id)) AS eid, time_unix_nano, observed_time_unix_nano, source, type,
    severity, severity_text, reason, message, container_id, container_name, k8s_pod_uid, k8s_pod_name,
    k8s_namespace_name, k8s_node_name, workload, image, process_name, process_cmdline, user_name, exit_code,
    tags, field_keys, field_values`

// scanner is what rows.Scan and row.Scan have in common.
type scanner interface{ Scan(dest ...any) error }

func scanEvent(sc scanner, tenantID string) (events.Event, error) {
	e := events.Event{TenantID: tenantID}
	var eid string
	err := sc.Scan(&eid, &e.TimeUnixNano, &e.ObservedUnixNano, &e.Source, &e.Type,
		&e.Severity, &e.SeverityText, &e.Reason, &e.Message, &e.ContainerID, &e.ContainerName, &e.PodUID, &e.PodName,
		&e.Namespace, &e.NodeName, &e.Workload, &e.Image, &e.ProcessName, &e.ProcessCmdline, &e.UserName, &e.ExitCode,
		&e.Tags, &e.FieldKeys, &e.FieldValues)
	if err != nil {
		return e, err
	}
	if err := decodeHexID(e.ID[:], eid); err != nil {
		return e, err
	}
	return e, nil
}

// SearchEvents returns the tenant's container events matching q, newest
// first (ties by event id, descending), each once, after q.Cursor if set.
func (s *Store) SearchEvents(ctx context.Context, q EventQuery) ([]events.Event, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	switch {
	case q.Start.IsZero() || q.End.IsZero():
		return nil, apperr.Invalid("start", "a time window is required")
	case q.End.Before(q.Start):
		return []events.Event{}, nil
	}
	startSec, endSec := unixSeconds(q.Start), unixSeconds(q.End)
	var sb strings.Builder
	sb.WriteString("SELECT " + eventColumnsSQL + `
FROM container_events
WHERE tenant_id = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND time_unix_nano BETWEEN ? AND ?`)
	args := []any{q.TenantID,
		dateString(time.Unix(int64(startSec), 0)), dateString(time.Unix(int64(endSec), 0)),
		startSec, endSec, unixNanos(q.Start), unixNanos(q.End)}
	if c := otlpconv.NormalizeContainerID(q.ContainerID); c != "" {
		sb.WriteString("\n  AND container_id_short = ?")
		args = append(args, events.ShortContainerID(c))
	}
	for _, f := range []struct{ col, v string }{
		{"k8s_pod_uid", q.PodUID}, {"k8s_namespace_name", q.Namespace}, {"type", q.Type},
	} {
		if f.v != "" {
			sb.WriteString("\n  AND " + f.col + " = ?") // column names from this closed list only
			args = append(args, f.v)
		}
	}
	if q.MinSeverity > 0 {
		sb.WriteString("\n  AND severity >= ?")
		args = append(args, q.MinSeverity)
	}
	if c := q.Cursor; c != nil {
		sb.WriteString("\n  AND (time_unix_nano < ? OR (time_unix_nano = ? AND eid < ?))")
		args = append(args, c.TimeNs, c.TimeNs, c.ID.String())
	}
	sb.WriteString(`
ORDER BY time_unix_nano DESC, eid DESC
LIMIT 1 BY eid
LIMIT ?`)
	args = append(args, limit)
	return s.queryEvents(ctx, "search events", q.TenantID, sb.String(), args)
}

func (s *Store) queryEvents(ctx context.Context, op, tenantID, query string, args []any) ([]events.Event, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, op, err)
	}
	defer rows.Close()
	out := []events.Event{}
	for rows.Next() {
		e, err := scanEvent(rows, tenantID)
		if err != nil {
			return nil, readErr(ctx, op+": scan", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, op+": read", err)
	}
	return out, nil
}

const getEventSQL = "SELECT " + eventColumnsSQL + `
FROM container_events
WHERE tenant_id = ? AND event_id = unhex(?)
LIMIT 1`

// GetEvent returns one event of the tenant; an unknown id is an apperr
// KindNotFound.
func (s *Store) GetEvent(ctx context.Context, tenantID string, id events.ID) (events.Event, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	evs, err := s.queryEvents(ctx, "get event", tenantID, getEventSQL, []any{tenantID, hex.EncodeToString(id[:])})
	if err != nil {
		return events.Event{}, err
	}
	if len(evs) == 0 {
		return events.Event{}, apperr.New(apperr.KindNotFound, "event %s not found", id)
	}
	return evs[0], nil
}

// eventsOfContainer reads the events of one container (by the 12-char
// prefix) and, when podUID is set, the pod-level events of its pod (those
// without a container id), in [startNs, endNs], oldest first.
func (s *Store) eventsOfContainer(ctx context.Context, tenantID, short, podUID string, startNs, endNs uint64, limit int) ([]events.Event, error) {
	startSec, endSec := nsSeconds(startNs, -1), nsSeconds(endNs, 1)
	where := "container_id_short = ?"
	args := []any{tenantID,
		dateString(time.Unix(int64(startSec), 0)), dateString(time.Unix(int64(endSec), 0)),
		startSec, endSec, startNs, endNs, short}
	if podUID != "" {
		where = "(container_id_short = ? OR (container_id = '' AND k8s_pod_uid = ?))"
		args = append(args, podUID)
	}
	query := "SELECT " + eventColumnsSQL + `
FROM container_events
WHERE tenant_id = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND time_unix_nano BETWEEN ? AND ?
  AND ` + where + `
ORDER BY time_unix_nano, eid
LIMIT 1 BY eid
LIMIT ?`
	args = append(args, limit)
	return s.queryEvents(ctx, "container timeline: events", tenantID, query, args)
}
