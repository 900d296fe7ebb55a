package chstore

import (
	"testing"
	"time"
)

func TestSplitByPartition(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	names := []string{"tenant_id", "date", "retention_class", "attr_keys"}
	const rows = 250
	dates, classes, tenants, attrs := make([]time.Time, rows), make([]string, rows), make([]string, rows), make([][]string, rows)
	for i := range rows {
		dates[i], classes[i], tenants[i], attrs[i] = day(i%120), "default", "t", []string{string(rune('a' + i%26))}
	}
	classes[7] = "hold" // one more partition
	sets := splitByPartition(names, []any{tenants, dates, classes, attrs}, rows, 90)
	if len(sets) != 2 {
		t.Fatalf("%d sets, want 2", len(sets))
	}
	total := 0
	for _, set := range sets {
		ds, cs := set[1].([]time.Time), set[2].([]string)
		parts := map[partitionKey]bool{}
		for i := range ds {
			parts[partitionKey{ds[i].Truncate(24 * time.Hour), cs[i]}] = true
		}
		if len(parts) > 90 {
			t.Errorf("a set spans %d partitions", len(parts))
		}
		if n := len(set[3].([][]string)); n != len(ds) || n != len(set[0].([]string)) {
			t.Errorf("columns of unequal length in a set")
		}
		total += len(ds)
	}
	if total != rows {
		t.Errorf("%d rows in the sets, want %d", total, rows)
	}
	// within the bound, or without partition columns: as it is
	if got := splitByPartition(names, []any{tenants[:10], dates[:10], classes[:10], attrs[:10]}, 10, 90); len(got) != 1 {
		t.Errorf("10 rows split into %d sets", len(got))
	}
	if got := splitByPartition([]string{"a"}, []any{tenants}, rows, 1); len(got) != 1 {
		t.Errorf("no partition columns: %d sets", len(got))
	}
}
