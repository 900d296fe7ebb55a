package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Bounds of the logs filters.
const (
	maxLogQueryBytes   = 1024 // q
	maxContainerIDLen  = 128  // containerId, after normalization
	minContainerIDLen  = 12   // Falco's short ids; shorter prefixes match too much
	maxPodUIDBytes     = 256  // podUid
	maxSeverityNumber  = 24   // SeverityNumber FATAL4
	logCursorVersion   = 0x4c // distinct from the trace cursor's version: one is not taken for the other
	logCursorLen       = 1 + 8 + 16
	logCursorFieldName = "cursor"
)

type logJSON struct {
	RecordID               string         `json:"recordId"`
	TimeUnixNano           uint64         `json:"timeUnixNano,string"`
	ObservedTimeUnixNano   uint64         `json:"observedTimeUnixNano,string"`
	SeverityNumber         uint8          `json:"severityNumber"`
	SeverityText           string         `json:"severityText"`
	Body                   any            `json:"body"`
	TraceID                string         `json:"traceId"`
	SpanID                 string         `json:"spanId"`
	Flags                  uint32         `json:"flags"`
	EventName              string         `json:"eventName"`
	Service                string         `json:"service"`
	Attributes             map[string]any `json:"attributes"`
	Resource               map[string]any `json:"resource"`
	Scope                  scopeJSON      `json:"scope"`
	DroppedAttributesCount uint32         `json:"droppedAttributesCount"`
}

// logBody renders a stored body as its JSON value: a string body as a
// string, other AnyValues as their JSON form (bytes as base64, NaN and
// infinities as strings), an empty body as null.
func logBody(text string, typ uint8) any {
	v := otlpconv.DecodeValue(text, typ)
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v
}

// hexOrEmpty renders an id as lower-case hex, or "" when it is all zeros
// (the record has none).
func hexOrEmpty(id []byte) string {
	for _, b := range id {
		if b != 0 {
			return hex.EncodeToString(id)
		}
	}
	return ""
}

func toLogJSON(r *chstore.LogRecord) logJSON {
	return logJSON{
		RecordID:               hex.EncodeToString(r.RecordID[:]),
		TimeUnixNano:           r.TimeNs,
		ObservedTimeUnixNano:   r.ObservedNs,
		SeverityNumber:         r.SeverityNumber,
		SeverityText:           r.SeverityText,
		Body:                   logBody(r.Body, r.BodyType),
		TraceID:                hexOrEmpty(r.TraceID[:]),
		SpanID:                 hexOrEmpty(r.SpanID[:]),
		Flags:                  r.Flags,
		EventName:              r.EventName,
		Service:                r.Service,
		Attributes:             jsonAttrs(r.Attributes),
		Resource:               jsonAttrs(r.Resource),
		Scope:                  scopeJSON{Name: r.ScopeName, Version: r.ScopeVersion},
		DroppedAttributesCount: r.DroppedAttributesCount,
	}
}

func (s *Service) searchLogs(r *http.Request, tenantID string) (any, error) {
	q, err := s.parseLogSearch(r)
	if err != nil {
		return nil, err
	}
	q.TenantID = tenantID
	limit := q.Limit
	q.Limit = limit + 1 // one more tells whether there is a next page
	recs, err := s.store.SearchLogs(r.Context(), q)
	if err != nil {
		return nil, err
	}
	recs, more := nextPage(recs, limit)
	resp := listResponse[logJSON]{Items: make([]logJSON, 0, len(recs))}
	if more {
		last := recs[limit-1]
		resp.NextCursor = encodeLogCursor(chstore.LogCursor{TimeNs: last.SortNs(), RecordID: last.RecordID})
	}
	for i := range recs {
		resp.Items = append(resp.Items, toLogJSON(&recs[i]))
	}
	return resp, nil
}

