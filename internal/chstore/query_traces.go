package chstore

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Span is one span as read back for the query API.
type Span struct {
	TraceID       [16]byte
	SpanID        [8]byte
	ParentSpanID  [8]byte // zero for a root span
	TraceState    string
	Flags         uint32
	Name          string
	Service       string
	Kind          int8 // OTLP SpanKind: 0 unspecified … 5 consumer
	StartNs       uint64
	EndNs         uint64
	StatusCode    int8 // OTLP StatusCode: 0 unset, 1 ok, 2 error
	StatusMessage string
	ScopeName     string
	ScopeVersion  string
	Attributes    map[string]any // decoded with otlpconv.DecodeAttrs
	Resource      map[string]any // decoded with otlpconv.DecodeAttrs
	Events        []SpanEvent
	Links         []SpanLink

	// Resource attributes promoted to their own columns.
	K8sPodUID        string
	K8sPodName       string
	K8sNamespaceName string
	K8sNodeName      string
	ContainerID      string
	K8sContainerName string

	DroppedAttributesCount uint32
	DroppedEventsCount     uint32
	DroppedLinksCount      uint32
}

// IsRoot reports whether the span has no parent.
func (s *Span) IsRoot() bool { return s.ParentSpanID == [8]byte{} }

// SpanEvent is a timed event of a span.
type SpanEvent struct {
	TimeNs     uint64
	Name       string
	Attributes json.RawMessage // a JSON object, or nil when there are none
}

// SpanLink points from a span to another span, possibly of another trace.
type SpanLink struct {
	TraceID    string // lower-case hex
	SpanID     string // lower-case hex
	TraceState string
	Attributes json.RawMessage // a JSON object, or nil when there are none
}

// TraceQuery selects traces for SearchTraces.
type TraceQuery struct {
	TenantID string
	Service  string    // if set, only traces with at least one span of this service
	Start    time.Time // traces whose first span starts in [Start, End]
	End      time.Time
	Limit    int          // at most this many summaries; <= 0 means DefaultSearchLimit
	Cursor   *TraceCursor // if set, only traces after it in the result order
}

// TraceCursor is the position of the last trace of a page. The result order
// is (start time, trace id) descending, so the next page holds the traces
// strictly before the cursor in that order.
type TraceCursor struct {
	StartNs uint64
	TraceID [16]byte
}

// TraceSummary is one row of a trace search.
type TraceSummary struct {
	TraceID     [16]byte
	RootService string // service of the root span, else of the earliest span
	RootName    string // name of the root span, else of the earliest span
	StartNs     uint64 // start of the earliest span
	DurationNs  uint64 // latest end minus earliest start
	SpanCount   uint64 // distinct span ids
	ErrorCount  uint64 // distinct span ids with status code error
	Services    []string
}

// ServiceSummary is one service seen in a time range.
type ServiceSummary struct {
	Name      string
	SpanCount uint64
}

const (
	// DefaultSearchLimit is used when TraceQuery.Limit is not positive.
	// Callers bound larger limits (the API's MaxLimit).
	DefaultSearchLimit = 20

	// serviceSpanSlack widens the window in which a span of the searched
	// service is looked for past the window end: a trace that starts just
	// before the end may reach the service a little later.
	serviceSpanSlack = 10 * time.Minute
	// indexDateSlack widens the trace_index partition range by a day on each
	// side, so a trace whose rows straddle midnight keeps its real start.
	indexDateSlack = 24 * time.Hour
	// zeroSpanIDHex is how a root span's parent_span_id reads through hex().
	zeroSpanIDHex = "0000000000000000"
)

// readCtx bounds a read by the configured QueryTimeout.
func (s *Store) readCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.QueryTimeout > 0 {
		return context.WithTimeout(ctx, s.cfg.QueryTimeout)
	}
	return context.WithCancel(ctx)
}

