package bus

import "context"

// Lane is the queue a request travels in on the way to ClickHouse. Each
// signal has two, each with its own writer consumer: what a tenant sends
// within its fair share of the ingest rate goes in LaneShare; what it
// sends beyond it, and records that arrive late (a backfill, a backlog
// after an outage), go in LaneBulk. A tenant that floods or backfills
// fills the bulk lane only, so the traffic of the others is never queued
// behind it: the writer's batches are fair across tenants.
type Lane uint8

const (
	LaneShare Lane = iota
	LaneBulk
)

// Lanes are every lane, in the order writers start them.
var Lanes = []Lane{LaneShare, LaneBulk}

func (l Lane) String() string {
	if l == LaneBulk {
		return "bulk"
	}
	return "share"
}

type laneKey struct{}

// WithLane makes the publisher put what it publishes with ctx in lane l.
func WithLane(ctx context.Context, l Lane) context.Context {
	return context.WithValue(ctx, laneKey{}, l)
}

// LaneOf is the lane of ctx: LaneShare unless WithLane said otherwise.
func LaneOf(ctx context.Context) Lane {
	l, _ := ctx.Value(laneKey{}).(Lane)
	return l
}

// LaneSubject is where signal s is published in lane l: the share lane
// keeps IngestSubject, the bulk lane appends ".bulk".
func LaneSubject(s Signal, l Lane) string {
	if l == LaneBulk {
		return IngestSubject(s) + ".bulk"
	}
	return IngestSubject(s)
}
