package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/services/api"
)

const (
	testAdminKey = "admin-key-0123456789"
	fakeTenantID = "0123456789abcdef"
	fakeKeyID    = "00000000000000aa"
)

// fakeAdmin is an in-memory Admin.
type fakeAdmin struct {
	mu      sync.Mutex
	tenants map[string]pgstore.Tenant
	keys    map[string]pgstore.APIKey
	next    int
	revoked []string
}

func newFakeAdmin() *fakeAdmin {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return &fakeAdmin{
		tenants: map[string]pgstore.Tenant{fakeTenantID: {ID: fakeTenantID, Name: "acme", CreatedAt: created}},
		keys: map[string]pgstore.APIKey{fakeKeyID: {
			ID: fakeKeyID, TenantID: fakeTenantID, Prefix: "atk_secret-o", CreatedAt: created,
		}},
	}
}

func (f *fakeAdmin) CreateTenant(_ context.Context, name string) (pgstore.Tenant, error) {
	if err := pgstore.ValidTenantName(name); err != nil {
		return pgstore.Tenant{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tenants {
		if t.Name == name {
			return pgstore.Tenant{}, apperr.New(apperr.KindConflict, "a tenant named %q already exists", name)
		}
	}
	f.next++
	t := pgstore.Tenant{ID: fmt.Sprintf("%016x", f.next), Name: name, CreatedAt: time.Now()}
	f.tenants[t.ID] = t
	return t, nil
}

func (f *fakeAdmin) GetTenant(_ context.Context, id string) (pgstore.Tenant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[id]
	if !ok {
		return t, apperr.New(apperr.KindNotFound, "tenant %q not found", id)
	}
	return t, nil
}

func page[T any](items []T, id func(T) string, p pgstore.Page) []T {
	sort.Slice(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	var out []T
	for _, it := range items {
		if id(it) > p.After && len(out) < p.Limit {
			out = append(out, it)
		}
	}
	return out
}

func (f *fakeAdmin) ListTenants(_ context.Context, p pgstore.Page) ([]pgstore.Tenant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []pgstore.Tenant
	for _, t := range f.tenants {
		all = append(all, t)
	}
	return page(all, func(t pgstore.Tenant) string { return t.ID }, p), nil
}

func (f *fakeAdmin) CreateKey(ctx context.Context, tenantID, description string) (pgstore.CreatedKey, error) {
	if _, err := f.GetTenant(ctx, tenantID); err != nil {
		return pgstore.CreatedKey{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	k := pgstore.APIKey{ID: fmt.Sprintf("%016x", f.next), TenantID: tenantID, Prefix: "atk_new", Description: description, CreatedAt: time.Now()}
	f.keys[k.ID] = k
	return pgstore.CreatedKey{APIKey: k, Key: "atk_new-secret"}, nil
}

func (f *fakeAdmin) ListKeys(ctx context.Context, tenantID string, p pgstore.Page) ([]pgstore.APIKey, error) {
	if _, err := f.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []pgstore.APIKey
	for _, k := range f.keys {
		if k.TenantID == tenantID {
			all = append(all, k)
		}
	}
	return page(all, func(k pgstore.APIKey) string { return k.ID }, p), nil
}

func (f *fakeAdmin) RevokeKey(_ context.Context, id string) (pgstore.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return k, apperr.New(apperr.KindNotFound, "api key %q not found", id)
	}
	if k.RevokedAt == nil {
		now := time.Now()
		k.RevokedAt = &now
		f.keys[id] = k
	}
	f.revoked = append(f.revoked, id)
	return k, nil
}

// adminDo sends a request with the admin key and an optional JSON body.
func (h *harness) adminDo(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, req)
	return rec
}

// adminRoutes lists the /admin/v1 routes of the router.
func adminRoutes(t *testing.T, r chi.Router) map[string]string {
	t.Helper()
	routes := map[string]string{} // "METHOD pattern" would be unique; patterns repeat across methods
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/admin/v1/") {
			routes[method+" "+route] = method
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 5 {
		t.Fatalf("admin routes = %v, want 5", routes)
	}
	out := map[string]string{}
	for mr, m := range routes {
		out[strings.TrimPrefix(mr, m+" ")+"#"+m] = m
	}
	return out
}

// concreteAdminPath turns an adminRoutes key into a path to request.
func concreteAdminPath(route string) string {
	route, _, _ = strings.Cut(route, "#")
	return strings.NewReplacer("{tenantId}", fakeTenantID, "{keyId}", fakeKeyID).Replace(route)
}

// adminBody is a valid body for the route.
func adminBody(method, route string) string {
	if method == http.MethodPost && strings.HasPrefix(route, "/admin/v1/tenants#") {
		return `{"name": "route-check"}`
	}
	if method == http.MethodPost {
		return `{}`
	}
	return ""
}

func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

func TestAdminTenants(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	rec := h.adminDo(t, "POST", "/admin/v1/tenants", `{"name": "globex"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	created := decodeJSON(t, rec)
	if created["name"] != "globex" || created["id"] == "" {
		t.Errorf("created %v", created)
	}
	if _, err := time.Parse(time.RFC3339, created["createdAt"].(string)); err != nil {
		t.Errorf("createdAt: %v", err)
	}

	for _, tc := range []struct {
		body, code string
		status     int
	}{
		{`{"name": "globex"}`, "conflict", 409},
		{`{"name": ""}`, "invalid_argument", 400},
		{`{"name": "a b"}`, "invalid_argument", 400},
		{``, "invalid_argument", 400},
		{`[]`, "invalid_argument", 400},
		{`{"name": 1}`, "invalid_argument", 400},
		{`{"name": "x", "extra": 1}`, "invalid_argument", 400},
		{`{"name": "x"} {}`, "invalid_argument", 400},
		{`{"name": "` + strings.Repeat("x", 70<<10) + `"}`, "too_large", 413},
	} {
		rec := h.adminDo(t, "POST", "/admin/v1/tenants", tc.body)
		if rec.Code != tc.status || decodeError(t, rec).Error.Code != tc.code {
			t.Errorf("create %.40q: %d %s, want %d %s", tc.body, rec.Code, rec.Body, tc.status, tc.code)
		}
	}

	// Paging: 2 tenants, one per page.
	var ids []string
	cursor := ""
	for range 5 {
		rec := h.adminDo(t, "GET", "/admin/v1/tenants?limit=1&cursor="+cursor, "")
		if rec.Code != 200 {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if want := []string{"0000000000000001", fakeTenantID}; !slices.Equal(ids, want) {
		t.Errorf("listed %v, want %v", ids, want)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%25%25"} {
		if rec := h.adminDo(t, "GET", "/admin/v1/tenants?"+q, ""); rec.Code != 400 {
			t.Errorf("list ?%s: %d", q, rec.Code)
		}
	}
}

func TestAdminKeys(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	rec := h.adminDo(t, "POST", "/admin/v1/tenants/"+fakeTenantID+"/keys", `{"description": "ci"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create key: %d %s", rec.Code, rec.Body)
	}
	k := decodeJSON(t, rec)
	if k["key"] != "atk_new-secret" || k["tenantId"] != fakeTenantID || k["description"] != "ci" || k["revokedAt"] != nil {
		t.Errorf("created key %v", k)
	}
	if rec := h.adminDo(t, "POST", "/admin/v1/tenants/"+fakeTenantID+"/keys", ``); rec.Code != http.StatusCreated {
		t.Errorf("create key without body: %d %s", rec.Code, rec.Body)
	}

	rec = h.adminDo(t, "GET", "/admin/v1/tenants/"+fakeTenantID+"/keys", "")
	if rec.Code != 200 {
		t.Fatalf("list keys: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "atk_new-secret") || strings.Contains(rec.Body.String(), `"key"`) {
		t.Errorf("key list shows secrets: %s", rec.Body)
	}
	if n := len(decodeJSON(t, rec)["items"].([]any)); n != 3 {
		t.Errorf("listed %d keys, want 3", n)
	}

	for i := range 2 { // idempotent
		rec = h.adminDo(t, "DELETE", "/admin/v1/keys/"+strings.ToUpper(fakeKeyID), "")
		if rec.Code != 200 || decodeJSON(t, rec)["revokedAt"] == nil {
			t.Fatalf("revoke #%d: %d %s", i, rec.Code, rec.Body)
		}
	}

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/admin/v1/tenants/ffffffffffffffff/keys", 404},
		{"POST", "/admin/v1/tenants/ffffffffffffffff/keys", 404},
		{"GET", "/admin/v1/tenants/a%20b/keys", 400},
		{"DELETE", "/admin/v1/keys/ffffffffffffffff", 404},
		{"DELETE", "/admin/v1/keys/xyz", 400},
		{"PUT", "/admin/v1/keys/" + fakeKeyID, 405},
		{"GET", "/admin/v1/nope", 404},
	} {
		if rec := h.adminDo(t, tc.method, tc.path, ""); rec.Code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.status)
		}
	}
	if strings.Contains(h.logs.String(), testAdminKey) || strings.Contains(h.logs.String(), "atk_new-secret") {
		t.Errorf("logs contain a secret:\n%s", h.logs)
	}
}

// TestAdminDisabled: without an admin key the admin routes do not exist.
func TestAdminDisabled(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	deps := api.Deps{Store: &fakeStore{}, Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: testTenant}}), Admin: newFakeAdmin()}
	svc, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for _, path := range []string{"/admin/v1/tenants", "/admin/v1/keys/" + fakeKeyID} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		if rec.Code != 404 {
			t.Errorf("%s without admin: %d, want 404", path, rec.Code)
		}
	}

	for _, bad := range []api.Deps{
		{Store: deps.Store, Auth: deps.Auth, AdminKey: testAdminKey},               // no Admin
		{Store: deps.Store, Auth: deps.Auth, Admin: deps.Admin, AdminKey: "short"}, // too short
	} {
		if svc, err := api.New(cfg, bad); err == nil || !strings.Contains(err.Error(), "admin") {
			if svc != nil {
				_ = svc.Close()
			}
			t.Errorf("New accepted admin deps %+v: %v", bad, err)
		}
	}
}

