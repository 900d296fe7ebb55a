package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// Incidents reads incidents and changes their status; implemented by
// *pgstore.Store.
type Incidents interface {
	ListIncidents(ctx context.Context, q pgstore.IncidentQuery) ([]pgstore.Incident, error)
	GetIncident(ctx context.Context, tenantID, id string) (pgstore.Incident, error)
	IncidentEvents(ctx context.Context, tenantID, id string) ([]pgstore.IncidentEvent, error)
	IncidentHistory(ctx context.Context, id string) ([]pgstore.IncidentChange, error)
	SetIncidentStatus(ctx context.Context, tenantID, id, status, actor, note string) (pgstore.Incident, error)
}

var _ Incidents = (*pgstore.Store)(nil)

var errIncidentsUnavailable = apperr.New(apperr.KindUnavailable, "incidents need Postgres, which is not configured")

const (
	incidentsDefaultWindow = 7 * 24 * time.Hour
	incidentsDefaultLimit  = 100
	incidentsMaxLimit      = 1000
	maxActorBytes          = 200
)

type incidentJSON struct {
	ID             string   `json:"id"`
	Kind           string   `json:"kind"`
	Title          string   `json:"title"`
	Status         string   `json:"status"`
	Severity       uint8    `json:"severity"`
	SeverityText   string   `json:"severityText"`
	Namespace      string   `json:"namespace"`
	Workload       string   `json:"workload"`
	Services       []string `json:"services"`
	EventCount     int      `json:"eventCount"`
	FirstEventAt   string   `json:"firstEventAt"`
	LastEventAt    string   `json:"lastEventAt"`
	OpenedAt       string   `json:"openedAt"`
	UpdatedAt      string   `json:"updatedAt"`
	AcknowledgedAt *string  `json:"acknowledgedAt"`
	AcknowledgedBy string   `json:"acknowledgedBy"`
	ResolvedAt     *string  `json:"resolvedAt"`
	ResolvedBy     string   `json:"resolvedBy"`
}

type incidentEventJSON struct {
	EventID      string `json:"eventId"`
	Time         string `json:"time"`
	Type         string `json:"type"`
	Severity     uint8  `json:"severity"`
	SeverityText string `json:"severityText"`
	Reason       string `json:"reason"`
	Namespace    string `json:"namespace"`
	Workload     string `json:"workload"`
	PodName      string `json:"podName"`
	PodUID       string `json:"podUid"`
	ContainerID  string `json:"containerId"`
	// Score and Summary: anomaly records (type "anomaly") only.
	Score   float64 `json:"score,omitempty"`
	Summary string  `json:"summary,omitempty"`
}

