package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
)

// defaultServicesWindow is the service listing window when start is not
// given (capped by MaxSearchWindow).
const defaultServicesWindow = 7 * 24 * time.Hour

// maxServiceNameBytes bounds the service filter.
const maxServiceNameBytes = 1024

var errNoRoute = apperr.New(apperr.KindNotFound, "no such route")

var errMethod = apperr.New(apperr.KindMethodNotAllowed, "method not allowed on this route")

// ---- JSON answers ----

type traceResponse struct {
	TraceID string     `json:"traceId"`
	Spans   []spanJSON `json:"spans"`
	// Truncated: the trace has more than the configured most spans
	// (Reads.MaxTraceSpans); Spans are its first by start time.
	Truncated bool `json:"truncated"`
}

type spanJSON struct {
	TraceID                string         `json:"traceId"`
	SpanID                 string         `json:"spanId"`
	ParentSpanID           string         `json:"parentSpanId"`
	Name                   string         `json:"name"`
	Service                string         `json:"service"`
	Kind                   string         `json:"kind"`
	StartTimeUnixNano      uint64         `json:"startTimeUnixNano,string"`
	EndTimeUnixNano        uint64         `json:"endTimeUnixNano,string"`
	DurationNs             uint64         `json:"durationNs,string"`
	Status                 statusJSON     `json:"status"`
	Attributes             map[string]any `json:"attributes"`
	Resource               map[string]any `json:"resource"`
	Events                 []eventJSON    `json:"events"`
	Links                  []linkJSON     `json:"links"`
	Scope                  scopeJSON      `json:"scope"`
	TraceState             string         `json:"traceState"`
	Flags                  uint32         `json:"flags"`
	DroppedAttributesCount uint32         `json:"droppedAttributesCount"`
	DroppedEventsCount     uint32         `json:"droppedEventsCount"`
	DroppedLinksCount      uint32         `json:"droppedLinksCount"`
}

type statusJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type scopeJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type eventJSON struct {
	TimeUnixNano uint64          `json:"timeUnixNano,string"`
	Name         string          `json:"name"`
	Attributes   json.RawMessage `json:"attributes"`
}

type linkJSON struct {
	TraceID    string          `json:"traceId"`
	SpanID     string          `json:"spanId"`
	TraceState string          `json:"traceState"`
	Attributes json.RawMessage `json:"attributes"`
}

type listResponse[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

type traceSummaryJSON struct {
	TraceID           string   `json:"traceId"`
	RootService       string   `json:"rootService"`
	RootName          string   `json:"rootName"`
	StartTimeUnixNano uint64   `json:"startTimeUnixNano,string"`
	DurationNs        uint64   `json:"durationNs,string"`
	SpanCount         uint64   `json:"spanCount"`
	ErrorCount        uint64   `json:"errorCount"`
	Services          []string `json:"services"`
}

type serviceJSON struct {
	Name      string `json:"name"`
	SpanCount uint64 `json:"spanCount"`
}

var kindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

func kindName(k int8) string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unspecified"
}

var statusNames = [...]string{"unset", "ok", "error"}

func statusName(c int8) string {
	if c >= 0 && int(c) < len(statusNames) {
		return statusNames[c]
	}
	return "unset"
}

var emptyObject = json.RawMessage(`{}`)

func objectOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return emptyObject
	}
	return m
}

