package api

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// Retention keeps retention policies, forensic holds, capture rules and
// evidence bundles with their chain of custody; implemented by
// *pgstore.Store. Every method is scoped to the tenant: another tenant's
// hold or bundle is apperr KindNotFound.
type Retention interface {
	Policies(ctx context.Context, tenantID string) ([]retention.Policy, error)
	SetPolicies(ctx context.Context, tenantID string, ps []retention.Policy) error
	CreateHold(ctx context.Context, tenantID string, n pgstore.NewHold) (retention.Hold, bool, error)
	ListHolds(ctx context.Context, tenantID string) ([]retention.Hold, error)
	ReleaseHold(ctx context.Context, tenantID, id, actor string) (retention.Hold, error)
	CaptureRules(ctx context.Context, tenantID string) ([]retention.CaptureRule, error)
	SetCaptureRules(ctx context.Context, tenantID string, rules []retention.CaptureRule) ([]retention.CaptureRule, error)
	CreateBundle(ctx context.Context, tenantID string, req retention.BundleRequest, actor string) (retention.Bundle, error)
	GetBundle(ctx context.Context, tenantID, id string) (retention.Bundle, error)
	// DownloadBundle records the download and returns the bundle and a
	// reader of its archive (read within ctx; closed by the caller).
	DownloadBundle(ctx context.Context, tenantID, id, actor string) (retention.Bundle, io.ReadCloser, error)
	Custody(ctx context.Context, tenantID, bundleID string) ([]retention.CustodyEntry, error)
}

var _ Retention = (*pgstore.Store)(nil)

var errRetentionUnavailable = apperr.New(apperr.KindUnavailable, "retention, holds and evidence need Postgres, which is not configured")

// retentionRoutes registers the retention, hold, capture rule and evidence
// routes (503 without a store).
func (s *Service) retentionRoutes(r chi.Router, rs Retention) {
	h := retentionHandlers{rs: rs}
	r.Get("/retention", s.serve(h.getPolicies))
	r.Put("/retention", s.serve(h.putPolicies))
	r.Get("/holds", s.serve(h.listHolds))
	r.Post("/holds", s.serve(h.createHold))
	r.Delete("/holds/{holdId}", s.serve(h.releaseHold))
	r.Get("/capture-rules", s.serve(h.getCaptureRules))
	r.Put("/capture-rules", s.serve(h.putCaptureRules))
	r.Post("/evidence", s.serve(h.createBundle))
	r.Get("/evidence/{bundleId}", s.serve(h.getBundle))
	r.Get("/evidence/{bundleId}/download", s.downloadBundle(rs))
	r.Get("/evidence/{bundleId}/custody", s.serve(h.custody))
}

type retentionHandlers struct{ rs Retention }

// actorOf is the credential of a request for custody records: the API
// key's id, never the key.
func actorOf(ctx context.Context) string {
	if t, ok := authn.TenantFrom(ctx); ok && t.KeyID != "" {
		return "api-key:" + t.KeyID
	}
	return "api-key:static"
}

type policiesJSON struct {
	Policies []retention.Policy `json:"policies"`
}

func (h retentionHandlers) getPolicies(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	ps, err := h.rs.Policies(r.Context(), tenantID)
	return policiesJSON{Policies: ps}, err
}

