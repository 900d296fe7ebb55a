package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// RCABucket is one cached aggregate bucket of internal/rca (table
// rca_buckets).
type RCABucket struct {
	Bucket  int64  // bucket start, unix ns
	Dep     uint64 // source rows the bucket was computed from
	CalcID  uint64 // computation stamp: the latest matching one wins
	Payload []byte // the bucket's rows as JSON
}

// rcaCountTables are the tables RCADepCounts may count, by name.
var rcaCountTables = map[string]string{"spans": "spans", "logs": "logs", "metric_points": "metric_points"}

const rcaDepCountsSQL = `
SELECT toUInt64(intDiv(toUInt32(timestamp), ?) * ?) AS a, count()
FROM %s
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
GROUP BY a`

// RCADepCounts counts the rows of table (spans, logs or metric_points) in
// [from, to) per atom of atomSec seconds: unix seconds → rows.
func (s *Store) RCADepCounts(ctx context.Context, table string, r RCARange, from, to time.Time, atomSec int64) (map[int64]uint64, error) {
	t, ok := rcaCountTables[table]
	if !ok {
		return nil, fmt.Errorf("rca dep counts: unknown table %q", table)
	}
	ns, args := rcaNS(r, []any{uint32(atomSec), uint32(atomSec), r.TenantID, rcaSecs(from), rcaSecs(to)})
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaDepCountsSQL, t, ns), args...)
	if err != nil {
		return nil, readErr(ctx, "rca dep counts", err)
	}
	defer rows.Close()
	out := map[int64]uint64{}
	for rows.Next() {
		var a, n uint64
		if err := rows.Scan(&a, &n); err != nil {
			return nil, readErr(ctx, "rca dep counts: scan", err)
		}
		out[int64(a)] = n
	}
	return out, readErr2(ctx, "rca dep counts", rows.Err())
}

const rcaBucketsReadSQL = `
SELECT bucket, dep, calc_id, payload
FROM rca_buckets
WHERE tenant_id = ? AND namespace = ? AND signal = ? AND step_ns = ? AND bucket >= ? AND bucket < ?`

// ReadRCABuckets returns the cached buckets of signal in [r.From, r.To).
func (s *Store) ReadRCABuckets(ctx context.Context, signal string, r RCARange) ([]RCABucket, error) {
	rows, err := s.conn.Query(ctx, rcaBucketsReadSQL, r.TenantID, r.Namespace, signal, uint64(r.Step),
		uint64(max(r.From.UnixNano(), 0)), uint64(max(r.To.UnixNano(), 0)))
	if err != nil {
		return nil, readErr(ctx, "rca buckets", err)
	}
	defer rows.Close()
	var out []RCABucket
	for rows.Next() {
		var b RCABucket
		var bucket uint64
		var payload string
		if err := rows.Scan(&bucket, &b.Dep, &b.CalcID, &payload); err != nil {
			return nil, readErr(ctx, "rca buckets: scan", err)
		}
		b.Bucket, b.Payload = int64(bucket), []byte(payload)
		out = append(out, b)
	}
	return out, readErr2(ctx, "rca buckets", rows.Err())
}

// WriteRCABuckets stores computed buckets of signal.
func (s *Store) WriteRCABuckets(ctx context.Context, signal string, r RCARange, bs []RCABucket) error {
	if len(bs) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO rca_buckets (tenant_id, date, retention_class, namespace, signal, step_ns, bucket, dep, calc_id, payload)")
	if err != nil {
		return fmt.Errorf("rca buckets insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	for _, b := range bs {
		if err := batch.Append(r.TenantID, time.Unix(0, b.Bucket).UTC(), retention.ClassDefault, r.Namespace, signal,
			uint64(r.Step), uint64(b.Bucket), b.Dep, b.CalcID, string(b.Payload)); err != nil {
			return fmt.Errorf("rca buckets insert: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("rca buckets insert: %w", err)
	}
	return nil
}
