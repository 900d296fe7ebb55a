package api

import (
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
)

// Correlations reads events with their linked traces, and the events of a
// trace; implemented by *chstore.Store.
type Correlations interface {
	GetEvent(ctx context.Context, tenantID string, id events.ID) (events.Event, error)
	LinksOfEvent(ctx context.Context, tenantID string, eventID events.ID, limit int) ([]chstore.EventLink, error)
	// LinksOfEvents is LinksOfEvent for many events in a bounded number
	// of queries, at most perEvent per event and total in all.
	LinksOfEvents(ctx context.Context, tenantID string, ids []events.ID, perEvent, total int) (map[events.ID][]chstore.EventLink, bool, error)
	EventsOfTrace(ctx context.Context, tenantID string, traceID [16]byte, limit int) ([]chstore.TraceEvent, error)
	// TraceExists tells an unknown trace (404) from one without events.
	TraceExists(ctx context.Context, tenantID string, traceID [16]byte) (bool, error)
}

var _ Correlations = (*chstore.Store)(nil)

var errCorrelationsUnavailable = apperr.New(apperr.KindUnavailable, "event correlation is not configured")

// Bounds of the correlation answers.
const (
	maxLinkedTraces   = 10_000 // links read per event
	maxImpactKeys     = 100    // business key values listed per key name
	maxTraceEvents    = 1000   // events listed per trace
	maxIncidentTraces = 1000   // linked traces listed per incident
)

// maxIncidentLinks bounds the links read per incident (for its business
// impact); over it linkedTracesTruncated is set.
const maxIncidentLinks = 100_000

// ---- JSON ----

type eventDetailJSON struct {
	events.Event
	LinkedTraces []linkedTraceJSON `json:"linkedTraces"`
}

type linkedTraceJSON struct {
	TraceID             string            `json:"traceId"`
	EventID             string            `json:"eventId,omitempty"`
	MatchKind           string            `json:"matchKind"`
	SpanCount           uint32            `json:"spanCount"`
	StartTimeUnixNano   uint64            `json:"startTimeUnixNano,string"`
	DurationNs          uint64            `json:"durationNs,string"`
	RootService         string            `json:"rootService"`
	RootName            string            `json:"rootName"`
	Failed              bool              `json:"failed"`
	BusinessTransaction string            `json:"businessTransaction"`
	BusinessKeys        map[string]string `json:"businessKeys"` // one value per name (the first, sorted)
}

type impactJSON struct {
	Traces       int                 `json:"traces"`
	Failed       int                 `json:"failed"`
	Unclassified int                 `json:"unclassified"` // linked traces of no business transaction
	Transactions []transactionImpact `json:"transactions"`
}

type transactionImpact struct {
	BusinessTransaction string      `json:"businessTransaction"`
	Traces              int         `json:"traces"`
	Failed              int         `json:"failed"`
	Keys                []keyImpact `json:"keys"`
}

type keyImpact struct {
	Name      string   `json:"name"`
	Count     int      `json:"count"`     // distinct values
	Values    []string `json:"values"`    // the first maxImpactKeys, sorted
	Truncated bool     `json:"truncated"` // Values holds fewer than Count
}