// parseLogSearch reads the parameters of a log search. With traceId and
// neither start nor end, the window is left to the store (the time range
// of that trace's logs); otherwise it is parsed like a trace search's.
func (s *Service) parseLogSearch(r *http.Request) (chstore.LogQuery, error) {
	var q chstore.LogQuery
	v := r.URL.Query()

	if t := v.Get("traceId"); t != "" {
		id, err := parseTraceID(t)
		if err != nil {
			return q, err
		}
		if id == ([16]byte{}) {
			return q, apperr.Invalid("traceId", "must not be all zeros")
		}
		q.TraceID = id
	}
	if sp := v.Get("spanId"); sp != "" {
		if len(sp) != 16 {
			return q, apperr.Invalid("spanId", "must be 16 hex characters")
		}
		if _, err := hex.Decode(q.SpanID[:], []byte(sp)); err != nil {
			return q, apperr.Invalid("spanId", "must be 16 hex characters")
		}
		if q.SpanID == ([8]byte{}) {
			return q, apperr.Invalid("spanId", "must not be all zeros")
		}
	}

	if q.TraceID == ([16]byte{}) || v.Get("start") != "" || v.Get("end") != "" {
		start, end, err := s.parseWindow(r, s.cfg.DefaultSearchWindow)
		if err != nil {
			return q, err
		}
		q.Start, q.End = start, end
	}

	q.Service = v.Get("service")
	switch {
	case !utf8.ValidString(q.Service):
		return q, apperr.Invalid("service", "must be valid UTF-8")
	case len(q.Service) > maxServiceNameBytes:
		return q, apperr.Invalid("service", "must be at most %d bytes", maxServiceNameBytes)
	}

	if c := v.Get("containerId"); c != "" {
		n := otlpconv.NormalizeContainerID(c)
		switch {
		case len(n) < minContainerIDLen || len(n) > maxContainerIDLen:
			return q, apperr.Invalid("containerId", "must be a container id or a prefix of it, %d to %d characters", minContainerIDLen, maxContainerIDLen)
		case strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			return q, apperr.Invalid("containerId", "must be printable ASCII without spaces")
		}
		q.ContainerID = n
	}

	q.PodUID = v.Get("podUid")
	switch {
	case !utf8.ValidString(q.PodUID):
		return q, apperr.Invalid("podUid", "must be valid UTF-8")
	case len(q.PodUID) > maxPodUIDBytes:
		return q, apperr.Invalid("podUid", "must be at most %d bytes", maxPodUIDBytes)
	}

	if sv := v.Get("severityMin"); sv != "" {
		n, err := strconv.Atoi(sv)
		if err != nil || n < 0 || n > maxSeverityNumber {
			return q, apperr.Invalid("severityMin", "must be an integer from 0 to %d (OTLP SeverityNumber)", maxSeverityNumber)
		}
		q.SeverityMin = n
	}

	q.Q = v.Get("q")
	switch {
	case !utf8.ValidString(q.Q):
		return q, apperr.Invalid("q", "must be valid UTF-8")
	case len(q.Q) > maxLogQueryBytes:
		return q, apperr.Invalid("q", "must be at most %d bytes", maxLogQueryBytes)
	}

	q.Limit = s.cfg.DefaultLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxLimit {
			return q, apperr.Invalid("limit", "must be an integer from 1 to %d", s.cfg.MaxLimit)
		}
		q.Limit = n
	}

	if c := v.Get(logCursorFieldName); c != "" {
		cur, err := decodeLogCursor(c)
		if err != nil {
			return q, err
		}
		q.Cursor = &cur
	}
	return q, nil
}

// Log cursors are opaque to clients: base64url (no padding) of a version
// byte, the record's sort time (big-endian uint64 ns) and its record id.
func encodeLogCursor(c chstore.LogCursor) string {
	var b [logCursorLen]byte
	b[0] = logCursorVersion
	binary.BigEndian.PutUint64(b[1:9], c.TimeNs)
	copy(b[9:], c.RecordID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeLogCursor(s string) (chstore.LogCursor, error) {
	var c chstore.LogCursor
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != logCursorLen || b[0] != logCursorVersion {
		return c, apperr.Invalid(logCursorFieldName, "malformed; pass nextCursor of the previous page unchanged")
	}
	c.TimeNs = binary.BigEndian.Uint64(b[1:9])
	copy(c.RecordID[:], b[9:])
	return c, nil
}