func (h retentionHandlers) putPolicies(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	var body struct {
		Policies *[]retention.Policy `json:"policies"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	if body.Policies == nil {
		return nil, apperr.Invalid("policies", "is required (an empty list removes every policy)")
	}
	ps := *body.Policies
	if err := retention.ValidatePolicies(ps); err != nil {
		return nil, err
	}
	if err := h.rs.SetPolicies(r.Context(), tenantID, ps); err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []retention.Policy{}
	}
	return policiesJSON{Policies: ps}, nil
}

type holdRequestJSON struct {
	Scope  string `json:"scope"`
	ID     string `json:"id"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Reason string `json:"reason"`
	Until  string `json:"until"`
}

// optHoldTime parses an optional time field.
func optHoldTime(field, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := parseTime(field, v)
	if err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}

func (h retentionHandlers) createHold(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	var body holdRequestJSON
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	req := retention.HoldRequest{Scope: retention.Scope(body.Scope), ID: body.ID, Reason: body.Reason}
	var err error
	if req.Start, err = optHoldTime("start", body.Start); err != nil {
		return nil, err
	}
	if req.End, err = optHoldTime("end", body.End); err != nil {
		return nil, err
	}
	if req.Until, err = optHoldTime("until", body.Until); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	hold, _, err := h.rs.CreateHold(r.Context(), tenantID, pgstore.NewHold{HoldRequest: req, Actor: actorOf(r.Context())})
	return hold, err
}

func (h retentionHandlers) listHolds(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	holds, err := h.rs.ListHolds(r.Context(), tenantID)
	return listResponse[retention.Hold]{Items: holds}, err
}

// parseHexID reads a hold or bundle id: 16 hex characters.
func parseHexID(field, s string) (string, error) {
	if len(s) != 16 {
		return "", apperr.Invalid(field, "must be 16 hex characters")
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", apperr.Invalid(field, "must be 16 hex characters")
	}
	return strings.ToLower(s), nil
}

func (h retentionHandlers) releaseHold(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	id, err := parseHexID("holdId", chi.URLParam(r, "holdId"))
	if err != nil {
		return nil, err
	}
	return h.rs.ReleaseHold(r.Context(), tenantID, id, actorOf(r.Context()))
}

type captureRulesJSON struct {
	Rules []retention.CaptureRule `json:"rules"`
}

func (h retentionHandlers) getCaptureRules(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	rules, err := h.rs.CaptureRules(r.Context(), tenantID)
	return captureRulesJSON{Rules: rules}, err
}

func (h retentionHandlers) putCaptureRules(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	var body struct {
		Rules *[]retention.CaptureRule `json:"rules"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	if body.Rules == nil {
		return nil, apperr.Invalid("rules", "is required (an empty list removes every rule)")
	}
	rules, err := h.rs.SetCaptureRules(r.Context(), tenantID, *body.Rules)
	return captureRulesJSON{Rules: rules}, err
}

func (h retentionHandlers) createBundle(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	var body struct {
		Scope string `json:"scope"`
		ID    string `json:"id"`
		Start string `json:"start"`
		End   string `json:"end"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	req := retention.BundleRequest{Scope: retention.Scope(body.Scope), ID: body.ID}
	if body.Start == "" {
		return nil, apperr.Invalid("start", "is required (RFC 3339)")
	}
	if body.End == "" {
		return nil, apperr.Invalid("end", "is required (RFC 3339)")
	}
	var err error
	if req.Start, err = parseTime("start", body.Start); err != nil {
		return nil, err
	}
	if req.End, err = parseTime("end", body.End); err != nil {
		return nil, err
	}
	req.Start, req.End = req.Start.UTC(), req.End.UTC()
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return h.rs.CreateBundle(r.Context(), tenantID, req, actorOf(r.Context()))
}

func (h retentionHandlers) getBundle(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	id, err := parseHexID("bundleId", chi.URLParam(r, "bundleId"))
	if err != nil {
		return nil, err
	}
	return h.rs.GetBundle(r.Context(), tenantID, id)
}

func (h retentionHandlers) custody(r *http.Request, tenantID string) (any, error) {
	if h.rs == nil {
		return nil, errRetentionUnavailable
	}
	id, err := parseHexID("bundleId", chi.URLParam(r, "bundleId"))
	if err != nil {
		return nil, err
	}
	entries, err := h.rs.Custody(r.Context(), tenantID, id)
	return listResponse[retention.CustodyEntry]{Items: entries}, err
}

// downloadBundle answers the bundle's tar.gz, streamed from the store a
// piece at a time, and records the download in its chain of custody.
func (s *Service) downloadBundle(rs Retention) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			if rs == nil {
				return errRetentionUnavailable
			}
			tenant, err := tenantOf(r.Context())
			if err != nil {
				return err
			}
			id, err := parseHexID("bundleId", chi.URLParam(r, "bundleId"))
			if err != nil {
				return err
			}
			b, archive, err := rs.DownloadBundle(r.Context(), tenant.ID, id, actorOf(r.Context()))
			if err != nil {
				return err
			}
			defer archive.Close()
			w.Header().Set("Content-Type", "application/gzip")
			w.Header().Set("Content-Length", strconv.FormatInt(b.ArchiveBytes, 10))
			w.Header().Set("Content-Disposition", `attachment; filename="evidence-`+b.ID+`.tar.gz"`)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Archive-Sha256", b.ArchiveSHA256)
			w.WriteHeader(http.StatusOK)
			// Headers are sent: a failure now can only cut the body short
			// (the client sees fewer than Content-Length bytes).
			if _, err := io.Copy(w, archive); err != nil {
				s.log.Warn("evidence bundle download cut short", "bundle", b.ID, "err", err)
			}
			return nil
		}()
		if err != nil {
			s.fail(w, r, err)
		}
	}
}
