package retention

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
)

// flakyIncidents fails to resolve one incident while fail is set, as when
// the incidents database cannot be reached.
type flakyIncidents struct {
	IncidentResolver
	id   string
	fail atomic.Bool
}

func (f *flakyIncidents) IncidentSelection(ctx context.Context, tenantID, id string) (retention.Selection, error) {
	if f.fail.Load() && id == f.id {
		return retention.Selection{}, apperr.Unavailable(errors.New("connection refused"), "incidents unavailable", time.Second)
	}
	return f.IncidentResolver.IncidentSelection(ctx, tenantID, id)
}

// TestHoldThatCannotSyncStopsNoOtherTenant (issue case 2): a hold on an
// incident that does not exist is refused by the store (the API answers
// 404 naming the field: services/api TestHoldOfUnknownIncidentIs404); one
// placed before that check, and a hold whose incident cannot be resolved
// for now, no longer make enforcement drop nothing: every other tenant's
// and date's expired rows go, and only the failing hold's tenant's rows of
// its window stay until it syncs again.
func TestHoldThatCannotSyncStopsNoOtherTenant(t *testing.T) {
	asOf := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	flaky := &flakyIncidents{}
	st := newStack(t, asOf, func(_ *Config, d *Deps) {
		flaky.IncidentResolver = d.Incidents
		d.Incidents = flaky
	})
	ctx := context.Background()
	tenant, err := st.pg.CreateTenant(ctx, "acme") // incidents belong to a tenant row
	if err != nil {
		t.Fatal(err)
	}
	acme := tenant.ID
	a1, a2 := retentiontest.NewContainer("a1", "shop", "cart"), retentiontest.NewContainer("a2", "shop", "web")
	b1 := retentiontest.NewContainer("b1", "shop", "cart")
	st.seed(acme, asOf, 40, a1, a2)
	st.seed("beta", asOf, 40, b1)

	// Refused when asked for.
	if _, _, err := st.pg.CreateHold(ctx, acme, pgstore.NewHold{
		HoldRequest: retention.HoldRequest{Scope: retention.ScopeIncident, ID: "nope", Reason: "r"}, Actor: "t"}); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("store hold of an unknown incident: %v", err)
	}

	// A hold placed before targets were checked, and a hold on a real
	// incident (container a1) whose resolution fails for now.
	st.sql(`INSERT INTO holds (id, tenant_id, scope, target, reason, created_by) VALUES ('00000000000000aa', $1, 'incident', 'nope', 'old', 'api-key:old')`, acme)
	incID, _, err := st.pg.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: acme, Opens: true, Title: "OOM", Window: time.Hour,
		Event: pgstore.IncidentEvent{EventID: "e1", EventTime: retentiontest.At(asOf, 34), Type: "oom_killed", Severity: 17,
			Namespace: a1.Namespace, Workload: a1.Service, PodName: a1.PodName, PodUID: a1.PodUID, ContainerID: a1.ID}})
	if err != nil {
		t.Fatal(err)
	}
	start, end := retention.Day(retentiontest.At(asOf, 35)), retention.Day(retentiontest.At(asOf, 32)).Add(23*time.Hour)
	held, _, err := st.pg.CreateHold(ctx, acme, pgstore.NewHold{HoldRequest: retention.HoldRequest{
		Scope: retention.ScopeIncident, ID: incID, Start: &start, End: &end, Reason: "incident"}, Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	flaky.id = incID
	flaky.fail.Store(true)

	rep, err := st.svc.Enforce(ctx, asOf, false)
	if err != nil {
		t.Fatalf("enforce: %v", err)
	}
	oldest := day(asOf, 31)
	for _, table := range []string{"spans", "logs", "metric_points", "container_events", "trace_index", "container_sightings"} {
		if n := st.rows(table, "tenant_id = 'beta' AND date <= toDate(?)", oldest); n != 0 {
			t.Errorf("%s: %d expired rows of the other tenant left", table, n)
		}
		if n := st.rows(table, "tenant_id = ? AND (date = toDate(?) OR date < toDate(?))", acme, oldest, day(asOf, 35)); n != 0 {
			t.Errorf("%s: %d expired rows of the failing hold's tenant outside its window left", table, n)
		}
	}
	if n := st.rows("spans", "tenant_id = ? AND date >= toDate(?) AND date <= toDate(?)", acme, day(asOf, 35), day(asOf, 32)); n != 16 {
		t.Errorf("spans of the failing hold's tenant in its window: %d, want 16 (both containers, 4 days)", n)
	}
	if len(rep.Drops) == 0 || len(rep.Kept) == 0 || len(rep.Deletes) == 0 || len(rep.HoldFailures) != 2 {
		t.Errorf("report: %d drops, %d kept, %d deletes, hold failures %s", len(rep.Drops), len(rep.Kept), len(rep.Deletes), describe(rep.HoldFailures))
	}
	holds, err := st.pg.ListHolds(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holds {
		if h.SyncFailures != 1 || h.SyncError == "" {
			t.Errorf("hold %s (%s %s) after a failed sync: %d failures, error %q", h.ID, h.Scope, h.Target, h.SyncFailures, h.SyncError)
		}
	}
	for _, reason := range []string{reasonIncidentGone, reasonResolveFailed} {
		if st.counter("aftertrace_retention_hold_sync_failures_total", map[string]string{"reason": reason}) < 1 {
			t.Errorf("hold failure %s not counted", reason)
		}
	}
	if st.counter("aftertrace_retention_partitions_kept_total", map[string]string{"reason": reasonHoldNotSynced}) < 1 {
		t.Error("kept partitions not counted")
	}

	// Once the hold syncs, the kept partitions go; what it holds stays.
	flaky.fail.Store(false)
	if rep, err = st.svc.Enforce(ctx, asOf, false); err != nil || len(rep.Kept) != 0 {
		t.Fatalf("enforce after recovery: %v, %d kept", err, len(rep.Kept))
	}
	if n := st.rows("spans", "tenant_id = ? AND date <= toDate(?) AND retention_class != 'hold'", acme, oldest); n != 0 {
		t.Errorf("%d expired spans left after the hold synced", n)
	}
	if got := st.traceSpans(acme, a1.TraceID(33)); got != 2 {
		t.Errorf("held trace of a1 day 33: %d spans, want 2", got)
	}
	if got := st.traceSpans(acme, a2.TraceID(33)); got != 0 {
		t.Errorf("unheld trace of a2 day 33: %d spans, want 0", got)
	}
	if h, _ := st.pg.GetHold(ctx, acme, held.ID); h.SyncError != "" || h.CopiedRows == 0 {
		t.Errorf("hold after recovery %+v", h)
	}
}
