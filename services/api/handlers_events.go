package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// EventStore reads container events and the container registry;
// implemented by *chstore.Store.
type EventStore interface {
	// SearchEvents returns up to q.Limit events, newest first (ties by id,
	// descending), each once, after q.Cursor if set.
	SearchEvents(ctx context.Context, q chstore.EventQuery) ([]events.Event, error)
	// GetContainer and GetPod answer apperr KindNotFound for unknown ids.
	GetContainer(ctx context.Context, tenantID, containerID string) (chstore.Container, error)
	GetPod(ctx context.Context, tenantID, podUID string) (chstore.Pod, error)
	// ContainerTimeline returns up to limit items oldest first, and whether
	// more were cut.
	ContainerTimeline(ctx context.Context, tenantID, containerID string, start, end time.Time, limit int) ([]chstore.TimelineItem, bool, error)
}

var _ EventStore = (*chstore.Store)(nil)

var errEventsUnavailable = apperr.New(apperr.KindUnavailable, "container events are not configured")

// Bounds of the event filters.
const (
	maxNamespaceBytes    = 253
	eventCursorVersion   = 0x45 // distinct from the trace and log cursors
	eventCursorLen       = 1 + 8 + 16
	timelineDefaultSlack = time.Minute // around a container's first/last sighting
)

var eventTypes = map[string]bool{
	events.TypeSecurityAlert: true, events.TypeOOMKilled: true, events.TypeCrashLoop: true,
	events.TypeContainerError: true, events.TypeEvicted: true, events.TypeImagePullFailed: true,
	events.TypeK8sEvent: true,
}

// eventRoutes registers the event list and the registry reads.
func (s *Service) eventRoutes(r chi.Router, es EventStore) {
	h := eventHandlers{s: s, es: es}
	r.Get("/events", s.serve(h.searchEvents))
	r.Get("/containers/{containerId}", s.serve(h.getContainer))
	r.Get("/containers/{containerId}/timeline", s.serve(h.containerTimeline))
	r.Get("/pods/{podUid}", s.serve(h.getPod))
}

type eventHandlers struct {
	s  *Service
	es EventStore
}

// ---- JSON ----

type terminationJSON struct {
	Type         string `json:"type"`
	Reason       string `json:"reason"`
	ExitCode     *int32 `json:"exitCode"` // null when not known
	TimeUnixNano uint64 `json:"timeUnixNano,string"`
}

type containerJSON struct {
	ContainerID       string           `json:"containerId"`
	ContainerIDShort  string           `json:"containerIdShort"`
	ContainerName     string           `json:"containerName"`
	PodUID            string           `json:"podUid"`
	PodName           string           `json:"podName"`
	Namespace         string           `json:"namespace"`
	NodeName          string           `json:"nodeName"`
	Image             string           `json:"image"`
	Services          []string         `json:"services"`
	Signals           []string         `json:"signals"`
	FirstSeenUnixNano uint64           `json:"firstSeenUnixNano,string"`
	LastSeenUnixNano  uint64           `json:"lastSeenUnixNano,string"`
	Termination       *terminationJSON `json:"termination"` // null while none is known
}

type podContainerJSON struct {
	ContainerID       string `json:"containerId"`
	ContainerIDShort  string `json:"containerIdShort"`
	ContainerName     string `json:"containerName"`
	Image             string `json:"image"`
	FirstSeenUnixNano uint64 `json:"firstSeenUnixNano,string"`
	LastSeenUnixNano  uint64 `json:"lastSeenUnixNano,string"`
}

type podJSON struct {
	PodUID            string             `json:"podUid"`
	PodName           string             `json:"podName"`
	Namespace         string             `json:"namespace"`
	NodeName          string             `json:"nodeName"`
	Services          []string           `json:"services"`
	Signals           []string           `json:"signals"`
	FirstSeenUnixNano uint64             `json:"firstSeenUnixNano,string"`
	LastSeenUnixNano  uint64             `json:"lastSeenUnixNano,string"`
	Containers        []podContainerJSON `json:"containers"`
}

type timelineLogJSON struct {
	RecordID       string `json:"recordId"`
	SeverityNumber uint8  `json:"severityNumber"`
	SeverityText   string `json:"severityText"`
	Body           any    `json:"body"`
	TraceID        string `json:"traceId"`
	SpanID         string `json:"spanId"`
	Service        string `json:"service"`
}