// jsonAttrs makes attribute values encodable: JSON has no NaN or ±Inf, so
// such doubles are rendered as strings ("NaN", "+Inf", "-Inf").
func jsonAttrs(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	for k, v := range m {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			m[k] = strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return m
}

func toSpanJSON(sp *chstore.Span) spanJSON {
	out := spanJSON{
		TraceID:                hex.EncodeToString(sp.TraceID[:]),
		SpanID:                 hex.EncodeToString(sp.SpanID[:]),
		Name:                   sp.Name,
		Service:                sp.Service,
		Kind:                   kindName(sp.Kind),
		StartTimeUnixNano:      sp.StartNs,
		EndTimeUnixNano:        sp.EndNs,
		Status:                 statusJSON{Code: statusName(sp.StatusCode), Message: sp.StatusMessage},
		Attributes:             jsonAttrs(sp.Attributes),
		Resource:               jsonAttrs(sp.Resource),
		Events:                 make([]eventJSON, len(sp.Events)),
		Links:                  make([]linkJSON, len(sp.Links)),
		Scope:                  scopeJSON{Name: sp.ScopeName, Version: sp.ScopeVersion},
		TraceState:             sp.TraceState,
		Flags:                  sp.Flags,
		DroppedAttributesCount: sp.DroppedAttributesCount,
		DroppedEventsCount:     sp.DroppedEventsCount,
		DroppedLinksCount:      sp.DroppedLinksCount,
	}
	if sp.ParentSpanID != ([8]byte{}) {
		out.ParentSpanID = hex.EncodeToString(sp.ParentSpanID[:])
	}
	if sp.EndNs > sp.StartNs {
		out.DurationNs = sp.EndNs - sp.StartNs
	}
	for i, e := range sp.Events {
		out.Events[i] = eventJSON{TimeUnixNano: e.TimeNs, Name: e.Name, Attributes: objectOrEmpty(e.Attributes)}
	}
	for i, l := range sp.Links {
		out.Links[i] = linkJSON{TraceID: l.TraceID, SpanID: l.SpanID, TraceState: l.TraceState, Attributes: objectOrEmpty(l.Attributes)}
	}
	return out
}

// ---- handlers ----

// readHandler answers one /api/v1 read for the caller's tenant: the JSON
// value to send, or an error for apperr to map.
type readHandler func(r *http.Request, tenantID string) (any, error)

// serve adapts a readHandler: the tenant, the error answer and the JSON
// encoding are handled here once for every read route.
func (s *Service) serve(h readHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant, err := tenantOf(r.Context())
		if err == nil {
			var v any
			if v, err = h(r, tenant.ID); err == nil {
				s.writeJSON(w, r, v)
				return
			}
		}
		s.fail(w, r, err)
	}
}

// nextPage cuts rows that were fetched with one extra (limit+1) back to
// limit, and reports whether that extra row showed another page.
func nextPage[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}

func (s *Service) getTrace(r *http.Request, tenantID string) (any, error) {
	id, err := parseTraceID(chi.URLParam(r, "traceId"))
	if err != nil {
		return nil, err
	}
	spans, truncated, err := s.store.GetTraceLimited(r.Context(), tenantID, id, s.cfg.Reads.MaxTraceSpans)
	if err != nil {
		return nil, err
	}
	resp := traceResponse{TraceID: hex.EncodeToString(id[:]), Spans: make([]spanJSON, len(spans)), Truncated: truncated}
	for i := range spans {
		resp.Spans[i] = toSpanJSON(&spans[i])
	}
	return resp, nil
}

func (s *Service) searchTraces(r *http.Request, tenantID string) (any, error) {
	q, err := s.parseSearch(r)
	if err != nil {
		return nil, err
	}
	q.TenantID = tenantID
	limit := q.Limit
	q.Limit = limit + 1 // one more tells whether there is a next page
	sums, err := s.store.SearchTraces(r.Context(), q)
	if err != nil {
		return nil, err
	}
	sums, more := nextPage(sums, limit)
	resp := listResponse[traceSummaryJSON]{Items: make([]traceSummaryJSON, 0, len(sums))}
	if more {
		last := sums[limit-1]
		resp.NextCursor = encodeCursor(chstore.TraceCursor{StartNs: last.StartNs, TraceID: last.TraceID})
	}
	for _, t := range sums {
		services := t.Services
		if services == nil {
			services = []string{}
		}
		resp.Items = append(resp.Items, traceSummaryJSON{
			TraceID:           hex.EncodeToString(t.TraceID[:]),
			RootService:       t.RootService,
			RootName:          t.RootName,
			StartTimeUnixNano: t.StartNs,
			DurationNs:        t.DurationNs,
			SpanCount:         t.SpanCount,
			ErrorCount:        t.ErrorCount,
			Services:          services,
		})
	}
	return resp, nil
}

func (s *Service) listServices(r *http.Request, tenantID string) (any, error) {
	start, end, err := s.parseWindow(r, min(defaultServicesWindow, s.cfg.MaxSearchWindow))
	if err != nil {
		return nil, err
	}
	svcs, err := s.store.ListServices(r.Context(), tenantID, start, end)
	if err != nil {
		return nil, err
	}
	resp := listResponse[serviceJSON]{Items: make([]serviceJSON, len(svcs))}
	for i, sv := range svcs {
		resp.Items[i] = serviceJSON{Name: sv.Name, SpanCount: sv.SpanCount}
	}
	return resp, nil
}

// ---- input ----

// tenantOf returns the tenant authn.Middleware stored; its absence is a
// wiring bug, not the client's fault.
func tenantOf(ctx context.Context) (authn.Tenant, error) {
	t, ok := authn.TenantFrom(ctx)
	if !ok || t.ID == "" {
		return t, apperr.New(apperr.KindInternal, "internal error: request without tenant")
	}
	return t, nil
}

