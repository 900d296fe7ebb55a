package api

import (
	"context"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/rca"
)

// RCA ranks root-cause candidates; implemented by *rca.Engine.
type RCA interface {
	Analyze(ctx context.Context, q rca.Query) (rca.Result, error)
}

var _ RCA = (*rca.Engine)(nil)

var errRCAUnavailable = apperr.New(apperr.KindUnavailable, "root-cause analysis is not configured")

type rcaRequest struct {
	Start     string `json:"start"`
	End       string `json:"end"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
}

// parseRCARequest reads and checks the body of POST /api/v1/rca.
func parseRCARequest(r *http.Request, tenantID string) (rca.Query, error) {
	var req rcaRequest
	if err := decodeBody(r, &req, false); err != nil {
		return rca.Query{}, err
	}
	q := rca.Query{TenantID: tenantID, Namespace: req.Namespace, Service: req.Service}
	var err error
	if req.Start == "" {
		return q, apperr.Invalid("start", "required (RFC 3339)")
	}
	if q.Start, err = parseTime("start", req.Start); err != nil {
		return q, err
	}
	if req.End == "" {
		return q, apperr.Invalid("end", "required (RFC 3339)")
	}
	if q.End, err = parseTime("end", req.End); err != nil {
		return q, err
	}
	if !q.End.After(q.Start) {
		return q, apperr.Invalid("end", "must be after start")
	}
	if q.End.Sub(q.Start) > rca.MaxWindow {
		return q, apperr.Invalid("end", "the window must be at most %s", rca.MaxWindow)
	}
	for _, f := range []struct{ name, v string }{{"namespace", q.Namespace}, {"service", q.Service}} {
		if len(f.v) > maxServiceNameBytes || !utf8.ValidString(f.v) {
			return q, apperr.Invalid(f.name, "must be valid UTF-8 of at most %d bytes", maxServiceNameBytes)
		}
	}
	return q, nil
}

// rootCauses serves POST /api/v1/rca.
func (s *Service) rootCauses(eng RCA) readHandler {
	return func(r *http.Request, tenantID string) (any, error) {
		if eng == nil {
			return nil, errRCAUnavailable
		}
		q, err := parseRCARequest(r, tenantID)
		if err != nil {
			return nil, err
		}
		res, err := eng.Analyze(r.Context(), q)
		if errors.Is(err, rca.ErrWindow) {
			return nil, apperr.Invalid("end", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		if res.Candidates == nil {
			res.Candidates = []rca.Candidate{}
		}
		return res, nil
	}
}