type timelineSpanJSON struct {
	TraceID    string     `json:"traceId"`
	SpanID     string     `json:"spanId"`
	Name       string     `json:"name"`
	Service    string     `json:"service"`
	Kind       string     `json:"kind"`
	Status     statusJSON `json:"status"`
	DurationNs uint64     `json:"durationNs,string"`
}

type timelineMetricJSON struct {
	Name     string         `json:"name"`
	Unit     string         `json:"unit"`
	Type     string         `json:"type"` // gauge, sum
	SeriesID string         `json:"seriesId"`
	Value    any            `json:"value"` // number (int or double)
	Labels   map[string]any `json:"labels"`
}

type timelineItemJSON struct {
	Kind         string              `json:"kind"` // event, log, span, metric
	TimeUnixNano uint64              `json:"timeUnixNano,string"`
	Event        *events.Event       `json:"event,omitempty"`
	Log          *timelineLogJSON    `json:"log,omitempty"`
	Span         *timelineSpanJSON   `json:"span,omitempty"`
	Metric       *timelineMetricJSON `json:"metric,omitempty"`
}

type timelineJSON struct {
	ContainerID       string             `json:"containerId"`
	StartTimeUnixNano uint64             `json:"startTimeUnixNano,string"`
	EndTimeUnixNano   uint64             `json:"endTimeUnixNano,string"`
	Items             []timelineItemJSON `json:"items"`
	// NextCursor is always "": a cut timeline (Truncated) continues with
	// start = the last item's time.
	NextCursor string `json:"nextCursor"`
	Truncated  bool   `json:"truncated"`
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func eventOut(e events.Event) events.Event {
	e.Tags, e.FieldKeys, e.FieldValues = emptyIfNil(e.Tags), emptyIfNil(e.FieldKeys), emptyIfNil(e.FieldValues)
	return e
}

func toContainerJSON(c *chstore.Container) containerJSON {
	out := containerJSON{
		ContainerID: c.ContainerID, ContainerIDShort: events.ShortContainerID(c.ContainerID),
		ContainerName: c.ContainerName, PodUID: c.PodUID, PodName: c.PodName, Namespace: c.Namespace,
		NodeName: c.NodeName, Image: c.Image, Services: emptyIfNil(c.Services), Signals: emptyIfNil(c.Signals),
		FirstSeenUnixNano: c.FirstSeenNs, LastSeenUnixNano: c.LastSeenNs,
	}
	if c.TerminationType != "" {
		t := &terminationJSON{Type: c.TerminationType, Reason: c.TerminationReason, TimeUnixNano: c.TerminatedNs}
		if c.ExitCode != events.ExitCodeUnknown {
			code := c.ExitCode
			t.ExitCode = &code
		}
		out.Termination = t
	}
	return out
}

// ---- handlers ----

func (h eventHandlers) searchEvents(r *http.Request, tenantID string) (any, error) {
	if h.es == nil {
		return nil, errEventsUnavailable
	}
	q, err := h.parseEventSearch(r)
	if err != nil {
		return nil, err
	}
	q.TenantID = tenantID
	limit := q.Limit
	q.Limit = limit + 1
	evs, err := h.es.SearchEvents(r.Context(), q)
	if err != nil {
		return nil, err
	}
	evs, more := nextPage(evs, limit)
	resp := listResponse[events.Event]{Items: make([]events.Event, 0, len(evs))}
	if more {
		last := evs[limit-1]
		resp.NextCursor = encodeEventCursor(chstore.EventCursor{TimeNs: last.TimeUnixNano, ID: last.ID})
	}
	for _, e := range evs {
		resp.Items = append(resp.Items, eventOut(e))
	}
	return resp, nil
}

func (h eventHandlers) getContainer(r *http.Request, tenantID string) (any, error) {
	if h.es == nil {
		return nil, errEventsUnavailable
	}
	id, err := parseContainerID("containerId", chi.URLParam(r, "containerId"))
	if err != nil {
		return nil, err
	}
	c, err := h.es.GetContainer(r.Context(), tenantID, id)
	if err != nil {
		return nil, err
	}
	return toContainerJSON(&c), nil
}

func (h eventHandlers) getPod(r *http.Request, tenantID string) (any, error) {
	if h.es == nil {
		return nil, errEventsUnavailable
	}
	uid := chi.URLParam(r, "podUid")
	if err := checkPodUID(uid); err != nil {
		return nil, err
	}
	p, err := h.es.GetPod(r.Context(), tenantID, uid)
	if err != nil {
		return nil, err
	}
	out := podJSON{PodUID: p.PodUID, PodName: p.PodName, Namespace: p.Namespace, NodeName: p.NodeName,
		Services: emptyIfNil(p.Services), Signals: emptyIfNil(p.Signals),
		FirstSeenUnixNano: p.FirstSeenNs, LastSeenUnixNano: p.LastSeenNs,
		Containers: make([]podContainerJSON, len(p.Containers))}
	for i, c := range p.Containers {
		out.Containers[i] = podContainerJSON{ContainerID: c.ContainerID, ContainerIDShort: events.ShortContainerID(c.ContainerID),
			ContainerName: c.ContainerName, Image: c.Image, FirstSeenUnixNano: c.FirstSeenNs, LastSeenUnixNano: c.LastSeenNs}
	}
	return out, nil
}

// containerTimeline answers a container's timeline. Without start and end
// the window is the container's whole known life (first to last sighting,
// a minute each side), so the timeline of a long-gone container needs no
// guessing.
func (h eventHandlers) containerTimeline(r *http.Request, tenantID string) (any, error) {
	if h.es == nil {
		return nil, errEventsUnavailable
	}
	id, err := parseContainerID("containerId", chi.URLParam(r, "containerId"))
	if err != nil {
		return nil, err
	}
	v := r.URL.Query()
	limit := h.s.cfg.MaxLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > h.s.cfg.MaxLimit {
			return nil, apperr.Invalid("limit", "must be an integer from 1 to %d", h.s.cfg.MaxLimit)
		}
		limit = n
	}
	var start, end time.Time
	if v.Get("start") == "" && v.Get("end") == "" {
		c, err := h.es.GetContainer(r.Context(), tenantID, id)
		if err != nil {
			return nil, err
		}
		end = time.Unix(0, int64(min(c.LastSeenNs, 1<<63-1))).Add(timelineDefaultSlack)
		start = time.Unix(0, int64(min(c.FirstSeenNs, 1<<63-1))).Add(-timelineDefaultSlack)
		if end.Sub(start) > h.s.cfg.MaxSearchWindow {
			start = end.Add(-h.s.cfg.MaxSearchWindow)
		}
	} else if start, end, err = h.s.parseWindow(r, h.s.cfg.DefaultSearchWindow); err != nil {
		return nil, err
	}
	items, cut, err := h.es.ContainerTimeline(r.Context(), tenantID, id, start, end, limit)
	if err != nil {
		return nil, err
	}
	out := timelineJSON{ContainerID: id, StartTimeUnixNano: uint64(max(start.UnixNano(), 0)),
		EndTimeUnixNano: uint64(max(end.UnixNano(), 0)), Items: make([]timelineItemJSON, 0, len(items)), Truncated: cut}
	for _, it := range items {
		out.Items = append(out.Items, toTimelineItem(it))
	}
	return out, nil
}

