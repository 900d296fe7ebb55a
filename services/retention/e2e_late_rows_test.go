package retention

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
)

// lateRows writes, for container c of tenant, one span (trace id), one log
// record and one Falco alert at time at: rows arriving after a hold's
// copy passed their time (a collector retry, a backlog, a late alert).
func (st *stack) lateRows(tenant string, c retentiontest.Container, at time.Time, trace [16]byte) events.Event {
	st.t.Helper()
	ctx := context.Background()
	res := func(r pcommon.Resource) {
		a := r.Attributes()
		a.PutStr(otlpconv.AttrServiceName, c.Service)
		a.PutStr(otlpconv.AttrPodUID, c.PodUID)
		a.PutStr(otlpconv.AttrNamespace, c.Namespace)
		a.PutStr(otlpconv.AttrContainerID, c.ID)
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res(rs.Resource())
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(trace)
	sp.SetSpanID(pcommon.SpanID{9, 9})
	sp.SetName("POST /retry")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
	var sb otlpconv.SpanBatch
	sb.AppendTraces(tenant, td)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res(rl.Resource())
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	lr.Body().SetStr("late record")
	lr.SetTraceID(trace)
	var lb otlpconv.LogBatch
	lb.AppendLogs(tenant, ld)
	alert := falcoAlert(tenant, "late/"+c.Short(), events.SeverityCritical, "Late alert", c, c.ID, at)
	if err := st.ch.InsertSpans(ctx, &sb); err != nil {
		st.t.Fatal(err)
	}
	if err := st.ch.InsertLogs(ctx, &lb); err != nil {
		st.t.Fatal(err)
	}
	if err := st.ch.InsertEvents(ctx, []events.Event{alert}); err != nil {
		st.t.Fatal(err)
	}
	return alert
}

// TestLateRowsLandInOpenHolds (issue case 10): rows whose time is before
// an open hold's copy watermark, written after the copy passed it, are
// copied into the hold before their partition is dropped (rows not yet in
// the hold class, by row identity), so they survive like the rest.
func TestLateRowsLandInOpenHolds(t *testing.T) {
	asOf := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := newStack(t, asOf, nil)
	ctx := context.Background()
	held, other := retentiontest.NewContainer("held", "shop", "cart"), retentiontest.NewContainer("other", "shop", "web")
	st.seed("acme", asOf, 6, held, other)
	start := retentiontest.At(asOf, 10)
	if _, _, err := st.pg.CreateHold(ctx, "acme", pgstore.NewHold{HoldRequest: retention.HoldRequest{
		Scope: retention.ScopeContainer, ID: held.ID, Start: &start, Reason: "incident 7"}, Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.svc.SyncHolds(ctx); err != nil { // the watermark is now asOf
		t.Fatal(err)
	}
	lateAt := retentiontest.At(asOf, 3).Add(time.Hour)
	lateTrace := [16]byte{0x1a, 0x7e}
	alert := st.lateRows("acme", held, lateAt, lateTrace)
	otherTrace := [16]byte{0x2b, 0x7e}
	st.lateRows("acme", other, lateAt, otherTrace)

	// Forty days later every default partition of those days has expired.
	rep, err := st.svc.Enforce(ctx, asOf.Add(40*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.traceSpans("acme", lateTrace); got != 1 {
		t.Errorf("late span of the held container: %d spans after enforcement, want 1", got)
	}
	if n := st.rows("logs", "tenant_id = 'acme' AND trace_id = ? AND retention_class = 'hold'", string(lateTrace[:])); n != 1 {
		t.Errorf("late log record of the held container: %d held copies, want 1", n)
	}
	if n := st.rows("container_events", "tenant_id = 'acme' AND lower(hex(event_id)) = ? AND retention_class = 'hold'", alert.ID.String()); n != 1 {
		t.Errorf("late alert of the held container: %d held copies, want 1", n)
	}
	if got := st.traceSpans("acme", otherTrace); got != 0 {
		t.Errorf("late span of an unheld container: %d spans, want 0", got)
	}
	if got := st.traceSpans("acme", held.TraceID(3)); got != 2 {
		t.Errorf("held container's trace of day 3: %d spans, want 2", got)
	}
	// (Events count day 0's event too: its second is after the watermark.)
	if rep.Rescued["spans"] != 1 || rep.Rescued["logs"] != 1 || rep.Rescued["container_events"] != 2 {
		t.Errorf("rows copied before the drops: %v", rep.Rescued)
	}
	if n := st.counter("aftertrace_retention_rows_rescued_total", map[string]string{"reason": reasonLateHold}); n != 4 {
		t.Errorf("late rows counted %v, want 4", n)
	}
	// Copies are made once: the next enforcement finds nothing new.
	st.lateRows("acme", held, lateAt, lateTrace) // a retry of the same rows
	if rep, err = st.svc.Enforce(ctx, asOf.Add(40*24*time.Hour), false); err != nil || len(rep.Rescued) != 0 {
		t.Errorf("second enforcement: %v, copied %v", err, rep.Rescued)
	}
}
