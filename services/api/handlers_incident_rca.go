package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
)

// IncidentRootCauseStore reads incidents and stores their root causes;
// implemented by *pgstore.Store.
type IncidentRootCauseStore interface {
	GetIncident(ctx context.Context, tenantID, id string) (pgstore.Incident, error)
	GetIncidentRootCauses(ctx context.Context, tenantID, incidentID string) (pgstore.IncidentRootCauses, error)
	SaveIncidentRootCauses(ctx context.Context, rc pgstore.IncidentRootCauses) (pgstore.IncidentRootCauses, error)
}

var _ IncidentRootCauseStore = (*pgstore.Store)(nil)

var errIncidentRCAUnavailable = apperr.New(apperr.KindUnavailable, "incident root causes need Postgres and the RCA engine, which are not configured")

// The analysed window of an incident: causes come before their symptoms,
// so it starts incidentRCALead before the first event.
const (
	incidentRCALead  = 10 * time.Minute
	incidentRCATrail = time.Minute
)

// incidentRCAWindow is the window the engine analyses for an incident.
func incidentRCAWindow(in pgstore.Incident) (time.Time, time.Time) {
	start := in.FirstEventAt.Add(-incidentRCALead).UTC().Truncate(time.Second)
	last := in.LastEventAt
	if last.Before(in.FirstEventAt) {
		last = in.FirstEventAt
	}
	end := last.Add(incidentRCATrail)
	// An anomaly incident is opened minutes after its onset, which is its
	// event's time: it is analysed up to its opening, as the pass that
	// found it was (at most incidentRCALead past the event).
	if o := in.OpenedAt; in.Kind == pgstore.IncidentKindAnomaly && o.After(end) {
		end = last.Add(incidentRCALead)
		if o.Before(end) {
			end = o
		}
	}
	end = end.UTC().Truncate(time.Second).Add(time.Second)
	if end.Sub(start) > rca.MaxWindow {
		end = start.Add(rca.MaxWindow)
	}
	return start, end
}

type incidentRootCausesJSON struct {
	rca.Result
	IncidentID string `json:"incidentId"`
	ComputedAt string `json:"computedAt"`
	Stored     bool   `json:"stored"`
}

// incidentRootCauses serves GET /api/v1/incidents/{id}/root-causes.
func (s *Service) incidentRootCauses(eng RCA, store IncidentRootCauseStore) readHandler {
	return func(r *http.Request, tenantID string) (any, error) {
		if eng == nil || store == nil {
			return nil, errIncidentRCAUnavailable
		}
		ctx := r.Context()
		id, err := parseHexIDParam(r, "id")
		if err != nil {
			return nil, err
		}
		refresh, err := parseRefreshParam(r, "refresh")
		if err != nil {
			return nil, err
		}
		in, err := store.GetIncident(ctx, tenantID, id)
		if err != nil {
			return nil, err
		}
		start, end := incidentRCAWindow(in)
		if !refresh {
			rc, err := store.GetIncidentRootCauses(ctx, tenantID, id)
			switch {
			case err == nil && rc.WindowStart.Equal(start) && rc.WindowEnd.Equal(end):
				var res rca.Result
				if err := json.Unmarshal(rc.Result, &res); err == nil {
					return rootCausesAnswer(res, id, rc.ComputedAt, true), nil
				}
			case err != nil && apperr.KindOf(err) != apperr.KindNotFound:
				return nil, err
			}
		}
		res, err := eng.Analyze(ctx, rca.Query{TenantID: tenantID, Start: start, End: end})
		if errors.Is(err, rca.ErrWindow) {
			return nil, apperr.Invalid("id", "incident window: %v", err)
		}
		if err != nil {
			return nil, err
		}
		if res.Candidates == nil {
			res.Candidates = []rca.Candidate{}
		}
		doc, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		rc, err := store.SaveIncidentRootCauses(ctx, pgstore.IncidentRootCauses{IncidentID: id, TenantID: tenantID,
			WindowStart: start, WindowEnd: end, Result: doc})
		if err != nil {
			return nil, err
		}
		return rootCausesAnswer(res, id, rc.ComputedAt, false), nil
	}
}

func rootCausesAnswer(res rca.Result, id string, at time.Time, stored bool) incidentRootCausesJSON {
	if res.Candidates == nil {
		res.Candidates = []rca.Candidate{}
	}
	return incidentRootCausesJSON{Result: res, IncidentID: id, ComputedAt: at.UTC().Format(time.RFC3339Nano), Stored: stored}
}

// parseRefreshParam reads the optional boolean query parameter name
// ("true"/"false", "1"/"0"; absent is false).
func parseRefreshParam(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, apperr.Invalid(name, "must be true or false")
}