// parseTraceID accepts 32 hex characters of either case.
func parseTraceID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 2*len(id) {
		return id, apperr.Invalid("traceId", "must be 32 hex characters")
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, apperr.Invalid("traceId", "must be 32 hex characters")
	}
	return id, nil
}

// parseSearch reads the parameters of a trace search.
func (s *Service) parseSearch(r *http.Request) (chstore.TraceQuery, error) {
	var q chstore.TraceQuery
	start, end, err := s.parseWindow(r, s.cfg.DefaultSearchWindow)
	if err != nil {
		return q, err
	}
	q.Start, q.End = start, end
	v := r.URL.Query()

	q.Service = v.Get("service")
	switch {
	case !utf8.ValidString(q.Service):
		return q, apperr.Invalid("service", "must be valid UTF-8")
	case len(q.Service) > maxServiceNameBytes:
		return q, apperr.Invalid("service", "must be at most %d bytes", maxServiceNameBytes)
	}

	q.Limit = s.cfg.DefaultLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxLimit {
			return q, apperr.Invalid("limit", "must be an integer from 1 to %d", s.cfg.MaxLimit)
		}
		q.Limit = n
	}

	if c := v.Get("cursor"); c != "" {
		cur, err := decodeCursor(c)
		if err != nil {
			return q, err
		}
		q.Cursor = &cur
	}
	return q, nil
}

// parseWindow reads start and end: end defaults to now, start to end minus
// def; the window must not be inverted nor exceed MaxSearchWindow.
func (s *Service) parseWindow(r *http.Request, def time.Duration) (start, end time.Time, err error) {
	v := r.URL.Query()
	end = time.Now()
	if e := v.Get("end"); e != "" {
		if end, err = parseTime("end", e); err != nil {
			return start, end, err
		}
	}
	start = end.Add(-def)
	if st := v.Get("start"); st != "" {
		if start, err = parseTime("start", st); err != nil {
			return start, end, err
		}
	}
	switch {
	case end.Before(start):
		return start, end, apperr.Invalid("end", "must not be before start")
	case end.Sub(start) > s.cfg.MaxSearchWindow:
		return start, end, apperr.Invalid("start", "the window from start to end must not exceed %s", s.cfg.MaxSearchWindow)
	}
	return start, end, nil
}

var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

// parseTime accepts RFC 3339 (with optional fraction) or integer unix
// nanoseconds, from 1970 to 2262 (the range of int64 nanoseconds).
func parseTime(field, s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return time.Time{}, apperr.Invalid(field, "must not be before 1970")
		}
		return time.Unix(0, n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.Invalid(field, "must be an RFC 3339 timestamp or integer unix nanoseconds")
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, apperr.Invalid(field, "must be between 1970 and 2262")
	}
	return t, nil
}

// Cursors are opaque to clients: base64url (no padding) of a version byte,
// the trace start (big-endian uint64 ns) and the trace id of the last item.
const (
	cursorVersion = 1
	cursorLen     = 1 + 8 + 16
)

func encodeCursor(c chstore.TraceCursor) string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], c.StartNs)
	copy(b[9:], c.TraceID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (chstore.TraceCursor, error) {
	var c chstore.TraceCursor
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
		return c, apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
	}
	c.StartNs = binary.BigEndian.Uint64(b[1:9])
	copy(c.TraceID[:], b[9:])
	return c, nil
}

// ---- output ----

// writeJSON answers 200 with v. It encodes before writing, so a value that
// cannot be encoded becomes a 500 and not half an answer.
func (s *Service) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	s.writeJSONStatus(w, r, http.StatusOK, v)
}

// writeJSONStatus is writeJSON with another success status (201).
func (s *Service) writeJSONStatus(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, apperr.Wrap(apperr.KindInternal, err, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// fail answers with err through apperr (the one place mapping errors to
// statuses) and logs what is not the client's fault. Request headers are
// never logged: they carry the API key.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	level := slog.LevelDebug
	switch apperr.KindOf(err) {
	case apperr.KindInternal:
		level = slog.LevelError
	case apperr.KindUnavailable, apperr.KindTimeout:
		level = slog.LevelWarn
	}
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the client went away
	}
	if s.log.Enabled(r.Context(), level) {
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("request_id", middleware.GetReqID(r.Context())),
			slog.String("err", err.Error()),
		}
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			attrs = append(attrs, slog.String("route", rc.RoutePattern()))
		}
		if t, ok := authn.TenantFrom(r.Context()); ok {
			attrs = append(attrs, slog.String("tenant", t.ID))
		}
		s.log.LogAttrs(r.Context(), level, "api request failed", attrs...)
	}
	s.metrics.rejected.WithLabelValues(apperr.KindOf(err).String()).Inc()
	apperr.WriteHTTP(w, err)
}
