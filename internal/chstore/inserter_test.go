package chstore_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

func spanBatch(first, n int) *otlpconv.SpanBatch {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(otlpconv.AttrServiceName, "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := first; i < first+n; i++ {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.Timestamp(1_765_000_000_000_000_000 + i))
		sp.SetEndTimestamp(pcommon.Timestamp(1_765_000_000_001_000_000 + i))
		sp.Attributes().PutStr("k", "v")
	}
	var b otlpconv.SpanBatch
	b.AppendTraces("t1", td)
	return &b
}

// One Inserter serves many inserts, each storing exactly its own rows, and
// recovers after an insert that failed.
func TestInserterReusesItsBatch(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	in := s.SpanInserter()
	defer in.Close()
	count := func() uint64 {
		var n uint64
		if err := s.Conn().QueryRow(ctx, `SELECT count() FROM spans WHERE tenant_id = 't1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := in.InsertSpans(ctx, spanBatch(0, 30)); err != nil {
		t.Fatal(err)
	}
	if err := in.InsertSpans(ctx, spanBatch(30, 20)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 50 {
		t.Fatalf("after two inserts: %d rows, want 50", n)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := in.InsertSpans(cancelled, spanBatch(50, 10)); err == nil {
		t.Fatal("insert with a cancelled context succeeded")
	}
	broken := spanBatch(50, 10) // one column a row short: the server refuses the block
	broken.Name = broken.Name[:9]
	if err := in.InsertSpans(ctx, broken); err == nil {
		t.Fatal("insert of a broken batch succeeded")
	}
	if err := in.InsertSpans(ctx, spanBatch(60, 5)); err != nil {
		t.Fatalf("insert after a failed one: %v", err)
	}
	if n := count(); n != 55 {
		t.Fatalf("after the failed and the next insert: %d rows, want 55", n)
	}
}