func toTimelineItem(it chstore.TimelineItem) timelineItemJSON {
	out := timelineItemJSON{Kind: it.Kind, TimeUnixNano: it.TimeNs}
	switch {
	case it.Event != nil:
		e := eventOut(*it.Event)
		out.Event = &e
	case it.Log != nil:
		l := it.Log
		out.Log = &timelineLogJSON{RecordID: l.RecordID, SeverityNumber: l.SeverityNumber, SeverityText: l.SeverityText,
			Body: logBody(l.Body, l.BodyType), TraceID: l.TraceID, SpanID: l.SpanID, Service: l.Service}
	case it.Span != nil:
		sp := it.Span
		out.Span = &timelineSpanJSON{TraceID: sp.TraceID, SpanID: sp.SpanID, Name: sp.Name, Service: sp.Service,
			Kind: kindName(sp.Kind), Status: statusJSON{Code: statusName(sp.StatusCode), Message: sp.StatusMessage},
			DurationNs: sp.DurationNs}
	case it.Metric != nil:
		m := it.Metric
		mj := &timelineMetricJSON{Name: m.Name, Unit: m.Unit, Type: "gauge", SeriesID: strconv.FormatUint(m.SeriesID, 16),
			Labels: jsonAttrs(m.Labels)}
		if m.Type == chstore.MetricTypeSum {
			mj.Type = "sum"
		}
		if m.ValueType == otlpconv.ValueInt {
			mj.Value = m.ValueInt
		} else {
			mj.Value = jsonNumber(m.Value)
		}
		out.Metric = mj
	}
	return out
}

