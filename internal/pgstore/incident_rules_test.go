package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func TestIncidentRules(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, ok, err := s.IncidentRules(ctx, "rules-a"); ok || err != nil {
		t.Fatalf("unset rules: ok %v err %v", ok, err)
	}
	in := pgstore.IncidentRules{MinSeverity: 13, EventTypes: []string{"oom_killed"}, AnomalyMinScore: 4.5}
	set, err := s.SetIncidentRules(ctx, "rules-a", in)
	if err != nil || set.UpdatedAt.IsZero() {
		t.Fatalf("set: %+v %v", set, err)
	}
	got, ok, err := s.IncidentRules(ctx, "rules-a")
	if err != nil || !ok || got.MinSeverity != 13 || len(got.EventTypes) != 1 || got.AnomalyMinScore != 4.5 {
		t.Fatalf("get: %+v %v %v", got, ok, err)
	}
	in.EventTypes, in.AnomalyMinScore = nil, 0
	if _, err := s.SetIncidentRules(ctx, "rules-a", in); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.IncidentRules(ctx, "rules-a"); got.EventTypes == nil || len(got.EventTypes) != 0 || got.AnomalyMinScore != 0 {
		t.Fatalf("replaced: %+v", got)
	}
	if _, ok, _ := s.IncidentRules(ctx, "rules-b"); ok {
		t.Fatal("another tenant sees rules")
	}
	for _, bad := range []pgstore.IncidentRules{
		{MinSeverity: 0, AnomalyMinScore: 1},
		{MinSeverity: 25, AnomalyMinScore: 1},
		{MinSeverity: 13, EventTypes: []string{"x"}, AnomalyMinScore: 1},
		{MinSeverity: 13, AnomalyMinScore: -1},
	} {
		_, err := s.SetIncidentRules(ctx, "rules-a", bad)
		wantKind(t, "bad rules", err, apperr.KindInvalid)
	}
}

func TestAnomalyIncidentKind(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ten, err := s.CreateTenant(ctx, "anom")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	in := pgstore.IncidentInput{TenantID: ten.ID, Kind: pgstore.IncidentKindAnomaly, Opens: true, Title: "anomaly on store", Window: time.Minute,
		Services: []string{"store"},
		Event: pgstore.IncidentEvent{EventID: "aa01", EventTime: at, Type: "anomaly", Severity: 13, Workload: "store", PodName: "store-1",
			Score: 9.25, Summary: "self time rose"}}
	id, outcome, err := s.RecordIncidentEvent(ctx, in)
	if err != nil || outcome != pgstore.IncidentOutcomeOpened {
		t.Fatalf("record: %s %v", outcome, err)
	}
	if _, outcome, _ := s.RecordIncidentEvent(ctx, in); outcome != pgstore.IncidentOutcomeKnown {
		t.Fatalf("again: %s", outcome)
	}
	inc, err := s.GetIncident(ctx, ten.ID, id)
	if err != nil || inc.Kind != pgstore.IncidentKindAnomaly || inc.EventCount != 1 {
		t.Fatalf("incident %+v %v", inc, err)
	}
	evs, err := s.IncidentEvents(ctx, ten.ID, id)
	if err != nil || len(evs) != 1 || evs[0].Score != 9.25 || evs[0].Summary != "self time rose" {
		t.Fatalf("events %+v %v", evs, err)
	}
	// An event incident keeps kind event.
	ev := in
	ev.Kind, ev.Services = "", nil
	ev.Event = pgstore.IncidentEvent{EventID: "bb02", EventTime: at.Add(time.Hour), Type: "oom_killed", Severity: 17, Namespace: "x", Workload: "y"}
	id2, _, err := s.RecordIncidentEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if inc, _ := s.GetIncident(ctx, ten.ID, id2); inc.Kind != pgstore.IncidentKindEvent {
		t.Fatalf("event incident kind %q", inc.Kind)
	}
}