type incidentChangeJSON struct {
	At     string `json:"at"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	From   string `json:"from"`
	To     string `json:"to"`
	Note   string `json:"note"`
}

type affectedContainerJSON struct {
	ContainerID string `json:"containerId"`
	PodUID      string `json:"podUid"`
	PodName     string `json:"podName"`
	Namespace   string `json:"namespace"`
	Workload    string `json:"workload"`
}

type incidentDetailJSON struct {
	incidentJSON
	Events             []incidentEventJSON     `json:"events"`
	History            []incidentChangeJSON    `json:"history"`
	AffectedContainers []affectedContainerJSON `json:"affectedContainers"`
	LinkedTraces       []linkedTraceJSON       `json:"linkedTraces"`
	LinkedTracesCut    bool                    `json:"linkedTracesTruncated"`
	BusinessImpact     impactJSON              `json:"businessImpact"`
}

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := rfc3339(*t)
	return &s
}

func toIncidentJSON(in pgstore.Incident) incidentJSON {
	svcs := in.Services
	if svcs == nil {
		svcs = []string{}
	}
	return incidentJSON{
		ID: in.ID, Kind: in.Kind, Title: in.Title, Status: in.Status, Severity: in.Severity, SeverityText: events.SeverityName(in.Severity),
		Namespace: in.Namespace, Workload: in.Workload, Services: svcs, EventCount: in.EventCount,
		FirstEventAt: rfc3339(in.FirstEventAt), LastEventAt: rfc3339(in.LastEventAt), OpenedAt: rfc3339(in.OpenedAt),
		UpdatedAt: rfc3339(in.UpdatedAt), AcknowledgedAt: optTime(in.AcknowledgedAt), AcknowledgedBy: in.AcknowledgedBy,
		ResolvedAt: optTime(in.ResolvedAt), ResolvedBy: in.ResolvedBy,
	}
}

func (s *Service) incidentRoutes(r chi.Router, store Incidents, links Correlations) {
	h := incidentHandlers{s: s, store: store, links: links}
	r.Get("/incidents", s.serve(h.list))
	r.Get("/incidents/{id}", s.serve(h.get))
	r.Post("/incidents/{id}/ack", s.serve(h.setStatus(pgstore.IncidentAcknowledged)))
	r.Post("/incidents/{id}/resolve", s.serve(h.setStatus(pgstore.IncidentResolved)))
}

type incidentHandlers struct {
	s     *Service
	store Incidents
	links Correlations // nil: no linked traces in the detail
}

// Incident cursors: base64url of opened_at (unix ns, big-endian) + id.
func encodeIncidentCursor(in pgstore.Incident) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(in.OpenedAt.UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, in.ID...))
}

func decodeIncidentCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(b) <= 8 || len(b) > 8+128 {
		return time.Time{}, "", apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
	}
	if !isHexID(string(b[8:])) {
		return time.Time{}, "", apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), string(b[8:]), nil
}

func (h incidentHandlers) list(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errIncidentsUnavailable
	}
	start, end, err := h.s.parseWindow(r, incidentsDefaultWindow)
	if err != nil {
		return nil, err
	}
	v := r.URL.Query()
	q := pgstore.IncidentQuery{TenantID: tenantID, Status: v.Get("status"), Start: start, End: end, Limit: incidentsDefaultLimit}
	switch q.Status {
	case "", pgstore.IncidentOpen, pgstore.IncidentAcknowledged, pgstore.IncidentResolved:
	default:
		return nil, apperr.Invalid("status", "must be open, acknowledged or resolved")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > incidentsMaxLimit {
			return nil, apperr.Invalid("limit", "must be an integer from 1 to %d", incidentsMaxLimit)
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		at, id, err := decodeIncidentCursor(c)
		if err != nil {
			return nil, err
		}
		q.AfterOpened, q.AfterID = &at, id
	}
	limit := q.Limit
	q.Limit++
	list, err := h.store.ListIncidents(r.Context(), q)
	if err != nil {
		return nil, err
	}
	list, more := nextPage(list, limit)
	resp := listResponse[incidentJSON]{Items: make([]incidentJSON, len(list))}
	for i, in := range list {
		resp.Items[i] = toIncidentJSON(in)
	}
	if more {
		resp.NextCursor = encodeIncidentCursor(list[limit-1])
	}
	return resp, nil
}

func (h incidentHandlers) get(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errIncidentsUnavailable
	}
	ctx := r.Context()
	id, err := parseHexIDParam(r, "id")
	if err != nil {
		return nil, err
	}
	in, err := h.store.GetIncident(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	evs, err := h.store.IncidentEvents(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	hist, err := h.store.IncidentHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	out := incidentDetailJSON{
		incidentJSON: toIncidentJSON(in), Events: make([]incidentEventJSON, len(evs)),
		History: make([]incidentChangeJSON, len(hist)), AffectedContainers: []affectedContainerJSON{},
		LinkedTraces: []linkedTraceJSON{}, BusinessImpact: businessImpact(nil),
	}
	seenC := map[affectedContainerJSON]bool{}
	for i, e := range evs {
		out.Events[i] = incidentEventJSON{
			EventID: e.EventID, Time: rfc3339(e.EventTime), Type: e.Type, Severity: e.Severity,
			SeverityText: events.SeverityName(e.Severity), Reason: e.Reason, Namespace: e.Namespace, Workload: e.Workload,
			PodName: e.PodName, PodUID: e.PodUID, ContainerID: e.ContainerID, Score: e.Score, Summary: e.Summary,
		}
		c := affectedContainerJSON{ContainerID: e.ContainerID, PodUID: e.PodUID, PodName: e.PodName, Namespace: e.Namespace, Workload: e.Workload}
		if !seenC[c] {
			seenC[c] = true
			out.AffectedContainers = append(out.AffectedContainers, c)
		}
	}
	for i, c := range hist {
		out.History[i] = incidentChangeJSON{At: rfc3339(c.At), Actor: c.Actor, Action: c.Action, From: c.From, To: c.To, Note: c.Note}
	}
	if h.links == nil {
		return out, nil
	}
	// The links of all the events in one query (per few thousand events),
	// not one per event.
	ids := make([]events.ID, 0, len(evs))
	for _, e := range evs {
		if eid, err := events.ParseID(e.EventID); err == nil {
			ids = append(ids, eid)
		}
	}
	byEvent, cut, err := h.links.LinksOfEvents(ctx, tenantID, ids, maxLinkedTraces, maxIncidentLinks)
	if err != nil {
		return nil, err
	}
	out.LinkedTracesCut = cut
	var all []chstore.EventLink
	seenT := map[[16]byte]bool{}
	for _, eid := range ids {
		links := byEvent[eid]
		delete(byEvent, eid) // an event listed twice counts once
		all = append(all, links...)
		for i := range links {
			if seenT[links[i].TraceID] {
				continue
			}
			seenT[links[i].TraceID] = true
			if len(out.LinkedTraces) >= maxIncidentTraces {
				out.LinkedTracesCut = true
				continue
			}
			out.LinkedTraces = append(out.LinkedTraces, toLinkedTraceJSON(&links[i], true))
		}
	}
	out.BusinessImpact = businessImpact(all)
	return out, nil
}

// setStatus acknowledges or resolves; the optional body names the actor
// and a note.
func (h incidentHandlers) setStatus(status string) readHandler {
	return func(r *http.Request, tenantID string) (any, error) {
		if h.store == nil {
			return nil, errIncidentsUnavailable
		}
		var body struct {
			Actor string `json:"actor"`
			Note  string `json:"note"`
		}
		if err := decodeBody(r, &body, true); err != nil {
			return nil, err
		}
		if len(body.Actor) > maxActorBytes || !utf8.ValidString(body.Actor) {
			return nil, apperr.Invalid("actor", "must be valid UTF-8 of at most %d bytes", maxActorBytes)
		}
		if len(body.Note) > 4096 || !utf8.ValidString(body.Note) {
			return nil, apperr.Invalid("note", "must be valid UTF-8 of at most 4096 bytes")
		}
		if body.Actor == "" {
			body.Actor = "tenant:" + tenantID
		}
		id, err := parseHexIDParam(r, "id")
		if err != nil {
			return nil, err
		}
		in, err := h.store.SetIncidentStatus(r.Context(), tenantID, id, status, body.Actor, body.Note)
		if err != nil {
			return nil, err
		}
		return toIncidentJSON(in), nil
	}
}
