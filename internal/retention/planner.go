package retention

import (
	"cmp"
	"slices"
	"time"
)

// Tables are the ClickHouse tables partitioned by (date, retention_class)
// that enforcement drops from, with the signal whose default days apply to
// their "default" class. container_sightings holds rows of every signal:
// its "default" partitions are kept for the longest default.
var Tables = map[string]Signal{
	"spans":               SignalSpans,
	"trace_index":         SignalSpans,
	"logs":                SignalLogs,
	"log_trace_index":     SignalLogs,
	"metric_points":       SignalMetrics,
	"container_events":    SignalEvents,
	"event_links":         SignalLinks,
	"trace_event_index":   SignalLinks,
	"container_sightings": "",
	"rca_buckets":         SignalSpans, // derived from spans, logs and metrics (internal/rca's bucket cache)
}

// Partition is one (date, class) partition of a table, as system.parts
// reports it (active parts summed).
type Partition struct {
	Table string
	Date  time.Time // UTC midnight
	Class string
	Rows  uint64
	Bytes uint64
}

// Drop reasons.
const (
	ReasonExpired = "expired"   // older than its class's days
	ReasonDisk    = "disk_full" // dropped by the disk guard
)

// Drop is one partition to drop and why.
type Drop struct {
	Partition
	Reason string
}

// PlanConfig says what is kept.
type PlanConfig struct {
	// AsOf is the time enforcement runs at; its UTC date is day 0.
	AsOf time.Time
	// DefaultDays are the days of the "default" class per signal; a
	// missing or non-positive entry keeps "default" partitions forever.
	DefaultDays map[Signal]int
	// MaxBytes, when positive, is the disk guard: while the partitions
	// left after the expired ones exceed it, the oldest non-held
	// partitions (never those of day 0) are dropped too.
	MaxBytes uint64
}

// keepDays returns the days a partition's class keeps it, or ok false
// when it is never dropped for age (hold, unknown classes, tables not in
// Tables, a default without configured days).
func (c PlanConfig) keepDays(p Partition) (int, bool) {
	sig, known := Tables[p.Table]
	if !known || p.Class == ClassHold {
		return 0, false
	}
	if d, ok := ParseClass(p.Class); ok {
		return d, true
	}
	if p.Class != ClassDefault {
		return 0, false
	}
	if sig == "" {
		best := 0
		for _, d := range c.DefaultDays {
			best = max(best, d)
		}
		return best, best > 0
	}
	d := c.DefaultDays[sig]
	return d, d > 0
}

// droppable reports whether the disk guard may drop p at all.
func droppable(p Partition) bool {
	_, known := Tables[p.Table]
	return known && p.Class != ClassHold && ValidClass(p.Class)
}

// Day is the UTC date of t, at midnight.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Plan returns the partitions to drop: those whose date is before day 0
// minus their class's days (a 7-day class keeps day 0 and the 7 days
// before it), then, with the disk guard, the oldest others while over
// MaxBytes. Held partitions are never dropped. The result is ordered by
// date, table and class.
func Plan(parts []Partition, cfg PlanConfig) []Drop {
	today := Day(cfg.AsOf)
	var drops []Drop
	var kept []Partition
	var keptBytes uint64
	for _, p := range parts {
		if days, ok := cfg.keepDays(p); ok && Day(p.Date).Before(today.AddDate(0, 0, -days)) {
			drops = append(drops, Drop{Partition: p, Reason: ReasonExpired})
			continue
		}
		kept = append(kept, p)
		keptBytes += p.Bytes
	}
	if cfg.MaxBytes > 0 && keptBytes > cfg.MaxBytes {
		slices.SortStableFunc(kept, comparePartitions)
		for _, p := range kept {
			if keptBytes <= cfg.MaxBytes {
				break
			}
			if !droppable(p) || !Day(p.Date).Before(today) {
				continue
			}
			drops = append(drops, Drop{Partition: p, Reason: ReasonDisk})
			keptBytes -= p.Bytes
		}
	}
	slices.SortStableFunc(drops, func(a, b Drop) int { return comparePartitions(a.Partition, b.Partition) })
	return drops
}

func comparePartitions(a, b Partition) int {
	return cmp.Or(a.Date.Compare(b.Date), cmp.Compare(a.Table, b.Table), cmp.Compare(a.Class, b.Class))
}
