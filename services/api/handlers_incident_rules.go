package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// IncidentRuleStore keeps each tenant's incident rules; implemented by
// *pgstore.Store (ok false: the tenant has none).
type IncidentRuleStore interface {
	IncidentRules(ctx context.Context, tenantID string) (r pgstore.IncidentRules, ok bool, err error)
	SetIncidentRules(ctx context.Context, tenantID string, r pgstore.IncidentRules) (pgstore.IncidentRules, error)
}

var _ IncidentRuleStore = (*pgstore.Store)(nil)

var errIncidentRulesUnavailable = apperr.New(apperr.KindUnavailable, "incident rules need Postgres, which is not configured")

// incidentRulesJSON is the body of GET and PUT /api/v1/incident-rules.
type incidentRulesJSON struct {
	MinSeverity     uint8    `json:"minSeverity"`
	MinSeverityText string   `json:"minSeverityText"`
	EventTypes      []string `json:"eventTypes"`
	AnomalyMinScore float64  `json:"anomalyMinScore"`
	Custom          bool     `json:"custom"`    // false: the server's defaults apply
	UpdatedAt       *string  `json:"updatedAt"` // when the tenant last set them
}

func toIncidentRulesJSON(r pgstore.IncidentRules, custom bool) incidentRulesJSON {
	types := r.EventTypes
	if types == nil {
		types = []string{}
	}
	out := incidentRulesJSON{
		MinSeverity: r.MinSeverity, MinSeverityText: events.SeverityName(r.MinSeverity), EventTypes: types,
		AnomalyMinScore: r.AnomalyMinScore, Custom: custom,
	}
	if custom {
		out.UpdatedAt = optTime(&r.UpdatedAt)
	}
	return out
}

func (s *Service) incidentRuleRoutes(r chi.Router, store IncidentRuleStore, defaults pgstore.IncidentRules) {
	h := incidentRuleHandlers{store: store, defaults: defaults}
	r.Get("/incident-rules", s.serve(h.get))
	r.Put("/incident-rules", s.serve(h.put))
}

type incidentRuleHandlers struct {
	store    IncidentRuleStore
	defaults pgstore.IncidentRules
}

func (h incidentRuleHandlers) get(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errIncidentRulesUnavailable
	}
	rules, ok, err := h.store.IncidentRules(r.Context(), tenantID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return toIncidentRulesJSON(h.defaults, false), nil
	}
	return toIncidentRulesJSON(rules, true), nil
}

// put replaces the tenant's rules; minSeverity and anomalyMinScore are
// required, eventTypes defaults to none.
func (h incidentRuleHandlers) put(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errIncidentRulesUnavailable
	}
	var body struct {
		MinSeverity     *int     `json:"minSeverity"`
		EventTypes      []string `json:"eventTypes"`
		AnomalyMinScore *float64 `json:"anomalyMinScore"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	switch {
	case body.MinSeverity == nil:
		return nil, apperr.Invalid("minSeverity", "is required (OTLP severity number: 13 warning, 17 error, 18 critical)")
	case *body.MinSeverity < 1 || *body.MinSeverity > 24:
		return nil, apperr.Invalid("minSeverity", "must be an OTLP severity number from 1 to 24 (13 warning, 17 error, 18 critical)")
	case body.AnomalyMinScore == nil:
		return nil, apperr.Invalid("anomalyMinScore", "is required (0: anomalies never open incidents)")
	}
	rules := pgstore.IncidentRules{
		MinSeverity: uint8(*body.MinSeverity), EventTypes: body.EventTypes, AnomalyMinScore: *body.AnomalyMinScore,
	}
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	saved, err := h.store.SetIncidentRules(r.Context(), tenantID, rules)
	if err != nil {
		return nil, err
	}
	return toIncidentRulesJSON(saved, true), nil
}