// jsonNumber renders NaN and infinities as strings (JSON has no such numbers).
func jsonNumber(f float64) any {
	v := jsonAttrs(map[string]any{"v": f})["v"]
	return v
}

// ---- input ----

// parseContainerID normalizes a container id (any runtime form) and checks
// it is at least Falco's 12 characters.
func parseContainerID(field, raw string) (string, error) {
	n := otlpconv.NormalizeContainerID(raw)
	switch {
	case len(n) < minContainerIDLen || len(n) > maxContainerIDLen:
		return "", apperr.Invalid(field, "must be a container id (the full id or its first %d characters), %d to %d characters", minContainerIDLen, minContainerIDLen, maxContainerIDLen)
	case strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return "", apperr.Invalid(field, "must be printable ASCII without spaces")
	}
	return n, nil
}

func checkPodUID(uid string) error {
	switch {
	case uid == "":
		return apperr.Invalid("podUid", "must not be empty")
	case !utf8.ValidString(uid):
		return apperr.Invalid("podUid", "must be valid UTF-8")
	case len(uid) > maxPodUIDBytes:
		return apperr.Invalid("podUid", "must be at most %d bytes", maxPodUIDBytes)
	}
	return nil
}

// parseMinSeverity accepts a severity name (debug, info, notice, warning,
// error, critical, alert, emergency; Falco's priority names too) or a
// number on the OTLP severity scale (0 to 24).
func parseMinSeverity(v string) (uint8, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > maxSeverityNumber {
			return 0, apperr.Invalid("minSeverity", "must be a severity name or a number from 0 to %d", maxSeverityNumber)
		}
		return uint8(n), nil
	}
	if s, ok := events.ParseSeverity(v); ok {
		return s, nil
	}
	return 0, apperr.Invalid("minSeverity", "must be a severity name (debug, info, notice, warning, error, critical, alert, emergency) or a number from 0 to %d", maxSeverityNumber)
}

func (h eventHandlers) parseEventSearch(r *http.Request) (chstore.EventQuery, error) {
	var q chstore.EventQuery
	start, end, err := h.s.parseWindow(r, h.s.cfg.DefaultSearchWindow)
	if err != nil {
		return q, err
	}
	q.Start, q.End = start, end
	v := r.URL.Query()
	if c := v.Get("containerId"); c != "" {
		if q.ContainerID, err = parseContainerID("containerId", c); err != nil {
			return q, err
		}
	}
	if p := v.Get("podUid"); p != "" {
		if err := checkPodUID(p); err != nil {
			return q, err
		}
		q.PodUID = p
	}
	q.Namespace = v.Get("namespace")
	if !utf8.ValidString(q.Namespace) || len(q.Namespace) > maxNamespaceBytes {
		return q, apperr.Invalid("namespace", "must be valid UTF-8 of at most %d bytes", maxNamespaceBytes)
	}
	if t := v.Get("type"); t != "" {
		if !eventTypes[t] {
			return q, apperr.Invalid("type", "must be one of security_alert, oom_killed, crash_loop, container_error, evicted, image_pull_failed, k8s_event")
		}
		q.Type = t
	}
	if ms := v.Get("minSeverity"); ms != "" {
		if q.MinSeverity, err = parseMinSeverity(ms); err != nil {
			return q, err
		}
	}
	q.Limit = h.s.cfg.DefaultLimit
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > h.s.cfg.MaxLimit {
			return q, apperr.Invalid("limit", "must be an integer from 1 to %d", h.s.cfg.MaxLimit)
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		cur, err := decodeEventCursor(c)
		if err != nil {
			return q, err
		}
		q.Cursor = &cur
	}
	return q, nil
}

// Event cursors: base64url (no padding) of a version byte, the event time
// (big-endian uint64 ns) and the event id.
func encodeEventCursor(c chstore.EventCursor) string {
	var b [eventCursorLen]byte
	b[0] = eventCursorVersion
	binary.BigEndian.PutUint64(b[1:9], c.TimeNs)
	copy(b[9:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeEventCursor(s string) (chstore.EventCursor, error) {
	var c chstore.EventCursor
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != eventCursorLen || b[0] != eventCursorVersion {
		return c, apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
	}
	c.TimeNs = binary.BigEndian.Uint64(b[1:9])
	copy(c.ID[:], b[9:])
	return c, nil
}
