package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// countingRCA is a fake engine: it answers one candidate and records the
// queries it was asked.
type countingRCA struct {
	mu      sync.Mutex
	queries []rca.Query
}

func (f *countingRCA) Analyze(_ context.Context, q rca.Query) (rca.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return rca.Result{Window: rca.Window{Start: q.Start, End: q.End},
		Candidates: []rca.Candidate{{Service: "cart", Pod: "cart-1", Score: 12.5, Evidence: []rca.Evidence{{Kind: "metric", Summary: "cpu rose"}}}}}, nil
}

func (f *countingRCA) calls() []rca.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rca.Query(nil), f.queries...)
}

// GET /api/v1/incidents/{id}/root-causes runs the engine over the
// incident's window (10 minutes before its first event to a minute after
// its last), stores the result in Postgres and answers the stored result
// until the window changes or refresh=true; other tenants see nothing.
func TestIncidentRootCauses(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	chCfg := chstore.DefaultConfig()
	chCfg.Addr, chCfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	store, err := chstore.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, id := range []string{"t1", "t2"} {
		if _, err := pg.EnsureTenant(ctx, id, id); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	record := func(eventID string, at time.Time, opens bool) {
		t.Helper()
		if _, _, err := pg.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: "t1", Opens: opens, Title: "oom", Window: 10 * time.Minute,
			Event: pgstore.IncidentEvent{EventID: eventID, EventTime: at, Type: "oom_killed", Severity: 17, Namespace: "shop", Workload: "cart"}}); err != nil {
			t.Fatal(err)
		}
	}
	record("ab01", t0, true)

	eng := &countingRCA{}
	svcCfg := api.DefaultConfig()
	svcCfg.Addr = "127.0.0.1:0"
	deps := api.Deps{
		Store:              store,
		Auth:               authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}, "k2": {ID: "t2"}}),
		RCA:                eng,
		IncidentRootCauses: pg,
	}
	svc, err := api.New(svcCfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Close() }()
	get := func(key, path string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	const path = "/api/v1/incidents/ab01/root-causes"

	code, body := get("k1", path)
	if code != 200 || body["stored"] != false || body["incidentId"] != "ab01" || body["computedAt"] == "" {
		t.Fatalf("first call: %d %v", code, body)
	}
	cands, _ := body["candidates"].([]any)
	if len(cands) != 1 || cands[0].(map[string]any)["service"] != "cart" {
		t.Fatalf("candidates = %v", body["candidates"])
	}
	qs := eng.calls()
	if len(qs) != 1 || qs[0].TenantID != "t1" || !qs[0].Start.Equal(t0.Add(-10*time.Minute)) || !qs[0].End.After(t0) || qs[0].End.After(t0.Add(2*time.Minute)) {
		t.Fatalf("engine queries = %+v", qs)
	}
	if rc, err := pg.GetIncidentRootCauses(ctx, "t1", "ab01"); err != nil || len(rc.Result) == 0 {
		t.Fatalf("not stored: %+v %v", rc, err)
	}

	// stored result while the window is unchanged
	if code, body = get("k1", path); code != 200 || body["stored"] != true || len(eng.calls()) != 1 {
		t.Fatalf("second call: %d %v, engine calls %d", code, body, len(eng.calls()))
	}
	// refresh recomputes
	if code, body = get("k1", path+"?refresh=true"); code != 200 || body["stored"] != false || len(eng.calls()) != 2 {
		t.Fatalf("refresh: %d %v, engine calls %d", code, body, len(eng.calls()))
	}
	// a later event widens the window: recomputed over the new window
	record("ab02", t0.Add(5*time.Minute), false)
	if code, body = get("k1", path); code != 200 || body["stored"] != false || len(eng.calls()) != 3 {
		t.Fatalf("after a new event: %d %v, engine calls %d", code, body, len(eng.calls()))
	}
	if q := eng.calls()[2]; !q.End.After(t0.Add(5 * time.Minute)) {
		t.Fatalf("window not widened: %+v", q)
	}

	for _, tc := range []struct {
		key, path string
		want      int
	}{
		{"k2", path, http.StatusNotFound},                                 // other tenant
		{"k1", "/api/v1/incidents/ffff/root-causes", http.StatusNotFound}, // unknown incident
		{"k1", "/api/v1/incidents/NOT-HEX/root-causes", http.StatusBadRequest},
		{"k1", path + "?refresh=maybe", http.StatusBadRequest},
	} {
		if code, body := get(tc.key, tc.path); code != tc.want {
			t.Errorf("%s %s: %d %v, want %d", tc.key, tc.path, code, body, tc.want)
		}
	}

	// without the engine or the store: 503
	deps.RCA = nil
	bare, err := api.New(svcCfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bare.Close() }()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer k1")
	rec := httptest.NewRecorder()
	bare.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("no engine: %d %s", rec.Code, rec.Body)
	}
}
