package chstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// LogRecord is one log record as read back for the query API.
type LogRecord struct {
	RecordID       [16]byte
	TimeNs         uint64 // as sent; 0 when the client left it unset
	ObservedNs     uint64
	SeverityNumber uint8
	SeverityText   string
	Body           string // text in the otlpconv encoding of BodyType
	BodyType       uint8  // otlpconv.Type* code
	TraceID        [16]byte
	SpanID         [8]byte
	Flags          uint32
	EventName      string
	Service        string
	ScopeName      string
	ScopeVersion   string
	Attributes     map[string]any // decoded with otlpconv.DecodeAttrs
	Resource       map[string]any // decoded with otlpconv.DecodeAttrs

	// Resource attributes promoted to their own columns.
	K8sPodUID        string
	K8sPodName       string
	K8sNamespaceName string
	K8sNodeName      string
	ContainerID      string
	K8sContainerName string

	DroppedAttributesCount uint32
}

// SortNs is the time the record is ordered and filtered by: its time, else
// its observed time.
func (r *LogRecord) SortNs() uint64 {
	if r.TimeNs != 0 {
		return r.TimeNs
	}
	return r.ObservedNs
}

// LogQuery selects log records for SearchLogs. Zero values of the filters
// mean "any".
type LogQuery struct {
	TenantID    string
	TraceID     [16]byte // all zeros: any
	SpanID      [8]byte  // all zeros: any
	Service     string   // exact service.name
	ContainerID string   // normalized container id or a prefix of it (Falco's 12-char short ids)
	PodUID      string   // exact k8s.pod.uid
	SeverityMin int      // severity_number >= SeverityMin
	Q           string   // case-insensitive substring of the body
	// Start and End bound the record time (inclusive). With a TraceID and
	// both zero, the window is the time range of that trace's logs, from
	// log_trace_index; otherwise both are required.
	Start, End time.Time
	Limit      int        // at most this many records; <= 0 means DefaultSearchLimit
	Cursor     *LogCursor // if set, only records after it in the result order
}

// LogCursor is the position of the last record of a page. The result order
// is (time, record id) descending, so the next page holds the records
// strictly before the cursor in that order.
type LogCursor struct {
	TimeNs   uint64
	RecordID [16]byte
}

// logTimeExpr is the sort time of a row (see LogRecord.SortNs).
const logTimeExpr = `if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano)`

const logTraceRangeSQL = `SELECT count(), min(start_time_unix_nano), max(end_time_unix_nano)
FROM log_trace_index
WHERE tenant_id = ? AND trace_id = unhex(?)`

const logColumnsSQL = `lower(hex(record_id)) AS rid, ` + logTimeExpr + ` AS ts,
    time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body, body_type,
    lower(hex(trace_id)), lower(hex(span_id)), flags, event_name, service_name, scope_name, scope_version,
    k8s_pod_uid, k8s_pod_name, k8s_namespace_name, k8s_node_name, container_id, k8s_container_name,
    attr_keys, attr_values, attr_types, resource_keys, resource_values, resource_types,
    dropped_attributes_count`

// SearchLogs returns the tenant's log records matching q, newest first (ties
// by record id, descending), each once, after q.Cursor if set.
//
// It reads in two steps: the page of (time, record id) keys comes from the
// filter columns alone, then the full rows of just those records are read.
// Re-delivered copies of a record share its id and its sort key, so they
// are adjacent in the page order: they are dropped before the page is cut
// and a keyset cursor never splits them across pages.
func (s *Store) SearchLogs(ctx context.Context, q LogQuery) ([]LogRecord, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	hasTrace := q.TraceID != [16]byte{}
	var startNs, endNs uint64
	var startSec, endSec uint32
	switch {
	case hasTrace && q.Start.IsZero() && q.End.IsZero():
		var tr traceRange
		if err := s.conn.QueryRow(ctx, logTraceRangeSQL, q.TenantID, hex.EncodeToString(q.TraceID[:])).
			Scan(&tr.count, &tr.startNs, &tr.endNs); err != nil {
			return nil, readErr(ctx, "search logs: trace time range", err)
		}
		if tr.count == 0 {
			return []LogRecord{}, nil
		}
		startNs, endNs = tr.startNs, max(tr.endNs, tr.startNs)
		startSec, endSec = nsSeconds(startNs, -1), nsSeconds(endNs, 1)
	case q.Start.IsZero() || q.End.IsZero():
		return nil, apperr.Invalid("start", "a time window is required without a trace id")
	case q.End.Before(q.Start):
		return []LogRecord{}, nil
	default:
		startNs, endNs = unixNanos(q.Start), unixNanos(q.End)
		startSec, endSec = unixSeconds(q.Start), unixSeconds(q.End)
	}

	where, args := logWhere(q, hasTrace, startNs, endNs, startSec, endSec)
	page, err := s.logPage(ctx, where, args, limit)
	if err != nil || len(page) == 0 {
		return page, err
	}
	return s.fillLogs(ctx, q.TenantID, page)
}

// logWhere is the WHERE clause of a log search (with the ts alias of the
// sort time) and its arguments.
func logWhere(q LogQuery, hasTrace bool, startNs, endNs uint64, startSec, endSec uint32) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`
WHERE tenant_id = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND ts BETWEEN ? AND ?`)
	args := []any{q.TenantID,
		dateString(time.Unix(int64(startSec), 0)), dateString(time.Unix(int64(endSec), 0)),
		startSec, endSec, startNs, endNs}
	if hasTrace {
		sb.WriteString("\n  AND trace_id = unhex(?)")
		args = append(args, hex.EncodeToString(q.TraceID[:]))
	}
	if q.SpanID != [8]byte{} {
		sb.WriteString("\n  AND span_id = unhex(?)")
		args = append(args, hex.EncodeToString(q.SpanID[:]))
	}
	if q.Service != "" {
		sb.WriteString("\n  AND service_name = ?")
		args = append(args, q.Service)
	}
	if c := otlpconv.NormalizeContainerID(q.ContainerID); c != "" {
		sb.WriteString("\n  AND startsWith(container_id, ?)")
		args = append(args, c)
	}
	if q.PodUID != "" {
		sb.WriteString("\n  AND k8s_pod_uid = ?")
		args = append(args, q.PodUID)
	}
	if q.SeverityMin > 0 {
		sb.WriteString("\n  AND severity_number >= ?")
		args = append(args, q.SeverityMin)
	}
	if q.Q != "" {
		sb.WriteString("\n  AND positionCaseInsensitiveUTF8(body, ?) > 0")
		args = append(args, q.Q)
	}
	if c := q.Cursor; c != nil {
		sb.WriteString("\n  AND (ts < ? OR (ts = ? AND rid < ?))")
		args = append(args, c.TimeNs, c.TimeNs, hex.EncodeToString(c.RecordID[:]))
	}
	return sb.String(), args
}

// logPage picks the keys of the page: the first limit distinct records in
// (time, id) descending order. It asks for a little more than limit with a
// plain top-N sort (cheap: ClickHouse keeps only the top rows) and drops
// adjacent copies; only when copies leave the page short while more rows
// exist does it fall back to LIMIT 1 BY, which sorts every matching row.
func (s *Store) logPage(ctx context.Context, where string, args []any, limit int) ([]LogRecord, error) {
	const keysSQL = "SELECT lower(hex(record_id)) AS rid, " + logTimeExpr + " AS ts\nFROM logs"
	ask := limit + limit/4 + 4
	page, rows, err := s.logKeys(ctx, keysSQL+where+"\nORDER BY ts DESC, rid DESC\nLIMIT ?", append(args, ask), limit)
	if err != nil || len(page) >= limit || rows < ask {
		return page, err
	}
	page, _, err = s.logKeys(ctx, keysSQL+where+"\nORDER BY ts DESC, rid DESC\nLIMIT 1 BY rid\nLIMIT ?", append(args, limit), limit)
	return page, err
}

