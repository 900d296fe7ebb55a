package retention

import (
	"context"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
)

// TestPolicyChangesReachStoredRows (issue case 11), as a new user would
// try it: spans written with no policy (default, 30 days), then spans
// 7 days, then an enforcement: the spans older than 7 days are gone at
// once (held ones excepted), the others' and other signals' stay. And the
// other way round: spans written under a 7-day policy raised to 90 days
// before they were 7 days old outlive their 7-day partitions.
func TestPolicyChangesReachStoredRows(t *testing.T) {
	asOf := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := newStack(t, asOf, nil)
	ctx := context.Background()
	setPolicies := func(tenant string, days int) {
		t.Helper()
		if err := st.pg.SetPolicies(ctx, tenant, []retention.Policy{{Signal: retention.SignalSpans, Days: days}}); err != nil {
			t.Fatal(err)
		}
	}

	// Shortened: acme's spans of 25 days, written without a policy.
	a1, a2 := retentiontest.NewContainer("a1", "shop", "cart"), retentiontest.NewContainer("a2", "shop", "web")
	b1 := retentiontest.NewContainer("b1", "shop", "cart")
	st.seed("acme", asOf, 25, a1, a2)
	st.seed("beta", asOf, 25, b1)
	if _, _, err := st.pg.CreateHold(ctx, "acme", pgstore.NewHold{HoldRequest: retention.HoldRequest{
		Scope: retention.ScopeContainer, ID: a1.ID, Reason: "investigation"}, Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	setPolicies("acme", 7)
	old := day(asOf, 8)
	dry, err := st.svc.Enforce(ctx, asOf, true)
	if err != nil || len(dry.Deletes) == 0 || st.rows("spans", "tenant_id = 'acme' AND date <= toDate(?)", old) != 2*17*2 {
		t.Fatalf("dry run: %v, deletes %s", err, describe(dry.Deletes))
	}
	rep, err := st.svc.Enforce(ctx, asOf, false)
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]uint64{"spans": 0, "trace_index": 0} {
		if n := st.rows(table, "tenant_id = 'acme' AND date <= toDate(?) AND retention_class != 'hold'", old); n != want {
			t.Errorf("%s: %d rows of acme older than 7 days left, want %d", table, n, want)
		}
	}
	for _, c := range []struct {
		tenant string
		trace  [16]byte
		want   int
	}{
		{"acme", a2.TraceID(20), 0}, {"acme", a2.TraceID(8), 0}, {"acme", a2.TraceID(7), 2}, // the policy in force
		{"acme", a1.TraceID(20), 2},                              // held
		{"beta", b1.TraceID(20), 2}, {"beta", b1.TraceID(24), 2}, // another tenant, no policy
	} {
		if got := st.traceSpans(c.tenant, c.trace); got != c.want {
			t.Errorf("trace of %s: %d spans, want %d", c.tenant, got, c.want)
		}
	}
	if n := st.rows("logs", "tenant_id = 'acme' AND date <= toDate(?) AND retention_class != 'hold'", old); n != 2*17 {
		t.Errorf("acme's logs (no log policy) older than 7 days: %d rows, want %d", n, 2*17)
	}
	deleted := uint64(0)
	for _, d := range rep.Deletes {
		if d.Table == "spans" && d.Reason == reasonPolicy {
			deleted += d.Rows
		}
	}
	if deleted != 2*17*2 { // two containers' spans of days 8..24 (a1's held copies stay)
		t.Errorf("spans deleted %d, want %d (report %s)", deleted, 2*17*2, describe(rep.Deletes))
	}
	if n := st.counter("aftertrace_retention_rows_deleted_total", map[string]string{"table": "spans", "reason": reasonPolicy}); n != float64(deleted) {
		t.Errorf("deleted spans counted %v", n)
	}
	if rep, err = st.svc.Enforce(ctx, asOf, false); err != nil || len(rep.Deletes) != 0 {
		t.Errorf("second enforcement: %v, deletes %s", err, describe(rep.Deletes))
	}

	// Lengthened: gamma's and delta's spans written under 7 days; gamma's
	// raised to 90 before the oldest is 7 days old.
	g1, d1 := retentiontest.NewContainer("g1", "shop", "cart"), retentiontest.NewContainer("d1", "shop", "cart")
	setPolicies("gamma", 7)
	setPolicies("delta", 7)
	st.seed("gamma", asOf, 7, g1)
	st.seed("delta", asOf, 7, d1)
	setPolicies("gamma", 90)
	later := asOf.AddDate(0, 0, 5) // days 3..6 are now 8..11 days old: past 7
	if rep, err = st.svc.Enforce(ctx, later, false); err != nil {
		t.Fatal(err)
	}
	for d := range 7 {
		if got := st.traceSpans("gamma", g1.TraceID(d)); got != 2 {
			t.Errorf("gamma's trace of day %d (90 days now): %d spans, want 2", d, got)
		}
	}
	if got := st.traceSpans("delta", d1.TraceID(6)); got != 0 {
		t.Errorf("delta's trace of day 6 (7 days): %d spans, want 0", got)
	}
	if rep.Rescued["spans"] != 4*2 {
		t.Errorf("spans copied into their longer class: %v, want 8", rep.Rescued)
	}
	if n := st.rows("spans", "tenant_id = 'gamma' AND retention_class = 'd90'"); n != 4*2 {
		t.Errorf("gamma's spans in d90: %d, want 8", n)
	}
}