// TestOpenAPIAdminSchemasMatchAnswers: the Tenant and APIKey schemas list
// exactly the keys the admin handlers write.
func TestOpenAPIAdminSchemasMatchAnswers(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t, &fakeStore{})
	check := func(schema string, answer map[string]any, extra ...string) {
		t.Helper()
		sc := s.Comps.Schemas[schema]
		props := sortedKeys(sc.Properties)
		req := slices.Sorted(slices.Values(sc.Required))
		got := sortedKeys(answer)
		for _, e := range extra {
			got = slices.DeleteFunc(got, func(k string) bool { return k == e })
		}
		if !slices.Equal(props, got) || !slices.Equal(req, got) {
			t.Errorf("schema %s: properties %v, required %v; answer keys %v", schema, props, req, got)
		}
	}
	tenants := decodeJSON(t, h.adminDo(t, "GET", "/admin/v1/tenants", ""))
	check("Tenant", tenants["items"].([]any)[0].(map[string]any))
	keys := decodeJSON(t, h.adminDo(t, "GET", "/admin/v1/tenants/"+fakeTenantID+"/keys", ""))
	check("APIKey", keys["items"].([]any)[0].(map[string]any))
	created := decodeJSON(t, h.adminDo(t, "POST", "/admin/v1/tenants/"+fakeTenantID+"/keys", ""))
	check("APIKey", created, "key")
	if _, ok := created["key"]; !ok {
		t.Errorf("created key answer lacks key: %v", created)
	}
}
