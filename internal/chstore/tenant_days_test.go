package chstore_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// A trace-by-id lookup reads the trace index only on the days its tenant
// has spans on (plus the days around now): another tenant's late data on
// thirty old days must not add thirty partitions to every lookup. A
// trace sent late onto a new day is still found.
func TestTraceLookupReadsOnlyTheTenantsDays(t *testing.T) {
	env := testenv.Get(t)
	var mu sync.Mutex
	var dayArgs [][]string
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	cfg.MaxOpenConns = 4
	cfg.QueryObserver = func(q string, args []any) {
		if !strings.Contains(q, "FROM trace_index") || !strings.Contains(q, "arrayJoin") {
			return
		}
		for _, a := range args {
			if d, ok := a.([]string); ok {
				mu.Lock()
				dayArgs = append(dayArgs, d)
				mu.Unlock()
			}
		}
	}
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	now := time.Now().UTC()
	old := now.AddDate(0, 0, -60) // a day the quiet tenant has, long ago
	quiet := tid("0000000000000000000000000000d001")
	insertRows(t, s,
		row{tenant: "days-quiet", traceID: quiet, spanID: sid(1), service: "a", name: "now", start: now, end: now.Add(time.Millisecond)},
		row{tenant: "days-quiet", traceID: quiet, spanID: sid(2), service: "a", name: "old", start: old, end: old.Add(time.Millisecond)},
	)
	for d := 1; d <= 30; d++ { // the spread tenant: one part on each of 30 old days
		ts := now.AddDate(0, 0, -d)
		insertRows(t, s, row{tenant: "days-spread", traceID: tid("0000000000000000000000000000d002"), spanID: sid(uint64(d)), service: "b", name: "late", start: ts, end: ts})
	}

	spans, err := s.GetTrace(ctx(t), "days-quiet", quiet)
	if err != nil || len(spans) != 2 {
		t.Fatalf("GetTrace = %d spans, %v; want 2", len(spans), err)
	}
	mu.Lock()
	got := dayArgs[len(dayArgs)-1]
	mu.Unlock()
	want := map[string]bool{old.Format(time.DateOnly): true}
	for d := -1; d <= 1; d++ {
		want[now.AddDate(0, 0, d).Format(time.DateOnly)] = true
	}
	for _, d := range got {
		if !want[d] {
			t.Errorf("lookup read day %s: not one of the tenant's days %v", d, want)
		}
	}
	if !strings.Contains(strings.Join(got, ","), old.Format(time.DateOnly)) {
		t.Errorf("lookup days %v miss the tenant's old day %s", got, old.Format(time.DateOnly))
	}

	// Sent late onto a day the cached days do not have: found, at the
	// latest once a miss may refresh them (a second).
	late := tid("0000000000000000000000000000d003")
	lateDay := now.AddDate(0, 0, -45)
	insertRows(t, s, row{tenant: "days-quiet", traceID: late, spanID: sid(3), service: "a", name: "late", start: lateDay, end: lateDay})
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans, err := s.GetTrace(ctx(t), "days-quiet", late)
		if err == nil && len(spans) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late trace on a new day: %d spans, %v", len(spans), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
