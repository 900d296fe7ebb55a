package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/services/api"
)

// fakeRetention knows one bundle and one hold of testTenant.
type fakeRetention struct {
	policies []retention.Policy
	actor    string
}

const knownID = "0123456789abcdef"

func notFound() error { return apperr.New(apperr.KindNotFound, "not found") }

func (f *fakeRetention) Policies(context.Context, string) ([]retention.Policy, error) {
	return f.policies, nil
}

func (f *fakeRetention) SetPolicies(_ context.Context, _ string, ps []retention.Policy) error {
	f.policies = ps
	return nil
}

func (f *fakeRetention) CreateHold(_ context.Context, _ string, n pgstore.NewHold) (retention.Hold, bool, error) {
	f.actor = n.Actor
	return retention.Hold{ID: knownID, Scope: n.Scope, Target: n.ID, Status: "open", CreatedBy: n.Actor}, true, nil
}

func (f *fakeRetention) ListHolds(context.Context, string) ([]retention.Hold, error) {
	return []retention.Hold{}, nil
}

func (f *fakeRetention) ReleaseHold(_ context.Context, tenantID, id, _ string) (retention.Hold, error) {
	if id != knownID {
		return retention.Hold{}, notFound()
	}
	return retention.Hold{ID: id, Status: "released"}, nil
}

func (f *fakeRetention) CaptureRules(context.Context, string) ([]retention.CaptureRule, error) {
	return []retention.CaptureRule{}, nil
}

func (f *fakeRetention) SetCaptureRules(_ context.Context, _ string, rules []retention.CaptureRule) ([]retention.CaptureRule, error) {
	return rules, retention.ValidateCaptureRules(rules)
}

func (f *fakeRetention) CreateBundle(_ context.Context, _ string, req retention.BundleRequest, actor string) (retention.Bundle, error) {
	return retention.Bundle{ID: knownID, Request: req, Status: "pending", CreatedBy: actor}, nil
}

func (f *fakeRetention) GetBundle(_ context.Context, _, id string) (retention.Bundle, error) {
	if id != knownID {
		return retention.Bundle{}, notFound()
	}
	return retention.Bundle{ID: id, Status: "done"}, nil
}

func (f *fakeRetention) DownloadBundle(_ context.Context, _, id, _ string) (retention.Bundle, io.ReadCloser, error) {
	if id != knownID {
		return retention.Bundle{}, nil, notFound()
	}
	return retention.Bundle{ID: id, ArchiveSHA256: "abc", ArchiveBytes: 7}, io.NopCloser(strings.NewReader("archive")), nil
}

func (f *fakeRetention) Custody(_ context.Context, _, id string) ([]retention.CustodyEntry, error) {
	if id != knownID {
		return nil, notFound()
	}
	return []retention.CustodyEntry{}, nil
}

func retentionService(t *testing.T, rs api.Retention) *api.Service {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	svc, err := api.New(cfg, api.Deps{
		Store: &fakeStore{}, Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: testTenant}}),
		Registry: prometheus.NewRegistry(), Retention: rs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

func send(t *testing.T, svc *api.Service, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)
	return rec
}

var retentionRoutes = []struct{ method, path, body string }{
	{"GET", "/api/v1/retention", ""},
	{"PUT", "/api/v1/retention", `{"policies":[]}`},
	{"GET", "/api/v1/holds", ""},
	{"POST", "/api/v1/holds", `{"scope":"pod","id":"p","reason":"r"}`},
	{"DELETE", "/api/v1/holds/" + knownID, ""},
	{"GET", "/api/v1/capture-rules", ""},
	{"PUT", "/api/v1/capture-rules", `{"rules":[]}`},
	{"POST", "/api/v1/evidence", `{"scope":"pod","id":"p","start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"}`},
	{"GET", "/api/v1/evidence/" + knownID, ""},
	{"GET", "/api/v1/evidence/" + knownID + "/download", ""},
	{"GET", "/api/v1/evidence/" + knownID + "/custody", ""},
}

func TestRetentionRoutesWithoutStore(t *testing.T) {
	svc := retentionService(t, nil)
	for _, r := range retentionRoutes {
		if rec := send(t, svc, r.method, r.path, r.body); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s without a store: %d", r.method, r.path, rec.Code)
		}
	}
}

func TestRetentionRoutes(t *testing.T) {
	fake := &fakeRetention{}
	svc := retentionService(t, fake)
	for _, r := range retentionRoutes {
		if rec := send(t, svc, r.method, r.path, r.body); rec.Code != http.StatusOK {
			t.Errorf("%s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	if fake.actor != "api-key:static" {
		t.Errorf("hold actor %q", fake.actor)
	}
	rec := send(t, svc, "GET", "/api/v1/evidence/"+knownID+"/download", "")
	if rec.Header().Get("Content-Type") != "application/gzip" || rec.Body.String() != "archive" || rec.Header().Get("X-Archive-Sha256") != "abc" {
		t.Errorf("download: %v %q", rec.Header(), rec.Body)
	}
	for _, c := range []struct{ method, path, body, field string }{
		{"PUT", "/api/v1/retention", `{"policies":[{"signal":"spans","days":0}]}`, "policies[0].days"},
		{"PUT", "/api/v1/retention", `{"policies":[{"signal":"trace","days":1}]}`, "policies[0].signal"},
		{"PUT", "/api/v1/retention", `{}`, "policies"},
		{"POST", "/api/v1/holds", `{"scope":"pod","id":"p"}`, "reason"},
		{"POST", "/api/v1/holds", `{"scope":"container","id":"abc","reason":"r"}`, "id"},
		{"POST", "/api/v1/holds", `{"scope":"pod","id":"p","reason":"r","start":"soon"}`, "start"},
		{"DELETE", "/api/v1/holds/xyz", ``, "holdId"},
		{"PUT", "/api/v1/capture-rules", `{"rules":[{"trigger":"cpu"}]}`, "rules[0].trigger"},
		{"POST", "/api/v1/evidence", `{"scope":"pod","id":"p","start":"2026-01-01T00:00:00Z"}`, "end"},
		{"POST", "/api/v1/evidence", `{"scope":"pod","id":"p","start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}`, "end"},
		{"GET", "/api/v1/evidence/nothex", ``, "bundleId"},
	} {
		rec := send(t, svc, c.method, c.path, c.body)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusBadRequest || !strings.HasPrefix(e.Error.Message, c.field+":") {
			t.Errorf("%s %s %s: %d %s, want 400 naming %s", c.method, c.path, c.body, rec.Code, rec.Body, c.field)
		}
	}
	other := "fedcba9876543210"
	for _, p := range []string{"/api/v1/evidence/" + other, "/api/v1/evidence/" + other + "/download", "/api/v1/evidence/" + other + "/custody"} {
		if rec := send(t, svc, "GET", p, ""); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, rec.Code)
		}
	}
	if rec := send(t, svc, "DELETE", "/api/v1/holds/"+other, ""); rec.Code != http.StatusNotFound {
		t.Errorf("DELETE unknown hold: %d", rec.Code)
	}
}
