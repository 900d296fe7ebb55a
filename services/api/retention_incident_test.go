package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// TestHoldOfUnknownIncidentIs404 (issue case 2): a hold or an evidence
// bundle of an incident the tenant does not have is refused when asked
// for, with 404 naming the field, instead of being stored and failing
// every retention pass after; a hold of the tenant's incident is placed.
func TestHoldOfUnknownIncidentIs404(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	tenant, err := pg.CreateTenant(ctx, testTenant)
	if err != nil {
		t.Fatal(err)
	}
	incID, _, err := pg.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: tenant.ID, Opens: true, Title: "OOM",
		Event: pgstore.IncidentEvent{EventID: "e1", Type: "oom_killed", Severity: 17, PodUID: "pod-1", ContainerID: "0123456789abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pg.CreateTenant(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherInc, _, err := pg.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: other.ID, Opens: true, Title: "OOM",
		Event: pgstore.IncidentEvent{EventID: "e2", Type: "oom_killed", Severity: 17, PodUID: "pod-2"}})
	if err != nil {
		t.Fatal(err)
	}
	svc := retentionServiceAs(t, pg, tenant.ID)
	for _, c := range []struct{ path, body string }{
		{"/api/v1/holds", `{"scope":"incident","id":"nope","reason":"r"}`},
		{"/api/v1/holds", `{"scope":"incident","id":"` + otherInc + `","reason":"r"}`}, // another tenant's
		{"/api/v1/evidence", `{"scope":"incident","id":"nope","start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"}`},
	} {
		rec := send(t, svc, "POST", c.path, c.body)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusNotFound || e.Error.Code != "not_found" || !strings.HasPrefix(e.Error.Message, "id:") {
			t.Errorf("POST %s %s: %d %s, want 404 naming id", c.path, c.body, rec.Code, rec.Body)
		}
	}
	if rec := send(t, svc, "POST", "/api/v1/holds", `{"scope":"incident","id":"`+incID+`","reason":"r"}`); rec.Code != http.StatusOK {
		t.Errorf("hold of the tenant's incident: %d %s", rec.Code, rec.Body)
	}
	if holds, _ := pg.ListHolds(ctx, tenant.ID); len(holds) != 1 {
		t.Errorf("holds stored: %+v", holds)
	}
}

// retentionServiceAs serves the retention routes over rs to testKey as
// the tenant tenantID.
func retentionServiceAs(t *testing.T, rs api.Retention, tenantID string) *api.Service {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	svc, err := api.New(cfg, api.Deps{
		Store: &fakeStore{}, Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: tenantID}}),
		Registry: prometheus.NewRegistry(), Retention: rs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}
