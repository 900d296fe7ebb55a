package chstore

import (
	"context"
	"encoding/hex"
	"errors"
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

// eventsLinksSQL reads the links of a batch of events in one query: each
// (event, trace) once (the latest link row wins), at most ? per event by
// trace start, at most ? in all. The ids are bound as one array of hex
// strings; the IN subquery lets the primary key (tenant_id, event_id, ...)
// pick the granules.
const eventsLinksSQL = `SELECT eid, tid, event_time_unix_nano, trace_start_unix_nano, trace_duration_ns,
    match_kind, span_count, root_service, root_name, failed, business_transaction,
    business_key_names, business_key_values, linked_at_unix_nano, retention_class
FROM (
    SELECT lower(hex(event_id)) AS eid, lower(hex(trace_id)) AS tid, event_time_unix_nano, trace_start_unix_nano,
        trace_duration_ns, match_kind, span_count, root_service, root_name, failed, business_transaction,
        business_key_names, business_key_values, linked_at_unix_nano, retention_class
    FROM event_links
    WHERE tenant_id = ? AND event_id IN (SELECT toFixedString(unhex(arrayJoin(?)), 16))
    ORDER BY eid, trace_start_unix_nano, tid, linked_at_unix_nano DESC
    LIMIT 1 BY event_id, trace_id
)
ORDER BY eid, trace_start_unix_nano, tid
LIMIT ? BY eid
LIMIT ?`

// eventsLinksBatch is how many event ids one query of LinksOfEvents binds
// (~35 bytes each in the SQL text, well under ClickHouse's 256 KiB
// max_query_size).
const eventsLinksBatch = 2000

// LinksOfEvents is LinksOfEvent for many events in one query per
// eventsLinksBatch ids (an incident's events: one query, not one per
// event): the links of each event (each trace once, by trace start, at
// most perEvent), at most total in all; truncated reports that total cut
// the answer.
func (s *Store) LinksOfEvents(ctx context.Context, tenantID string, ids []events.ID, perEvent, total int) (links map[events.ID][]EventLink, truncated bool, err error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	links = map[events.ID][]EventLink{}
	hexIDs := make([]string, 0, len(ids))
	seen := make(map[events.ID]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			hexIDs = append(hexIDs, id.String())
		}
	}
	budget := total
	for len(hexIDs) > 0 && !truncated {
		batch := hexIDs[:min(len(hexIDs), eventsLinksBatch)]
		hexIDs = hexIDs[len(batch):]
		n, more, err := s.linksOfEventsBatch(ctx, tenantID, batch, perEvent, budget, links)
		if err != nil {
			return nil, false, err
		}
		budget -= n
		truncated = more
	}
	return links, truncated, nil
}

// linksOfEventsBatch adds the links of ids (hex) to into, at most budget;
// more reports that there were more.
func (s *Store) linksOfEventsBatch(ctx context.Context, tenantID string, ids []string, perEvent, budget int, into map[events.ID][]EventLink) (n int, more bool, err error) {
	rows, err := s.conn.Query(ctx, eventsLinksSQL, tenantID, ids, uint64(max(perEvent, 0)), uint64(max(budget, 0))+1)
	if err != nil {
		return 0, false, readErr(ctx, "links of events", err)
	}
	defer rows.Close()
	for rows.Next() {
		if n == budget {
			return n, true, nil
		}
		l := EventLink{TenantID: tenantID}
		var (
			eid, tid string
			failed   uint8
		)
		if err := rows.Scan(&eid, &tid, &l.EventTimeNs, &l.TraceStartNs, &l.TraceDurationNs, &l.MatchKind, &l.SpanCount,
			&l.RootService, &l.RootName, &failed, &l.BusinessTransaction, &l.BusinessKeyNames, &l.BusinessKeyValues,
			&l.LinkedAtNs, &l.Class); err != nil {
			return n, false, readErr(ctx, "links of events: scan", err)
		}
		if err := errors.Join(decodeHexID(l.EventID[:], eid), decodeHexID(l.TraceID[:], tid)); err != nil {
			return n, false, fmt.Errorf("links of events: %w", err)
		}
		l.Failed = failed == 1
		into[l.EventID] = append(into[l.EventID], l)
		n++
	}
	if err := rows.Err(); err != nil {
		return n, false, readErr(ctx, "links of events: read", err)
	}
	return n, false, nil
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
