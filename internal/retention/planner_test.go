package retention_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dropKeys(ds []retention.Drop) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s/%s/%s/%s", d.Table, d.Date.Format(time.DateOnly), d.Class, d.Reason)
	}
	return out
}

func TestPlan(t *testing.T) {
	asOf := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	defaults := map[retention.Signal]int{"spans": 30, "logs": 30, "metrics": 30, "events": 10, "links": 30}
	parts := []retention.Partition{
		{Table: "spans", Date: day("2026-11-13"), Class: "d7", Bytes: 10}, // 7 days before: kept
		{Table: "spans", Date: day("2026-11-12"), Class: "d7", Bytes: 10}, // 8 days before: dropped
		{Table: "trace_index", Date: day("2026-11-12"), Class: "d7", Bytes: 1},
		{Table: "spans", Date: day("2026-11-12"), Class: "d90", Bytes: 10},
		{Table: "spans", Date: day("2026-01-01"), Class: "hold", Bytes: 10},
		{Table: "spans", Date: day("2026-10-20"), Class: "default", Bytes: 10}, // 31 days before
		{Table: "spans", Date: day("2026-10-21"), Class: "default", Bytes: 10}, // 30 days before
		{Table: "container_events", Date: day("2026-11-09"), Class: "default", Bytes: 10},
		{Table: "container_sightings", Date: day("2026-11-09"), Class: "default", Bytes: 1}, // longest default (30)
		{Table: "service_index", Date: day("2020-01-01"), Class: "d1", Bytes: 10},           // not managed
		{Table: "logs", Date: day("2020-01-01"), Class: "weird", Bytes: 10},                 // unknown class
	}
	got := dropKeys(retention.Plan(parts, retention.PlanConfig{AsOf: asOf, DefaultDays: defaults}))
	want := []string{
		"spans/2026-10-20/default/expired",
		"container_events/2026-11-09/default/expired",
		"spans/2026-11-12/d7/expired",
		"trace_index/2026-11-12/d7/expired",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan\n got %v\nwant %v", got, want)
	}

	// No default days: default partitions stay.
	got = dropKeys(retention.Plan(parts, retention.PlanConfig{AsOf: asOf}))
	if fmt.Sprint(got) != fmt.Sprint([]string{"spans/2026-11-12/d7/expired", "trace_index/2026-11-12/d7/expired"}) {
		t.Errorf("plan without defaults: %v", got)
	}
}

func TestPlanDiskGuard(t *testing.T) {
	asOf := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	parts := []retention.Partition{
		{Table: "spans", Date: day("2026-11-20"), Class: "d90", Bytes: 100}, // today: never by the guard
		{Table: "spans", Date: day("2026-11-19"), Class: "d90", Bytes: 100},
		{Table: "logs", Date: day("2026-11-18"), Class: "d90", Bytes: 100},
		{Table: "spans", Date: day("2026-11-01"), Class: "hold", Bytes: 100}, // never
		{Table: "spans", Date: day("2026-11-10"), Class: "d90", Bytes: 100},
		{Table: "spans", Date: day("2026-11-05"), Class: "d3", Bytes: 100}, // expired anyway
	}
	got := dropKeys(retention.Plan(parts, retention.PlanConfig{AsOf: asOf, MaxBytes: 250}))
	want := []string{
		"spans/2026-11-05/d3/expired",
		"spans/2026-11-10/d90/disk_full",
		"logs/2026-11-18/d90/disk_full",
		"spans/2026-11-19/d90/disk_full",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("disk guard\n got %v\nwant %v", got, want)
	}
	// Only today and held data left: the guard stops there.
	got = dropKeys(retention.Plan(parts, retention.PlanConfig{AsOf: asOf, MaxBytes: 1}))
	for _, k := range got {
		if k == "spans/2026-11-20/d90/disk_full" || k == "spans/2026-11-01/hold/disk_full" {
			t.Errorf("guard dropped %s", k)
		}
	}
}
