package pgstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func TestIncidentRootCauses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ten, err := s.CreateTenant(ctx, "rc")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.CreateTenant(ctx, "rc-other")
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, _, err := s.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: ten.ID, Opens: true, Title: "t", Window: 10 * time.Minute,
		Event: pgstore.IncidentEvent{EventID: "e1", EventTime: t0, Type: "oom_killed", Severity: 17, Namespace: "shop", Workload: "cart"}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetIncidentRootCauses(ctx, ten.ID, "e1")
	wantKind(t, "nothing stored", err, apperr.KindNotFound)

	rc := pgstore.IncidentRootCauses{IncidentID: "e1", TenantID: ten.ID, WindowStart: t0.Add(-5 * time.Minute), WindowEnd: t0.Add(time.Minute),
		Result: json.RawMessage(`{"candidates":[{"service":"cart","score":12.5}]}`)}
	if _, err := s.SaveIncidentRootCauses(ctx, rc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetIncidentRootCauses(ctx, ten.ID, "e1")
	if err != nil || !got.WindowStart.Equal(rc.WindowStart) || !got.WindowEnd.Equal(rc.WindowEnd) || got.ComputedAt.IsZero() {
		t.Fatalf("get = %+v, %v", got, err)
	}
	var res struct{ Candidates []struct{ Service string } }
	if err := json.Unmarshal(got.Result, &res); err != nil || len(res.Candidates) != 1 || res.Candidates[0].Service != "cart" {
		t.Fatalf("result = %s, %v", got.Result, err)
	}
	// replace
	rc.WindowEnd = t0.Add(3 * time.Minute)
	rc.Result = json.RawMessage(`{"candidates":[]}`)
	if _, err := s.SaveIncidentRootCauses(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetIncidentRootCauses(ctx, ten.ID, "e1"); !got.WindowEnd.Equal(rc.WindowEnd) {
		t.Fatalf("replaced window end = %v", got.WindowEnd)
	}
	// tenant isolation and unknown incidents
	_, err = s.GetIncidentRootCauses(ctx, other.ID, "e1")
	wantKind(t, "other tenant", err, apperr.KindNotFound)
	rc.TenantID = other.ID
	_, err = s.SaveIncidentRootCauses(ctx, rc)
	wantKind(t, "save for another tenant", err, apperr.KindNotFound)
	rc.TenantID, rc.IncidentID = ten.ID, "nope"
	_, err = s.SaveIncidentRootCauses(ctx, rc)
	wantKind(t, "unknown incident", err, apperr.KindNotFound)
}
