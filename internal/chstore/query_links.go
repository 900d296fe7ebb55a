package chstore

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/events"
)

const eventLinksSQL = `SELECT lower(hex(trace_id)) AS tid, event_time_unix_nano, trace_start_unix_nano, trace_duration_ns,
    match_kind, span_count, root_service, root_name, failed, business_transaction,
    business_key_names, business_key_values, linked_at_unix_nano, retention_class
FROM event_links
WHERE tenant_id = ? AND event_id = unhex(?)
ORDER BY trace_start_unix_nano, tid, linked_at_unix_nano DESC
LIMIT 1 BY trace_id
LIMIT ?`

// LinksOfEvent returns the traces linked to one event (each once, the
// latest link row wins), by trace start, at most limit.
func (s *Store) LinksOfEvent(ctx context.Context, tenantID string, eventID events.ID, limit int) ([]EventLink, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, eventLinksSQL, tenantID, eventID.String(), limit)
	if err != nil {
		return nil, readErr(ctx, "links of event", err)
	}
	defer rows.Close()
	out := []EventLink{}
	for rows.Next() {
		l := EventLink{TenantID: tenantID, EventID: eventID}
		var (
			tid    string
			failed uint8
		)
		if err := rows.Scan(&tid, &l.EventTimeNs, &l.TraceStartNs, &l.TraceDurationNs, &l.MatchKind, &l.SpanCount,
			&l.RootService, &l.RootName, &failed, &l.BusinessTransaction, &l.BusinessKeyNames, &l.BusinessKeyValues,
			&l.LinkedAtNs, &l.Class); err != nil {
			return nil, readErr(ctx, "links of event: scan", err)
		}
		if err := decodeHexID(l.TraceID[:], tid); err != nil {
			return nil, fmt.Errorf("links of event: %w", err)
		}
		l.Failed = failed == 1
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "links of event: read", err)
	}
	return out, nil
}

// TraceEvent is one event linked to a trace.
type TraceEvent struct {
	EventID      events.ID
	TimeNs       uint64
	Source       string
	Type         string
	Severity     uint8
	Reason       string
	Message      string
	ContainerID  string
	PodUID       string
	PodName      string
	Namespace    string
	MatchKind    string
	SpanCount    uint32
	EventMissing bool // the link exists but the event row was not found (e.g. expired)
}

const traceEventIDsSQL = `SELECT lower(hex(event_id)) AS eid, event_time_unix_nano
FROM trace_event_index
WHERE tenant_id = ? AND trace_id = unhex(?)
ORDER BY event_time_unix_nano, eid
LIMIT 1 BY event_id
LIMIT ?`

const traceEventLinksSQL = `SELECT lower(hex(event_id)), match_kind, span_count
FROM event_links
WHERE tenant_id = ? AND has(?, lower(hex(event_id))) AND trace_id = unhex(?)
ORDER BY linked_at_unix_nano DESC
LIMIT 1 BY event_id`

const traceEventRowsSQL = `SELECT lower(hex(event_id)), time_unix_nano, source, type, severity, reason, message,
    container_id, k8s_pod_uid, k8s_pod_name, k8s_namespace_name
FROM container_events
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?) AND has(?, lower(hex(event_id)))
LIMIT 1 BY event_id`

// EventsOfTrace returns the events linked to a trace, by event time, at
// most limit.
func (s *Store) EventsOfTrace(ctx context.Context, tenantID string, traceID [16]byte, limit int) ([]TraceEvent, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	tidHex := hex.EncodeToString(traceID[:])
	rows, err := s.conn.Query(ctx, traceEventIDsSQL, tenantID, tidHex, limit)
	if err != nil {
		return nil, readErr(ctx, "events of trace", err)
	}
	var (
		out   = []TraceEvent{}
		ids   []string
		byID  = map[string]*TraceEvent{}
		lo    = ^uint64(0)
		hi    uint64
		order []string
	)
	for rows.Next() {
		var (
			eid string
			ts  uint64
		)
		if err := rows.Scan(&eid, &ts); err != nil {
			rows.Close()
			return nil, readErr(ctx, "events of trace: scan", err)
		}
		ids, order = append(ids, eid), append(order, eid)
		lo, hi = min(lo, ts), max(hi, ts)
		byID[eid] = &TraceEvent{TimeNs: ts, EventMissing: true}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, readErr(ctx, "events of trace: read", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	for id, te := range byID {
		if err := decodeHexID(te.EventID[:], id); err != nil {
			return nil, fmt.Errorf("events of trace: %w", err)
		}
	}
	if err := s.fillTraceEventLinks(ctx, tenantID, tidHex, ids, byID); err != nil {
		return nil, err
	}
	if err := s.fillTraceEventRows(ctx, tenantID, ids, lo, hi, byID); err != nil {
		return nil, err
	}
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

func (s *Store) fillTraceEventLinks(ctx context.Context, tenantID, tidHex string, ids []string, byID map[string]*TraceEvent) error {
	rows, err := s.conn.Query(ctx, traceEventLinksSQL, tenantID, ids, tidHex)
	if err != nil {
		return readErr(ctx, "events of trace: links", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			eid, kind string
			n         uint32
		)
		if err := rows.Scan(&eid, &kind, &n); err != nil {
			return readErr(ctx, "events of trace: scan link", err)
		}
		if te := byID[eid]; te != nil {
			te.MatchKind, te.SpanCount = kind, n
		}
	}
	return rows.Err()
}

func (s *Store) fillTraceEventRows(ctx context.Context, tenantID string, ids []string, lo, hi uint64, byID map[string]*TraceEvent) error {
	rows, err := s.conn.Query(ctx, traceEventRowsSQL, tenantID, nsSeconds(lo, -1), nsSeconds(hi, 1), ids)
	if err != nil {
		return readErr(ctx, "events of trace: events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			eid string
			r   TraceEvent
		)
		if err := rows.Scan(&eid, &r.TimeNs, &r.Source, &r.Type, &r.Severity, &r.Reason, &r.Message,
			&r.ContainerID, &r.PodUID, &r.PodName, &r.Namespace); err != nil {
			return readErr(ctx, "events of trace: scan event", err)
		}
		te := byID[eid]
		if te == nil {
			continue
		}
		r.EventID, r.MatchKind, r.SpanCount = te.EventID, te.MatchKind, te.SpanCount
		*te = r
	}
	return rows.Err()
}
