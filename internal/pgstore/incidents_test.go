package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/biztx"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func TestBusinessTransactions(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ten, err := s.CreateTenant(ctx, "bt")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.CreateTenant(ctx, "bt-other")
	def := biztx.Definition{Name: "checkout", Rules: []biztx.Rule{{Service: "frontend", SpanName: "POST /api/checkout"}}, Keys: []string{"order.id"}}
	d, err := s.CreateBusinessTransaction(ctx, ten.ID, def)
	if err != nil || d.ID == "" || d.Rules[0].Scope != biztx.ScopeRoot || d.Keys[0] != "order.id" {
		t.Fatalf("create = %+v, %v", d, err)
	}
	_, err = s.CreateBusinessTransaction(ctx, ten.ID, def)
	wantKind(t, "duplicate", err, apperr.KindConflict)
	bad := def
	bad.Rules = []biztx.Rule{{Attribute: "a", Regex: "("}}
	_, err = s.CreateBusinessTransaction(ctx, ten.ID, bad)
	wantKind(t, "bad regex", err, apperr.KindInvalid)
	if _, err := s.CreateBusinessTransaction(ctx, other.ID, def); err != nil {
		t.Fatalf("same name in another tenant: %v", err)
	}
	_, err = s.GetBusinessTransaction(ctx, other.ID, d.ID)
	wantKind(t, "other tenant", err, apperr.KindNotFound)

	d.Name, d.Keys = "checkout-v2", []string{"order.id", "user.id"}
	up, err := s.UpdateBusinessTransaction(ctx, ten.ID, d)
	if err != nil || up.Name != "checkout-v2" || len(up.Keys) != 2 {
		t.Fatalf("update = %+v, %v", up, err)
	}
	list, err := s.ListBusinessTransactions(ctx, ten.ID, pgstore.Page{})
	if err != nil || len(list) != 1 || list[0].Name != "checkout-v2" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := s.DeleteBusinessTransaction(ctx, ten.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "delete twice", s.DeleteBusinessTransaction(ctx, ten.ID, d.ID), apperr.KindNotFound)
}

func TestIncidents(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ten, err := s.CreateTenant(ctx, "inc")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	in := func(id string, at time.Time, ns, wl string, opens bool, services ...string) pgstore.IncidentInput {
		return pgstore.IncidentInput{TenantID: ten.ID, Opens: opens, Title: "t " + id, Window: 10 * time.Minute, Services: services,
			Event: pgstore.IncidentEvent{EventID: id, EventTime: at, Type: "security_alert", Severity: 17, Namespace: ns, Workload: wl}}
	}
	steps := []struct {
		in       pgstore.IncidentInput
		incident string
		outcome  string
	}{
		{in("e1", t0, "shop", "payment", true, "payment"), "e1", pgstore.IncidentOutcomeOpened},
		{in("e1", t0, "shop", "payment", true, "payment"), "e1", pgstore.IncidentOutcomeKnown},
		{in("e2", t0.Add(5*time.Minute), "shop", "payment", false), "e1", pgstore.IncidentOutcomeGrouped},       // same workload
		{in("e3", t0.Add(6*time.Minute), "shop", "cart", false), "", pgstore.IncidentOutcomeNone},               // unrelated, below rule
		{in("e4", t0.Add(7*time.Minute), "other", "x", false, "payment"), "e1", pgstore.IncidentOutcomeGrouped}, // service graph
		{in("e5", t0.Add(time.Hour), "shop", "payment", true), "e5", pgstore.IncidentOutcomeOpened},             // too late: new incident
	}
	for i, st := range steps {
		id, outcome, err := s.RecordIncidentEvent(ctx, st.in)
		if err != nil || id != st.incident || outcome != st.outcome {
			t.Fatalf("step %d: %q %q %v, want %q %q", i, id, outcome, err, st.incident, st.outcome)
		}
	}
	got, err := s.GetIncident(ctx, ten.ID, "e1")
	if err != nil || got.EventCount != 3 || got.Status != pgstore.IncidentOpen || !got.LastEventAt.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("incident = %+v, %v", got, err)
	}
	list, err := s.ListIncidents(ctx, pgstore.IncidentQuery{TenantID: ten.ID, Start: t0.Add(-time.Hour), End: t0.Add(2 * time.Hour), Limit: 1})
	if err != nil || len(list) != 1 || list[0].ID != "e5" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	list, _ = s.ListIncidents(ctx, pgstore.IncidentQuery{TenantID: ten.ID, Start: t0.Add(-time.Hour), End: t0.Add(2 * time.Hour), Limit: 5,
		AfterOpened: &list[0].OpenedAt, AfterID: list[0].ID})
	if len(list) != 1 || list[0].ID != "e1" {
		t.Fatalf("page 2 = %+v", list)
	}
	if _, err := s.SetIncidentStatus(ctx, ten.ID, "e1", pgstore.IncidentAcknowledged, "alice", "looking"); err != nil {
		t.Fatal(err)
	}
	res, err := s.SetIncidentStatus(ctx, ten.ID, "e1", pgstore.IncidentResolved, "bob", "")
	if err != nil || res.Status != pgstore.IncidentResolved || res.ResolvedBy != "bob" || res.AcknowledgedBy != "alice" {
		t.Fatalf("resolve = %+v, %v", res, err)
	}
	_, err = s.SetIncidentStatus(ctx, ten.ID, "e1", pgstore.IncidentAcknowledged, "carol", "")
	wantKind(t, "ack resolved", err, apperr.KindConflict)
	hist, err := s.IncidentHistory(ctx, "e1")
	if err != nil || len(hist) != 3 || hist[1].Actor != "alice" || hist[2].To != pgstore.IncidentResolved {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	// A resolved incident takes no more events.
	if id, outcome, _ := s.RecordIncidentEvent(ctx, in("e6", t0.Add(time.Minute), "shop", "payment", false)); outcome != pgstore.IncidentOutcomeNone {
		t.Fatalf("event after resolve joined %q (%s)", id, outcome)
	}
	evs, err := s.IncidentEvents(ctx, ten.ID, "e1")
	if err != nil || len(evs) != 3 || evs[0].EventID != "e1" {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	_, err = s.GetIncident(ctx, "nobody", "e1")
	wantKind(t, "other tenant", err, apperr.KindNotFound)
}
