package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/biztx"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// BusinessTransactions stores business transaction definitions;
// implemented by *pgstore.Store.
type BusinessTransactions interface {
	CreateBusinessTransaction(ctx context.Context, tenantID string, d biztx.Definition) (biztx.Definition, error)
	GetBusinessTransaction(ctx context.Context, tenantID, id string) (biztx.Definition, error)
	ListBusinessTransactions(ctx context.Context, tenantID string, p pgstore.Page) ([]biztx.Definition, error)
	UpdateBusinessTransaction(ctx context.Context, tenantID string, d biztx.Definition) (biztx.Definition, error)
	DeleteBusinessTransaction(ctx context.Context, tenantID, id string) error
}

var _ BusinessTransactions = (*pgstore.Store)(nil)

var errBizTxUnavailable = apperr.New(apperr.KindUnavailable, "business transactions need Postgres, which is not configured")

// bizTxBody is the body of POST and PUT.
type bizTxBody struct {
	Name  string       `json:"name"`
	Rules []biztx.Rule `json:"rules"`
	Keys  []string     `json:"keys"`
}

func (s *Service) bizTxRoutes(r chi.Router, store BusinessTransactions) {
	h := bizTxHandlers{s: s, store: store}
	r.Post("/business-transactions", h.create)
	r.Get("/business-transactions", s.serve(h.list))
	r.Get("/business-transactions/{id}", s.serve(h.get))
	r.Put("/business-transactions/{id}", s.serve(h.update))
	r.Delete("/business-transactions/{id}", h.delete)
}

type bizTxHandlers struct {
	s     *Service
	store BusinessTransactions
}

// withTenant runs a write handler for the caller's tenant and answers
// errors through apperr.
func (s *Service) withTenant(w http.ResponseWriter, r *http.Request, h func(tenantID string) error) {
	t, err := tenantOf(r.Context())
	if err == nil {
		err = h(t.ID)
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

func (h bizTxHandlers) create(w http.ResponseWriter, r *http.Request) {
	h.s.withTenant(w, r, func(tenantID string) error {
		if h.store == nil {
			return errBizTxUnavailable
		}
		var body bizTxBody
		if err := decodeBody(r, &body, false); err != nil {
			return err
		}
		d, err := h.store.CreateBusinessTransaction(r.Context(), tenantID, biztx.Definition{Name: body.Name, Rules: body.Rules, Keys: body.Keys})
		if err != nil {
			return err
		}
		h.s.writeJSONStatus(w, r, http.StatusCreated, d)
		return nil
	})
}

func (h bizTxHandlers) list(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errBizTxUnavailable
	}
	p, err := parsePage(r)
	if err != nil {
		return nil, err
	}
	if p.After != "" && !isHexID(p.After) {
		return nil, apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
	}
	limit := p.Limit
	p.Limit++
	defs, err := h.store.ListBusinessTransactions(r.Context(), tenantID, p)
	if err != nil {
		return nil, err
	}
	resp := listResponse[biztx.Definition]{Items: []biztx.Definition{}}
	if len(defs) > limit {
		defs = defs[:limit]
		resp.NextCursor = encodeIDCursor(defs[limit-1].ID)
	}
	resp.Items = append(resp.Items, defs...)
	return resp, nil
}

func (h bizTxHandlers) get(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errBizTxUnavailable
	}
	id, err := parseHexIDParam(r, "id")
	if err != nil {
		return nil, err
	}
	return h.store.GetBusinessTransaction(r.Context(), tenantID, id)
}

func (h bizTxHandlers) update(r *http.Request, tenantID string) (any, error) {
	if h.store == nil {
		return nil, errBizTxUnavailable
	}
	id, err := parseHexIDParam(r, "id")
	if err != nil {
		return nil, err
	}
	var body bizTxBody
	if err := decodeBody(r, &body, false); err != nil {
		return nil, err
	}
	return h.store.UpdateBusinessTransaction(r.Context(), tenantID,
		biztx.Definition{ID: id, Name: body.Name, Rules: body.Rules, Keys: body.Keys})
}

func (h bizTxHandlers) delete(w http.ResponseWriter, r *http.Request) {
	h.s.withTenant(w, r, func(tenantID string) error {
		if h.store == nil {
			return errBizTxUnavailable
		}
		id, err := parseHexIDParam(r, "id")
		if err != nil {
			return err
		}
		if err := h.store.DeleteBusinessTransaction(r.Context(), tenantID, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// isHexID reports whether s is a stored id: 1 to 64 lower-case hex
// characters (business transaction and incident ids).
func isHexID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseHexIDParam reads a hex id path parameter.
func parseHexIDParam(r *http.Request, name string) (string, error) {
	id := chi.URLParam(r, name)
	if !isHexID(id) {
		return "", apperr.Invalid(name, "must be a lower-case hex id")
	}
	return id, nil
}
