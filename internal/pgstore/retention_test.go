package pgstore_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

func TestRetentionStateIsPerTenant(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()

	// Policies and rules: replaced whole, per tenant.
	if err := s.SetPolicies(ctx, "t1", []retention.Policy{{Signal: "spans", Days: 7}, {Signal: "logs", Days: 90, Namespace: "prod"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicies(ctx, "t1", []retention.Policy{{Signal: "spans", Days: 0}}); apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("invalid policy stored: %v", err)
	}
	all, err := s.AllPolicies(ctx)
	if err != nil || len(all["t1"]) != 2 || all["t1"][1].Namespace != "prod" {
		t.Fatalf("all policies %v %v", all, err)
	}
	if ps, _ := s.Policies(ctx, "t2"); len(ps) != 0 {
		t.Errorf("t2 sees policies %v", ps)
	}
	rules, err := s.SetCaptureRules(ctx, "t1", []retention.CaptureRule{{Trigger: "falco", Before: 1, After: 2}})
	if err != nil || rules[0].ID != "rule-1" {
		t.Fatalf("rules %v %v", rules, err)
	}

	// Holds: idempotent per trigger key; release recorded once; other
	// tenant 404.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := pgstore.NewHold{
		HoldRequest: retention.HoldRequest{Scope: "container", ID: "ABCDEFABCDEF99", Reason: "r", Start: &start},
		Actor:       "capture-rule:rule-1", RuleID: "rule-1", TriggerKey: "rule-1/e1/container",
	}
	h, created, err := s.CreateHold(ctx, "t1", n)
	if err != nil || !created || h.Target != "abcdefabcdef" || h.Status != "open" || !h.Start.Equal(start) {
		t.Fatalf("hold %+v %v %v", h, created, err)
	}
	if _, created, err := s.CreateHold(ctx, "t1", n); err != nil || created {
		t.Errorf("second hold with the same trigger: created %v, %v", created, err)
	}
	if _, err := s.ReleaseHold(ctx, "t2", h.ID, "api-key:x"); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("other tenant released: %v", err)
	}
	for range 2 {
		r, err := s.ReleaseHold(ctx, "t1", h.ID, "api-key:k1")
		if err != nil || r.Status != "released" || r.ReleasedBy != "api-key:k1" {
			t.Fatalf("release %+v %v", r, err)
		}
	}
	until := time.Now().Add(-time.Minute)
	h2, _, err := s.CreateHold(ctx, "t1", pgstore.NewHold{HoldRequest: retention.HoldRequest{Scope: "pod", ID: "p", Reason: "r", Until: &until}, Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := s.ExpireHolds(ctx, time.Now()); err != nil || len(exp) != 1 || exp[0].ID != h2.ID {
		t.Errorf("expired %+v %v", exp, err)
	}
	if open, _ := s.OpenHolds(ctx); len(open) != 0 {
		t.Errorf("open holds %+v", open)
	}
	if err := s.AdvanceHold(ctx, h.ID, start, 5); err != nil {
		t.Fatal(err)
	}

	// Bundles: pending ones do not download; claimed, finished, downloaded;
	// custody has the hold changes of the same scope and id.
	b, err := s.CreateBundle(ctx, "t1", retention.BundleRequest{Scope: "container", ID: "abcdefabcdef", Start: start, End: start.Add(time.Hour)}, "api-key:k1")
	if err != nil || b.Status != "pending" {
		t.Fatalf("bundle %+v %v", b, err)
	}
	if _, _, err := s.DownloadBundle(ctx, "t1", b.ID, "api-key:k1"); apperr.KindOf(err) != apperr.KindConflict {
		t.Errorf("pending download: %v", err)
	}
	claimed, ok, err := s.ClaimBundle(ctx, 10*time.Minute, 3)
	if err != nil || !ok || claimed.ID != b.ID || claimed.Attempts != 1 {
		t.Fatalf("claim %+v %v %v", claimed, ok, err)
	}
	if _, ok, _ := s.ClaimBundle(ctx, 10*time.Minute, 3); ok {
		t.Error("claimed twice")
	}
	if err := s.FinishBundle(ctx, claimed, &retention.Manifest{BundleID: b.ID}, strings.NewReader("tgz"), 3, "sum"); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"t2"} {
		if _, err := s.GetBundle(ctx, tenant, b.ID); apperr.KindOf(err) != apperr.KindNotFound {
			t.Errorf("%s got the bundle: %v", tenant, err)
		}
		if _, _, err := s.DownloadBundle(ctx, tenant, b.ID, "x"); apperr.KindOf(err) != apperr.KindNotFound {
			t.Errorf("%s downloaded: %v", tenant, err)
		}
		if _, err := s.Custody(ctx, tenant, b.ID); apperr.KindOf(err) != apperr.KindNotFound {
			t.Errorf("%s read custody: %v", tenant, err)
		}
	}
	got, rc, err := s.DownloadBundle(ctx, "t1", b.ID, "api-key:k2")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || string(data) != "tgz" || got.ArchiveSHA256 != "sum" || got.Manifest.BundleID != b.ID || got.ArchiveBytes != 3 {
		t.Fatalf("download %q %+v %v", data, got, err)
	}
	entries, err := s.Custody(ctx, "t1", b.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+"@"+e.Actor)
	}
	want := []string{"hold_created@capture-rule:rule-1", "hold_released@api-key:k1", "bundle_created@api-key:k1",
		"bundle_completed@system", "bundle_downloaded@api-key:k2"}
	if !slices.Equal(actions, want) {
		t.Errorf("custody\n got %v\nwant %v", actions, want)
	}

	// Watermarks.
	if v, _ := s.StateNs(ctx, "k"); v != 0 {
		t.Errorf("unset watermark %d", v)
	}
	if err := s.SetStateNs(ctx, "k", 42); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.StateNs(ctx, "k"); v != 42 {
		t.Errorf("watermark %d", v)
	}

	// Incidents (the correlator's tables) resolve to their containers.
	if _, err := s.IncidentSelection(ctx, "t1", "nope"); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("unknown incident: %v", err)
	}
	acme, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	incID, _, err := s.RecordIncidentEvent(ctx, pgstore.IncidentInput{
		TenantID: acme.ID, Opens: true, Title: "OOM", Window: time.Hour,
		Event: pgstore.IncidentEvent{EventID: "e1", EventTime: start, Type: "oom_killed", Severity: 17, Namespace: "shop",
			Workload: "cart", PodName: "cart-1", PodUID: "pod-1", ContainerID: "0123456789abcdef0123"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sel, err := s.IncidentSelection(ctx, acme.ID, incID)
	if err != nil || !slices.Equal(sel.Containers, []string{"0123456789ab"}) || !slices.Equal(sel.Pods, []string{"pod-1"}) {
		t.Errorf("incident selection %+v %v", sel, err)
	}
	if _, err := s.IncidentSelection(ctx, "t1", incID); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("other tenant's incident: %v", err)
	}
	opened, err := s.IncidentsOpenedSince(ctx, []string{acme.ID}, time.Unix(0, 0), 10)
	if err != nil || len(opened) != 1 || opened[0].ID != incID || opened[0].Namespace != "shop" {
		t.Errorf("opened incidents %+v %v", opened, err)
	}
}
