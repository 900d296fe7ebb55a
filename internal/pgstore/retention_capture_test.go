package pgstore_test

import (
	"context"
	"testing"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// TestCaptureStateAndPolicyTenants: capture watermarks are per tenant and
// trigger and never move back; a failing trigger is counted and skipped at
// the bound, and forgotten once it succeeds; a tenant that emptied its
// policies stays known (enforcement applies the empty set to its rows).
func TestCaptureStateAndPolicyTenants(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()

	for _, c := range []struct {
		tenant, trigger string
		set, want       int64
	}{
		{"t1", "falco", 100, 100},
		{"t1", "falco", 50, 100}, // never back
		{"t1", "oom_killed", 7, 7},
		{"t2", "falco", 3, 3},
	} {
		if err := s.SetCaptureWatermark(ctx, c.tenant, c.trigger, c.set); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.CaptureWatermark(ctx, c.tenant, c.trigger); err != nil || !ok || got != c.want {
			t.Errorf("%s/%s: %d %v %v, want %d", c.tenant, c.trigger, got, ok, err, c.want)
		}
	}
	if _, ok, err := s.CaptureWatermark(ctx, "t3", "falco"); ok || err != nil {
		t.Errorf("unset watermark: %v %v", ok, err)
	}

	f := retention.CaptureFailure{Key: "r/e1", Trigger: "falco", RuleID: "r", SourceID: "e1", LastError: "id: bad\x00"}
	for attempt := 1; attempt <= 3; attempt++ {
		got, err := s.RecordCaptureFailure(ctx, "t1", f, 3)
		if err != nil || got.Attempts != attempt || got.Skipped != (attempt == 3) {
			t.Fatalf("attempt %d: %+v %v", attempt, got, err)
		}
	}
	fs, err := s.CaptureFailures(ctx, "t1", []string{"r/e1", "r/e2"})
	if err != nil || len(fs) != 1 || !fs["r/e1"].Skipped || fs["r/e1"].LastError != "id: bad" {
		t.Errorf("failures %+v %v", fs, err)
	}
	if other, _ := s.CaptureFailures(ctx, "t2", []string{"r/e1"}); len(other) != 0 {
		t.Errorf("another tenant sees %+v", other)
	}
	if err := s.ClearCaptureFailure(ctx, "t1", "r/e1"); err != nil {
		t.Fatal(err)
	}
	if fs, _ := s.CaptureFailures(ctx, "t1", []string{"r/e1"}); len(fs) != 0 {
		t.Errorf("after clearing: %+v", fs)
	}

	if err := s.SetPolicies(ctx, "t1", []retention.Policy{{Signal: "spans", Days: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicies(ctx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.AllPolicies(ctx)
	if ps, known := all["t1"]; err != nil || !known || len(ps) != 0 {
		t.Errorf("a tenant that emptied its policies: %v %v %v", ps, known, err)
	}
}