// readErr adds op as context to err and classifies it: a context that is
// done (timeout or cancel) keeps its context error in the chain (a timeout
// as apperr KindTimeout), a
// ClickHouse that cannot be reached becomes apperr KindUnavailable, anything
// else stays unclassified (internal).
func readErr(ctx context.Context, op string, err error) error {
	var ae *apperr.Error
	if le := limitErr(op, err); le != nil {
		return le
	}
	switch {
	case errors.As(err, &ae):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return apperr.Wrap(apperr.KindTimeout, fmt.Errorf("%s: %w (%w)", op, ctx.Err(), err), queryTimeoutMsg)
	case deadlinePassed(ctx):
		// The driver's socket deadline (the ctx's) can fire just before
		// the ctx reports it.
		return apperr.Wrap(apperr.KindTimeout, fmt.Errorf("%s: %w (%w)", op, context.DeadlineExceeded, err), queryTimeoutMsg)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%w)", op, ctx.Err(), err)
	case unreachable(err):
		return apperr.Unavailable(fmt.Errorf("%s: %w", op, err), "trace storage is unavailable, retry later", 0)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// deadlinePassed reports whether ctx has a deadline that is now past.
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// unreachable reports connection-level failures (as opposed to a query the
// server rejected).
func unreachable(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}

// unixSeconds converts t to a DateTime value (seconds, clamped to the
// UInt32 range of ClickHouse DateTime).
func unixSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// unixNanos converts t to the UInt64 nanoseconds of the span columns
// (clamped: before 1970 is 0).
func unixNanos(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	if t.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// nsSeconds converts span nanoseconds to DateTime seconds, widened by delta
// seconds (negative to go back), clamped to the UInt32 range.
func nsSeconds(ns uint64, delta int64) uint32 {
	s := int64(ns/uint64(time.Second)) + delta
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// dateString is the Date (UTC, as the writer fills the date column) of t,
// for toDate(?).
func dateString(t time.Time) string {
	switch {
	case t.Before(time.Unix(0, 0)):
		t = time.Unix(0, 0)
	case t.Year() > 2105: // Date ends in 2106 (UInt16 days)
		t = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	return t.UTC().Format(time.DateOnly)
}

// decodeHexID decodes a lower-case hex id read with lower(hex(col)) into dst.
func decodeHexID(dst []byte, s string) error {
	if hex.DecodedLen(len(s)) != len(dst) {
		return fmt.Errorf("id %q: want %d hex bytes", s, len(dst))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// normalizeLinkID renders a stored link id as lower-case hex: the writer
// stores hex, but raw bytes of the expected size are accepted too.
func normalizeLinkID(s string, size int) string {
	if len(s) == 2*size {
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToLower(s)
		}
	}
	if s == "" {
		return ""
	}
	return hex.EncodeToString([]byte(s))
}

// rawJSON returns s as a JSON object value, or nil when s is empty or not
// valid JSON (which would break the encoding of a whole answer).
func rawJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}

// traceRange is what trace_index knows about one trace.
type traceRange struct {
	count   uint64
	startNs uint64
	endNs   uint64
}

const traceRangeSQL = `SELECT count(), min(start_time_unix_nano), max(end_time_unix_nano)
FROM trace_index
WHERE tenant_id = ? AND trace_id = unhex(?) AND date IN (SELECT toDate(arrayJoin(?)))`

// traceRange reads what trace_index knows about one trace, on the days
// the tenant has spans (see spanDays).
func (s *Store) traceRange(ctx context.Context, op, tenantID, idHex string) (traceRange, error) {
	var tr traceRange
	maxAge := tenantDaysTTL
	for {
		days, at, err := s.spanDays(ctx, tenantID, maxAge)
		if err != nil {
			return tr, readErr(ctx, op+": tenant days", err)
		}
		if err := s.conn.QueryRow(ctx, traceRangeSQL, tenantID, idHex, days).Scan(&tr.count, &tr.startNs, &tr.endNs); err != nil {
			return tr, readErr(ctx, op+": time range", err)
		}
		if tr.count > 0 || maxAge == tenantDaysRetry || s.days.now().Sub(at) <= tenantDaysRetry {
			return tr, nil
		}
		maxAge = tenantDaysRetry // not found on days read a while ago: read them again
	}
}

const traceSpansSQL = `SELECT
    lower(hex(trace_id)), lower(hex(span_id)), lower(hex(parent_span_id)),
    trace_state, flags, name, service_name, kind,
    start_time_unix_nano, end_time_unix_nano, status_code, status_message,
    scope_name, scope_version,
    k8s_pod_uid, k8s_pod_name, k8s_namespace_name, k8s_node_name, container_id, k8s_container_name,
    attr_keys, attr_values, attr_types, resource_keys, resource_values, resource_types,
    event_times, event_names, event_attrs,
    link_trace_ids, link_span_ids, link_trace_states, link_attrs,
    dropped_attributes_count, dropped_events_count, dropped_links_count
FROM spans
PREWHERE trace_id = unhex(?)
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
ORDER BY start_time_unix_nano, span_id
LIMIT 1 BY span_id
LIMIT ?`

// GetTrace returns every span of one trace of the tenant, each once, ordered
// by start time. An unknown trace is an apperr KindNotFound.
func (s *Store) GetTrace(ctx context.Context, tenantID string, traceID [16]byte) ([]Span, error) {
	spans, _, err := s.GetTraceLimited(ctx, tenantID, traceID, 0)
	return spans, err
}

// GetTraceLimited is GetTrace reading at most maxSpans spans (the first by
// start time; 0: no bound) and telling whether the trace has more.
func (s *Store) GetTraceLimited(ctx context.Context, tenantID string, traceID [16]byte, maxSpans int) (spans []Span, truncated bool, err error) {
	spans, err = s.getTrace(ctx, tenantID, traceID, maxSpans)
	if maxSpans > 0 && len(spans) > maxSpans {
		return spans[:maxSpans], true, err
	}
	return spans, false, err
}

// TraceExists reports whether tenantID has a trace traceID (one read of
// the trace-id lookup table).
func (s *Store) TraceExists(ctx context.Context, tenantID string, traceID [16]byte) (bool, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	tr, err := s.traceRange(ctx, "trace exists", tenantID, hex.EncodeToString(traceID[:]))
	if err != nil {
		return false, err
	}
	return tr.count > 0, nil
}

func (s *Store) getTrace(ctx context.Context, tenantID string, traceID [16]byte, maxSpans int) ([]Span, error) {
	// One span more than asked tells whether the trace was cut.
	limit := uint64(math.MaxInt64)
	if maxSpans > 0 {
		limit = uint64(maxSpans) + 1
	}
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	idHex := hex.EncodeToString(traceID[:])
	notFound := apperr.New(apperr.KindNotFound, "trace %s not found", idHex)

	tr, err := s.traceRange(ctx, "get trace", tenantID, idHex)
	if err != nil {
		return nil, err
	}
	if tr.count == 0 {
		return nil, notFound
	}
	// timestamp is the start second of each span: widen by a second each
	// side so the rounding of either bound cannot drop a span.
	// PREWHERE: the seconds a trace spans hold many other traces' rows;
	// only granules with this trace id read the wide columns (≈5× faster
	// than filtering them all).
	rows, err := s.conn.Query(ctx, traceSpansSQL, idHex, tenantID,
		nsSeconds(tr.startNs, -1), nsSeconds(max(tr.endNs, tr.startNs), 1), limit)
	if err != nil {
		return nil, readErr(ctx, "get trace: spans", err)
	}
	defer rows.Close()
	var spans []Span
	for rows.Next() {
		var (
			sp                       Span
			tid, sid, pid            string
			attrK, attrV, resK, resV []string
			attrT, resT              []uint8
			evTimes                  []uint64
			evNames, evAttrs         []string
			lnTIDs, lnSIDs, lnStates []string
			lnAttrs                  []string
		)
		if err := rows.Scan(
			&tid, &sid, &pid,
			&sp.TraceState, &sp.Flags, &sp.Name, &sp.Service, &sp.Kind,
			&sp.StartNs, &sp.EndNs, &sp.StatusCode, &sp.StatusMessage,
			&sp.ScopeName, &sp.ScopeVersion,
			&sp.K8sPodUID, &sp.K8sPodName, &sp.K8sNamespaceName, &sp.K8sNodeName, &sp.ContainerID, &sp.K8sContainerName,
			&attrK, &attrV, &attrT, &resK, &resV, &resT,
			&evTimes, &evNames, &evAttrs,
			&lnTIDs, &lnSIDs, &lnStates, &lnAttrs,
			&sp.DroppedAttributesCount, &sp.DroppedEventsCount, &sp.DroppedLinksCount,
		); err != nil {
			return nil, readErr(ctx, "get trace: scan span", err)
		}
		if err := errors.Join(
			decodeHexID(sp.TraceID[:], tid),
			decodeHexID(sp.SpanID[:], sid),
			decodeHexID(sp.ParentSpanID[:], pid),
		); err != nil {
			return nil, fmt.Errorf("get trace: %w", err)
		}
		sp.Attributes = otlpconv.DecodeAttrs(attrK, attrV, attrT)
		sp.Resource = otlpconv.PromotedResource(otlpconv.DecodeAttrs(resK, resV, resT), sp.Service,
			sp.K8sPodUID, sp.K8sPodName, sp.K8sNamespaceName, sp.K8sNodeName, sp.ContainerID, sp.K8sContainerName)
		if n := min(len(evTimes), len(evNames)); n > 0 {
			sp.Events = make([]SpanEvent, n)
			for i := range n {
				sp.Events[i] = SpanEvent{TimeNs: evTimes[i], Name: evNames[i]}
				if i < len(evAttrs) {
					sp.Events[i].Attributes = rawJSON(evAttrs[i])
				}
			}
		}
		if n := min(len(lnTIDs), len(lnSIDs)); n > 0 {
			sp.Links = make([]SpanLink, n)
			for i := range n {
				sp.Links[i] = SpanLink{TraceID: normalizeLinkID(lnTIDs[i], 16), SpanID: normalizeLinkID(lnSIDs[i], 8)}
				if i < len(lnStates) {
					sp.Links[i].TraceState = lnStates[i]
				}
				if i < len(lnAttrs) {
					sp.Links[i].Attributes = rawJSON(lnAttrs[i])
				}
			}
		}
		spans = append(spans, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "get trace: read spans", err)
	}
	if len(spans) == 0 {
		return nil, notFound
	}
	return spans, nil
}

// SearchTraces returns summaries of the tenant's traces that start in
// [q.Start, q.End], newest first by trace start (ties by trace id,
// descending), after q.Cursor if set.
//
// It reads in two steps: the page of trace ids comes from trace_index (small,
// one row per trace and insert), then one aggregate over the spans of just
// those traces fills the summaries. Every aggregate there is insensitive to
// duplicate rows of a span (min, max, uniqExact over span_id, argMin,
// groupUniqArray), which is how this read dedups re-delivered spans.
func (s *Store) SearchTraces(ctx context.Context, q TraceQuery) ([]TraceSummary, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	if q.End.Before(q.Start) {
		return []TraceSummary{}, nil
	}

	page, err := s.searchPage(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	if len(page) == 0 {
		return []TraceSummary{}, nil
	}
	if err := s.fillSummaries(ctx, q.TenantID, page); err != nil {
		return nil, err
	}
	return page, nil
}

// searchPage picks the page of traces from trace_index; the summaries carry
// TraceID, StartNs and DurationNs (from the index) only.
func (s *Store) searchPage(ctx context.Context, q TraceQuery, limit int) ([]TraceSummary, error) {
	var sb strings.Builder
	args := []any{q.TenantID, dateString(q.Start.Add(-indexDateSlack)), dateString(q.End.Add(indexDateSlack))}
	sb.WriteString(`SELECT lower(hex(trace_id)) AS tid, min(start_time_unix_nano) AS ts, max(end_time_unix_nano) AS te
FROM trace_index
WHERE tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?)`)
	if q.Service != "" {
		sb.WriteString(`
  AND trace_id IN (
    SELECT trace_id FROM spans
    WHERE tenant_id = ? AND service_name = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?))`)
		args = append(args, q.TenantID, q.Service, unixSeconds(q.Start), unixSeconds(q.End.Add(serviceSpanSlack)))
	}
	sb.WriteString(`
GROUP BY trace_id
HAVING ts >= ? AND ts <= ?`)
	args = append(args, unixNanos(q.Start), unixNanos(q.End))
	if c := q.Cursor; c != nil {
		sb.WriteString(` AND (ts < ? OR (ts = ? AND tid < ?))`)
		args = append(args, c.StartNs, c.StartNs, hex.EncodeToString(c.TraceID[:]))
	}
	sb.WriteString(`
ORDER BY ts DESC, tid DESC
LIMIT ?`)
	args = append(args, limit)

	rows, err := s.conn.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, readErr(ctx, "search traces", err)
	}
	defer rows.Close()
	var page []TraceSummary
	for rows.Next() {
		var (
			tid    string
			ts, te uint64
		)
		if err := rows.Scan(&tid, &ts, &te); err != nil {
			return nil, readErr(ctx, "search traces: scan", err)
		}
		sum := TraceSummary{StartNs: ts, DurationNs: te - min(ts, te)}
		if err := decodeHexID(sum.TraceID[:], tid); err != nil {
			return nil, fmt.Errorf("search traces: %w", err)
		}
		page = append(page, sum)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "search traces: read", err)
	}
	return page, nil
}

const summariesSQL = `SELECT
    lower(hex(trace_id)) AS tid,
    min(start_time_unix_nano),
    max(end_time_unix_nano),
    uniqExact(span_id),
    uniqExactIf(span_id, status_code = 2),
    groupUniqArray(service_name),
    countIf(hex(parent_span_id) = '` + zeroSpanIDHex + `'),
    argMinIf(service_name, (start_time_unix_nano, span_id), hex(parent_span_id) = '` + zeroSpanIDHex + `'),
    argMinIf(name, (start_time_unix_nano, span_id), hex(parent_span_id) = '` + zeroSpanIDHex + `'),
    argMin(service_name, (start_time_unix_nano, span_id)),
    argMin(name, (start_time_unix_nano, span_id))
FROM spans
PREWHERE has(?, lower(hex(trace_id)))
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
GROUP BY trace_id`

// fillSummaries completes the page from the spans of its traces.
func (s *Store) fillSummaries(ctx context.Context, tenantID string, page []TraceSummary) error {
	ids := make([]string, len(page))
	byID := make(map[string]*TraceSummary, len(page))
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for i := range page {
		ids[i] = hex.EncodeToString(page[i].TraceID[:])
		byID[ids[i]] = &page[i]
		lo = min(lo, page[i].StartNs)
		hi = max(hi, page[i].StartNs+page[i].DurationNs)
	}
	rows, err := s.conn.Query(ctx, summariesSQL, ids, tenantID, nsSeconds(lo, -1), nsSeconds(hi, 1))
	if err != nil {
		return readErr(ctx, "search traces: summaries", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			tid                            string
			ts, te, spans, errs, roots     uint64
			services                       []string
			rootSvc, rootName, firstSvc, n string
		)
		if err := rows.Scan(&tid, &ts, &te, &spans, &errs, &services, &roots, &rootSvc, &rootName, &firstSvc, &n); err != nil {
			return readErr(ctx, "search traces: scan summary", err)
		}
		sum := byID[tid]
		if sum == nil {
			continue
		}
		// The start stays the index's (it is the page order and cursor key);
		// the end is the latest either source saw.
		sum.DurationNs = max(sum.StartNs+sum.DurationNs, te) - sum.StartNs
		sum.SpanCount, sum.ErrorCount = spans, errs
		slices.Sort(services)
		sum.Services = services
		if roots > 0 {
			sum.RootService, sum.RootName = rootSvc, rootName
		} else {
			sum.RootService, sum.RootName = firstSvc, n
		}
	}
	if err := rows.Err(); err != nil {
		return readErr(ctx, "search traces: read summaries", err)
	}
	for i := range page {
		if page[i].Services == nil {
			page[i].Services = []string{}
		}
	}
	return nil
}

const listServicesSQL = `SELECT service_name, sum(span_count) AS n
FROM service_index
WHERE tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?)
GROUP BY service_name
ORDER BY service_name`

// ListServices returns the services with spans of the tenant on the days
// (UTC) from start to end, sorted by name, with their span counts (counts
// may include re-delivered copies of spans).
func (s *Store) ListServices(ctx context.Context, tenantID string, start, end time.Time) ([]ServiceSummary, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, listServicesSQL, tenantID, dateString(start), dateString(end))
	if err != nil {
		return nil, readErr(ctx, "list services", err)
	}
	defer rows.Close()
	out := []ServiceSummary{}
	for rows.Next() {
		var ss ServiceSummary
		if err := rows.Scan(&ss.Name, &ss.SpanCount); err != nil {
			return nil, readErr(ctx, "list services: scan", err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list services: read", err)
	}
	return out, nil
}
