package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// Admin manages tenants and their API keys (the /admin/v1 routes);
// implemented by *pgstore.Store. Revoking through it must also drop the key
// from this process's authentication cache.
type Admin interface {
	CreateTenant(ctx context.Context, name string) (pgstore.Tenant, error)
	GetTenant(ctx context.Context, id string) (pgstore.Tenant, error)
	ListTenants(ctx context.Context, p pgstore.Page) ([]pgstore.Tenant, error)
	CreateKey(ctx context.Context, tenantID, description string) (pgstore.CreatedKey, error)
	ListKeys(ctx context.Context, tenantID string, p pgstore.Page) ([]pgstore.APIKey, error)
	RevokeKey(ctx context.Context, id string) (pgstore.APIKey, error)
}

var _ Admin = (*pgstore.Store)(nil)

// MinAdminKeyLen is the shortest admin credential accepted.
const MinAdminKeyLen = 16

// Admin list pages.
const (
	adminDefaultLimit = 100
	adminMaxLimit     = 1000
	maxAdminBody      = 64 << 10
)

var errAdminUnauthenticated = apperr.New(apperr.KindUnauthenticated, "missing or invalid admin key: send Authorization: Bearer <admin key>")

// adminRoutes mounts /admin/v1 behind the admin key. Tenant API keys do
// not open it, and the admin key does not open /api/v1.
func (s *Service) adminRoutes(r chi.Router, admin Admin, adminKey string) {
	want := sha256.Sum256([]byte(adminKey))
	r.Route("/admin/v1", func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got := sha256.Sum256([]byte(authn.BearerToken(r.Header.Get("Authorization"))))
				if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
					apperr.WriteHTTP(w, errAdminUnauthenticated)
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		h := adminHandlers{s: s, admin: admin}
		r.Post("/tenants", h.createTenant)
		r.Get("/tenants", h.listTenants)
		r.Post("/tenants/{tenantId}/keys", h.createKey)
		r.Get("/tenants/{tenantId}/keys", h.listKeys)
		r.Delete("/keys/{keyId}", h.revokeKey)
	})
}

type adminHandlers struct {
	s     *Service
	admin Admin
}

// ---- JSON ----

type tenantJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"createdAt"`
}

type apiKeyJSON struct {
	ID          string  `json:"id"`
	TenantID    string  `json:"tenantId"`
	Prefix      string  `json:"prefix"`
	Description string  `json:"description"`
	CreatedAt   string  `json:"createdAt"`
	RevokedAt   *string `json:"revokedAt"`
}

type createdKeyJSON struct {
	apiKeyJSON
	Key string `json:"key"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func toTenantJSON(t pgstore.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, CreatedAt: rfc3339(t.CreatedAt)}
}

func toKeyJSON(k pgstore.APIKey) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, TenantID: k.TenantID, Prefix: k.Prefix, Description: k.Description, CreatedAt: rfc3339(k.CreatedAt)}
	if k.RevokedAt != nil {
		r := rfc3339(*k.RevokedAt)
		out.RevokedAt = &r
	}
	return out
}

// ---- handlers ----

func (h adminHandlers) createTenant(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		h.s.fail(w, r, err)
		return
	}
	t, err := h.admin.CreateTenant(r.Context(), body.Name)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	h.s.writeJSONStatus(w, r, http.StatusCreated, toTenantJSON(t))
}

func (h adminHandlers) listTenants(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	limit := p.Limit
	p.Limit++
	ts, err := h.admin.ListTenants(r.Context(), p)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	resp := listResponse[tenantJSON]{Items: make([]tenantJSON, 0, min(len(ts), limit))}
	if len(ts) > limit {
		ts = ts[:limit]
		resp.NextCursor = encodeIDCursor(ts[limit-1].ID)
	}
	for _, t := range ts {
		resp.Items = append(resp.Items, toTenantJSON(t))
	}
	h.s.writeJSON(w, r, resp)
}

func (h adminHandlers) createKey(w http.ResponseWriter, r *http.Request) {
	tenantID, err := parseTenantID(chi.URLParam(r, "tenantId"))
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	var body struct {
		Description string `json:"description"`
	}
	if err := decodeBody(r, &body, true); err != nil {
		h.s.fail(w, r, err)
		return
	}
	k, err := h.admin.CreateKey(r.Context(), tenantID, body.Description)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	h.s.log.Info("api key created", "tenant", tenantID, "key_id", k.ID)
	h.s.writeJSONStatus(w, r, http.StatusCreated, createdKeyJSON{apiKeyJSON: toKeyJSON(k.APIKey), Key: k.Key})
}

func (h adminHandlers) listKeys(w http.ResponseWriter, r *http.Request) {
	tenantID, err := parseTenantID(chi.URLParam(r, "tenantId"))
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	p, err := parsePage(r)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	limit := p.Limit
	p.Limit++
	ks, err := h.admin.ListKeys(r.Context(), tenantID, p)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	resp := listResponse[apiKeyJSON]{Items: make([]apiKeyJSON, 0, min(len(ks), limit))}
	if len(ks) > limit {
		ks = ks[:limit]
		resp.NextCursor = encodeIDCursor(ks[limit-1].ID)
	}
	for _, k := range ks {
		resp.Items = append(resp.Items, toKeyJSON(k))
	}
	h.s.writeJSON(w, r, resp)
}

func (h adminHandlers) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := parseKeyID(chi.URLParam(r, "keyId"))
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	k, err := h.admin.RevokeKey(r.Context(), id)
	if err != nil {
		h.s.fail(w, r, err)
		return
	}
	h.s.log.Info("api key revoked", "tenant", k.TenantID, "key_id", k.ID)
	h.s.writeJSON(w, r, toKeyJSON(k))
}

// ---- input ----

var (
	tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	keyIDPattern    = regexp.MustCompile(`^[0-9a-fA-F]{16}$`)
)

func parseTenantID(s string) (string, error) {
	if !tenantIDPattern.MatchString(s) {
		return "", apperr.Invalid("tenantId", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	return s, nil
}

func parseKeyID(s string) (string, error) {
	if !keyIDPattern.MatchString(s) {
		return "", apperr.Invalid("keyId", "must be 16 hex characters")
	}
	return strings.ToLower(s), nil
}

// decodeBody reads a JSON object of known fields, at most maxAdminBody
// bytes; an empty body is allowed when emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return apperr.Wrap(apperr.KindInvalid, err, "body: could not be read")
	}
	if len(b) > maxAdminBody {
		return apperr.New(apperr.KindTooLarge, "body: must be at most %d bytes", maxAdminBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if emptyOK {
			return nil
		}
		return apperr.Invalid("body", "must be a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.Invalid("body", "must be a JSON object of the documented fields: %s", jsonProblem(err))
	}
	if dec.More() {
		return apperr.Invalid("body", "must be a single JSON object")
	}
	return nil
}

// jsonProblem describes a decode error without echoing large input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return te.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid JSON"
}

// parsePage reads limit (1 to 1000, default 100) and cursor.
func parsePage(r *http.Request) (pgstore.Page, error) {
	v := r.URL.Query()
	p := pgstore.Page{Limit: adminDefaultLimit}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > adminMaxLimit {
			return p, apperr.Invalid("limit", "must be an integer from 1 to %d", adminMaxLimit)
		}
		p.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(c)
		if err != nil || len(b) == 0 || len(b) > 128 {
			return p, apperr.Invalid("cursor", "malformed; pass nextCursor of the previous page unchanged")
		}
		p.After = string(b)
	}
	return p, nil
}

func encodeIDCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }
