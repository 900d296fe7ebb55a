package api_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The span statistics of settled buckets are stored (rca_span_stats) and
// reused: the answer is the one the self-join gives on the current data,
// also after late spans arrive in a stored bucket.
func TestRCASpanCache(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 4, 20*time.Second
	store, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	insertTraces(t, store, "t1", chainTraces(-40, 10, 20, 150*time.Millisecond))

	ctx := context.Background()
	now := func() time.Time { return rcaStart.Add(24 * time.Hour) }
	cached := rca.CHSource{Conn: store.Conn(), Now: now}
	direct := rca.CHSource{Conn: store.Conn(), NoSpanCache: true}
	// not aligned to the buckets: partial buckets at both ends
	r := rca.Range{TenantID: "t1", From: rcaStart.Add(-40*time.Minute + 17*time.Second), To: rcaStart.Add(10*time.Minute - 5*time.Second), Step: time.Minute}
	key := func(s rca.SpanStat) string { return fmt.Sprintf("%+v", s) }
	same := func(what string) {
		t.Helper()
		a, err := cached.SpanStats(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := direct.SpanStats(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		ka, kb := make([]string, len(a)), make([]string, len(b))
		for i := range a {
			ka[i] = key(a[i])
		}
		for i := range b {
			kb[i] = key(b[i])
		}
		slices.Sort(ka)
		slices.Sort(kb)
		if len(a) == 0 || !slices.Equal(ka, kb) {
			t.Fatalf("%s: cached %d rows, join %d rows, differ", what, len(a), len(b))
		}
	}
	stored := func() uint64 {
		var n uint64
		if err := store.Conn().QueryRow(ctx, "SELECT count() FROM rca_span_stats").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	same("first (nothing stored)")
	n1 := stored()
	if n1 == 0 {
		t.Fatal("no bucket stored")
	}
	same("second (from the store)")
	if n := stored(); n != n1 {
		t.Fatalf("the second analysis stored %d more rows: the stored buckets were not reused", n-n1)
	}
	// Late spans (other traces) in stored buckets make them stale.
	late := chainTraces(-30, -28, 5, 0)
	rs := late.ResourceSpans()
	for i := 0; i < rs.Len(); i++ {
		ss := rs.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < ss.Len(); j++ {
			sp := ss.At(j)
			tid := sp.TraceID()
			tid[2] = 0xee
			sp.SetTraceID(tid)
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	insertTraces(t, store, "t1", late)
	same("after late spans")
	if n := stored(); n <= n1 {
		t.Fatal("the stale buckets were not computed and stored again")
	}
	// Late spans scattered over many stored buckets: too many pieces to
	// join one by one, the whole range is joined at once.
	for m := -38; m <= -18; m += 4 { // each makes 3 buckets stale, 1 stays between
		scattered := chainTraces(m, m+1, 1, 0)
		rs := scattered.ResourceSpans()
		for i := 0; i < rs.Len(); i++ {
			ss := rs.At(i).ScopeSpans().At(0).Spans()
			for j := 0; j < ss.Len(); j++ {
				sp := ss.At(j)
				tid := sp.TraceID()
				tid[2] = 0xdd
				sp.SetTraceID(tid)
			}
		}
		insertTraces(t, store, "t1", scattered)
	}
	same("after scattered late spans")
	// A partial bucket at the end of the range is never stored.
	var recent uint64
	if err := store.Conn().QueryRow(ctx, "SELECT count() FROM rca_span_stats WHERE bucket >= ?", uint64(rcaStart.Add(9*time.Minute).UnixNano())).Scan(&recent); err != nil {
		t.Fatal(err)
	}
	if recent != 0 {
		t.Fatalf("%d rows of the partial last bucket stored", recent)
	}
}