// logKeys runs a page query and returns up to limit distinct keys, and how
// many rows the query answered.
func (s *Store) logKeys(ctx context.Context, query string, args []any, limit int) ([]LogRecord, int, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, readErr(ctx, "search logs", err)
	}
	defer rows.Close()
	page := []LogRecord{}
	n := 0
	var last string
	for rows.Next() {
		var (
			rid string
			ts  uint64
		)
		if err := rows.Scan(&rid, &ts); err != nil {
			return nil, 0, readErr(ctx, "search logs: scan", err)
		}
		n++
		if rid == last || len(page) == limit {
			continue
		}
		last = rid
		var lr LogRecord
		if err := decodeHexID(lr.RecordID[:], rid); err != nil {
			return nil, 0, fmt.Errorf("search logs: %w", err)
		}
		lr.TimeNs = ts // the sort time, until fillLogs reads the row
		page = append(page, lr)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, readErr(ctx, "search logs: read", err)
	}
	return page, n, nil
}

const fillLogsSQL = "SELECT " + logColumnsSQL + `
FROM logs
WHERE tenant_id = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND has(?, rid)
LIMIT 1 BY rid`

// fillLogs reads the full rows of the page's records, keeping page order.
func (s *Store) fillLogs(ctx context.Context, tenantID string, page []LogRecord) ([]LogRecord, error) {
	ids := make([]string, len(page))
	pos := make(map[string]int, len(page))
	lo, hi := page[len(page)-1].TimeNs, page[0].TimeNs
	for i := range page {
		ids[i] = hex.EncodeToString(page[i].RecordID[:])
		pos[ids[i]] = i
	}
	loSec, hiSec := nsSeconds(lo, -1), nsSeconds(hi, 1)
	rows, err := s.conn.Query(ctx, fillLogsSQL, tenantID,
		dateString(time.Unix(int64(loSec), 0)), dateString(time.Unix(int64(hiSec), 0)), loSec, hiSec, ids)
	if err != nil {
		return nil, readErr(ctx, "search logs: records", err)
	}
	defer rows.Close()
	filled := make([]bool, len(page))
	for rows.Next() {
		var (
			lr                       LogRecord
			rid, tid, sid            string
			ts                       uint64
			attrK, attrV, resK, resV []string
			attrT, resT              []uint8
		)
		if err := rows.Scan(&rid, &ts,
			&lr.TimeNs, &lr.ObservedNs, &lr.SeverityNumber, &lr.SeverityText, &lr.Body, &lr.BodyType,
			&tid, &sid, &lr.Flags, &lr.EventName, &lr.Service, &lr.ScopeName, &lr.ScopeVersion,
			&lr.K8sPodUID, &lr.K8sPodName, &lr.K8sNamespaceName, &lr.K8sNodeName, &lr.ContainerID, &lr.K8sContainerName,
			&attrK, &attrV, &attrT, &resK, &resV, &resT,
			&lr.DroppedAttributesCount,
		); err != nil {
			return nil, readErr(ctx, "search logs: scan record", err)
		}
		i, ok := pos[rid]
		if !ok {
			continue
		}
		if err := errors.Join(
			decodeHexID(lr.RecordID[:], rid),
			decodeHexID(lr.TraceID[:], tid),
			decodeHexID(lr.SpanID[:], sid),
		); err != nil {
			return nil, fmt.Errorf("search logs: %w", err)
		}
		lr.Attributes = otlpconv.DecodeAttrs(attrK, attrV, attrT)
		lr.Resource = otlpconv.DecodeAttrs(resK, resV, resT)
		page[i], filled[i] = lr, true
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "search logs: read records", err)
	}
	// A record dropped between the two reads (a partition dropped by
	// retention) is left out rather than answered half empty.
	out := page[:0]
	for i := range page {
		if filled[i] {
			out = append(out, page[i])
		}
	}
	return out, nil
}