type traceEventJSON struct {
	EventID      string `json:"eventId"`
	TimeUnixNano uint64 `json:"timeUnixNano,string"`
	Source       string `json:"source"`
	Type         string `json:"type"`
	Severity     uint8  `json:"severity"`
	SeverityText string `json:"severityText"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	ContainerID  string `json:"containerId"`
	PodUID       string `json:"podUid"`
	PodName      string `json:"podName"`
	Namespace    string `json:"namespace"`
	MatchKind    string `json:"matchKind"`
	SpanCount    uint32 `json:"spanCount"`
	EventMissing bool   `json:"eventMissing"`
}

func toLinkedTraceJSON(l *chstore.EventLink, withEvent bool) linkedTraceJSON {
	out := linkedTraceJSON{
		TraceID: hex.EncodeToString(l.TraceID[:]), MatchKind: l.MatchKind, SpanCount: l.SpanCount,
		StartTimeUnixNano: l.TraceStartNs, DurationNs: l.TraceDurationNs, RootService: l.RootService, RootName: l.RootName,
		Failed: l.Failed, BusinessTransaction: l.BusinessTransaction, BusinessKeys: map[string]string{},
	}
	if withEvent {
		out.EventID = l.EventID.String()
	}
	for i := range min(len(l.BusinessKeyNames), len(l.BusinessKeyValues)) {
		if _, ok := out.BusinessKeys[l.BusinessKeyNames[i]]; !ok {
			out.BusinessKeys[l.BusinessKeyNames[i]] = l.BusinessKeyValues[i]
		}
	}
	return out
}

// businessImpact aggregates links (each trace once) per business transaction.
func businessImpact(links []chstore.EventLink) impactJSON {
	out := impactJSON{Transactions: []transactionImpact{}}
	type acc struct {
		traces, failed int
		keys           map[string]map[string]bool
	}
	byTx := map[string]*acc{}
	seen := map[[16]byte]bool{}
	for i := range links {
		l := &links[i]
		if seen[l.TraceID] {
			continue
		}
		seen[l.TraceID] = true
		out.Traces++
		if l.Failed {
			out.Failed++
		}
		if l.BusinessTransaction == "" {
			out.Unclassified++
			continue
		}
		a := byTx[l.BusinessTransaction]
		if a == nil {
			a = &acc{keys: map[string]map[string]bool{}}
			byTx[l.BusinessTransaction] = a
		}
		a.traces++
		if l.Failed {
			a.failed++
		}
		for j := range min(len(l.BusinessKeyNames), len(l.BusinessKeyValues)) {
			k := l.BusinessKeyNames[j]
			if a.keys[k] == nil {
				a.keys[k] = map[string]bool{}
			}
			a.keys[k][l.BusinessKeyValues[j]] = true
		}
	}
	for name, a := range byTx {
		ti := transactionImpact{BusinessTransaction: name, Traces: a.traces, Failed: a.failed, Keys: []keyImpact{}}
		for k, vals := range a.keys {
			ki := keyImpact{Name: k, Count: len(vals), Values: make([]string, 0, len(vals))}
			for v := range vals {
				ki.Values = append(ki.Values, v)
			}
			slices.Sort(ki.Values)
			if len(ki.Values) > maxImpactKeys {
				ki.Values, ki.Truncated = ki.Values[:maxImpactKeys], true
			}
			ti.Keys = append(ti.Keys, ki)
		}
		slices.SortFunc(ti.Keys, func(a, b keyImpact) int { return strings.Compare(a.Name, b.Name) })
		out.Transactions = append(out.Transactions, ti)
	}
	slices.SortFunc(out.Transactions, func(a, b transactionImpact) int { return strings.Compare(a.BusinessTransaction, b.BusinessTransaction) })
	return out
}

// ---- routes ----

// correlateRoutes mounts the event detail, impact and trace-events reads.
func (s *Service) correlateRoutes(r chi.Router, c Correlations) {
	h := correlateHandlers{s: s, c: c}
	r.Get("/events/{eventId}", s.serve(h.getEvent))
	r.Get("/events/{eventId}/impact", s.serve(h.eventImpact))
	r.Get("/traces/{traceId}/events", s.serve(h.traceEvents))
}

type correlateHandlers struct {
	s *Service
	c Correlations
}

func parseEventID(s string) (events.ID, error) {
	id, err := events.ParseID(s)
	if err != nil {
		return id, apperr.Invalid("eventId", "must be 32 hex characters")
	}
	return id, nil
}

func (h correlateHandlers) getEvent(r *http.Request, tenantID string) (any, error) {
	if h.c == nil {
		return nil, errCorrelationsUnavailable
	}
	id, err := parseEventID(chi.URLParam(r, "eventId"))
	if err != nil {
		return nil, err
	}
	ev, err := h.c.GetEvent(r.Context(), tenantID, id)
	if err != nil {
		return nil, err
	}
	links, err := h.c.LinksOfEvent(r.Context(), tenantID, id, maxLinkedTraces)
	if err != nil {
		return nil, err
	}
	out := eventDetailJSON{Event: ev, LinkedTraces: make([]linkedTraceJSON, len(links))}
	for i := range links {
		out.LinkedTraces[i] = toLinkedTraceJSON(&links[i], false)
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.FieldKeys == nil {
		out.FieldKeys, out.FieldValues = []string{}, []string{}
	}
	return out, nil
}

func (h correlateHandlers) eventImpact(r *http.Request, tenantID string) (any, error) {
	if h.c == nil {
		return nil, errCorrelationsUnavailable
	}
	id, err := parseEventID(chi.URLParam(r, "eventId"))
	if err != nil {
		return nil, err
	}
	if _, err := h.c.GetEvent(r.Context(), tenantID, id); err != nil {
		return nil, err
	}
	links, err := h.c.LinksOfEvent(r.Context(), tenantID, id, maxLinkedTraces)
	if err != nil {
		return nil, err
	}
	out := struct {
		EventID string `json:"eventId"`
		impactJSON
	}{EventID: id.String(), impactJSON: businessImpact(links)}
	return out, nil
}

func (h correlateHandlers) traceEvents(r *http.Request, tenantID string) (any, error) {
	if h.c == nil {
		return nil, errCorrelationsUnavailable
	}
	tid, err := parseTraceID(chi.URLParam(r, "traceId"))
	if err != nil {
		return nil, err
	}
	evs, err := h.c.EventsOfTrace(r.Context(), tenantID, tid, maxTraceEvents)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		// Another tenant's trace id (or none) is a 404, like GET /traces/{id}.
		ok, err := h.c.TraceExists(r.Context(), tenantID, tid)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apperr.New(apperr.KindNotFound, "trace %s not found", hex.EncodeToString(tid[:]))
		}
	}
	resp := listResponse[traceEventJSON]{Items: make([]traceEventJSON, len(evs))}
	for i, e := range evs {
		resp.Items[i] = traceEventJSON{
			EventID: e.EventID.String(), TimeUnixNano: e.TimeNs, Source: e.Source, Type: e.Type, Severity: e.Severity,
			SeverityText: events.SeverityName(e.Severity), Reason: e.Reason, Message: e.Message, ContainerID: e.ContainerID,
			PodUID: e.PodUID, PodName: e.PodName, Namespace: e.Namespace, MatchKind: e.MatchKind, SpanCount: e.SpanCount,
			EventMissing: e.EventMissing,
		}
	}
	return resp, nil
}
