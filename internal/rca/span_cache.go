package rca

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// The span statistics need a self-join of the spans (a span's own time is
// its duration minus its children's), which dominates the cost of an
// analysis. The statistics of a bucket never change once its spans have
// arrived, and every analysis reads a baseline several times longer than
// its window, largely the same buckets as the analyses before it. So
// SpanStats stores each settled bucket it computes in rca_span_stats
// (migration 000006) and reuses it, computing with the join only what is
// missing: the window, the recent minutes and a partial bucket at either
// end of the range.
//
// A stored bucket is stamped with the number of spans it depended on: its
// own and those up to childMargin either side (where its spans' children
// are looked for). It is used only while that number is unchanged, so
// late, re-delivered or deleted spans make the next analysis compute the
// bucket again; the answer is the one the join gives on the current data.

// childMargin is how far beyond a range a span's children are looked for.
const childMargin = time.Minute

// maxParts bounds the joins one analysis runs at once (the pieces of the
// range that are not stored).
const maxParts = 4

// spanCacheSettle is how long after the end of a bucket's dependency range
// the bucket is stored: before, its spans are likely still arriving.
const spanCacheSettle = 5 * time.Minute

// spanCounts counts the spans per atom (seconds → count).
type spanCounts struct {
	atom int64 // seconds
	n    map[int64]uint64
}

// sum counts the spans starting in [from, to) (unix seconds, multiples of
// the atom).
func (c spanCounts) sum(from, to int64) uint64 {
	var s uint64
	for a := from; a < to; a += c.atom {
		s += c.n[a]
	}
	return s
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

const spanCountsSQL = `
SELECT toUInt64(intDiv(toUInt32(timestamp), ?) * ?) AS a, count()
FROM spans
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
GROUP BY a`

func (c CHSource) spanCounts(ctx context.Context, r Range, from, to time.Time, atom int64) (spanCounts, error) {
	out := spanCounts{atom: atom, n: map[int64]uint64{}}
	ns, args := nsFilter(r, []any{uint32(atom), uint32(atom), r.TenantID, secs(from), secs(to)})
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(spanCountsSQL, ns), args...)
	if err != nil {
		return out, fmt.Errorf("rca: span counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, n uint64
		if err := rows.Scan(&a, &n); err != nil {
			return out, fmt.Errorf("rca: span counts: %w", err)
		}
		out.n[int64(a)] = n
	}
	return out, rows.Err()
}

const spanCacheReadSQL = `
SELECT bucket, spans, calc_id, kind, service_name, k8s_pod_name, operation, caller, caller_pod, n, errors, p90
FROM rca_span_stats
WHERE tenant_id = ? AND namespace = ? AND step_ns = ? AND bucket >= ? AND bucket < ?`

// readSpanCache returns the stored buckets in [from, to) (unix ns) whose
// span count is still want(bucket).
func (c CHSource) readSpanCache(ctx context.Context, r Range, from, to int64, want func(b int64) uint64) (map[int64][]SpanStat, error) {
	rows, err := c.Conn.Query(ctx, spanCacheReadSQL, r.TenantID, r.Namespace, uint64(r.Step), uint64(from), uint64(to))
	if err != nil {
		return nil, fmt.Errorf("rca: span cache: %w", err)
	}
	defer rows.Close()
	type calc struct {
		id   uint64
		rows []SpanStat
	}
	best := map[int64]*calc{}
	for rows.Next() {
		var s SpanStat
		var b, spans, id uint64
		if err := rows.Scan(&b, &spans, &id, &s.Kind, &s.Service, &s.Pod, &s.Operation, &s.Caller, &s.CallerPod, &s.Count, &s.Errors, &s.P90); err != nil {
			return nil, fmt.Errorf("rca: span cache: %w", err)
		}
		s.T = int64(b)
		if spans != want(s.T) {
			continue // stale: the bucket's spans changed since
		}
		cur := best[s.T]
		switch {
		case cur == nil || id > cur.id: // the latest matching computation
			best[s.T] = &calc{id: id, rows: []SpanStat{s}}
		case id == cur.id:
			cur.rows = append(cur.rows, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rca: span cache: %w", err)
	}
	out := make(map[int64][]SpanStat, len(best))
	for b, cl := range best {
		out[b] = cl.rows
	}
	return out, nil
}

var spanCacheColumns = "tenant_id, date, retention_class, namespace, step_ns, bucket, spans, calc_id, kind, service_name, k8s_pod_name, operation, caller, caller_pod, n, errors, p90"

// writeSpanCache stores computed buckets (rows grouped by bucket) with
// their span counts.
func (c CHSource) writeSpanCache(ctx context.Context, r Range, rows []SpanStat, count func(b int64) uint64, id uint64) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := c.Conn.PrepareBatch(ctx, "INSERT INTO rca_span_stats ("+spanCacheColumns+")")
	if err != nil {
		return fmt.Errorf("rca: span cache insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	n := len(rows)
	var (
		tenant, class, ns                     = make([]string, n), make([]string, n), make([]string, n)
		date                                  = make([]time.Time, n)
		step, bucket, spans, ids, cnt, errs   = make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
		kind, svc, pod, op, caller, callerPod = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		p90                                   = make([]float64, n)
	)
	for i, s := range rows {
		tenant[i], class[i], ns[i] = r.TenantID, retention.ClassDefault, r.Namespace
		date[i] = time.Unix(0, s.T).UTC()
		step[i], bucket[i], spans[i], ids[i] = uint64(r.Step), uint64(s.T), count(s.T), id
		kind[i], svc[i], pod[i], op[i], caller[i], callerPod[i] = s.Kind, s.Service, s.Pod, s.Operation, s.Caller, s.CallerPod
		cnt[i], errs[i], p90[i] = s.Count, s.Errors, s.P90
	}
	for i, col := range []any{tenant, date, class, ns, step, bucket, spans, ids, kind, svc, pod, op, caller, callerPod, cnt, errs, p90} {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("rca: span cache insert: column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("rca: span cache insert: %w", err)
	}
	return nil
}

// SpanStats implements Source: stored buckets where they are still
// current, the rest with the self-join (see the top of this file).
func (c CHSource) SpanStats(ctx context.Context, r Range) ([]SpanStat, error) {
	stepNs := r.Step.Nanoseconds()
	if c.NoSpanCache || r.Step < time.Minute || r.Step%time.Second != 0 || !r.To.After(r.From) {
		return c.spanStatsRange(ctx, r, r.From, r.To, r.From)
	}
	// full buckets [first, last): partial ones at either end are computed
	first := (r.From.UnixNano() + stepNs - 1) / stepNs * stepNs
	last := r.To.UnixNano() / stepNs * stepNs
	if last-first < 2*stepNs {
		return c.spanStatsRange(ctx, r, r.From, r.To, r.From)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	stepS, marginS := int64(r.Step/time.Second), int64(childMargin/time.Second)
	atom := gcd(stepS, marginS)
	counts, err := c.spanCounts(ctx, r, time.Unix(first/1e9-marginS, 0), time.Unix(last/1e9+marginS, 0), atom)
	if err != nil {
		return c.spanStatsRange(ctx, r, r.From, r.To, r.From)
	}
	// depends is the number of spans bucket b's statistics depend on.
	depends := func(b int64) uint64 { return counts.sum(b/1e9-marginS, b/1e9+stepS+marginS) }
	cached, err := c.readSpanCache(ctx, r, first, last, depends)
	if err != nil {
		cached = nil // no cache (e.g. an older schema): compute everything
	}

	type part struct{ from, to int64 }
	var todo []part
	add := func(a, z int64) {
		if z <= a {
			return
		}
		if n := len(todo); n > 0 && todo[n-1].to == a {
			todo[n-1].to = z
			return
		}
		todo = append(todo, part{a, z})
	}
	var out []SpanStat
	add(r.From.UnixNano(), first)
	for b := first; b < last; b += stepNs {
		if counts.sum(b/1e9, b/1e9+stepS) == 0 {
			continue // no spans start in the bucket
		}
		if rows, ok := cached[b]; ok {
			out = append(out, rows...)
			continue
		}
		add(b, b+stepNs)
	}
	add(last, r.To.UnixNano())
	if len(todo) > maxParts {
		// too fragmented to join piecewise: one join over the whole range
		todo, out = []part{{r.From.UnixNano(), r.To.UnixNano()}}, nil
	}

	results := make([][]SpanStat, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, p := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := time.Unix(0, p.from).UTC(), time.Unix(0, p.to).UTC()
			childFrom := from.Add(-childMargin)
			if childFrom.Before(r.From) {
				childFrom = r.From
			}
			results[i], errs[i] = c.spanStatsRange(ctx, r, from, to, childFrom)
		}()
	}
	wg.Wait()
	var store []SpanStat
	settled := now().Add(-spanCacheSettle - childMargin - r.Step).UnixNano()
	for i, rows := range results {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, rows...)
		for _, s := range rows {
			if _, had := cached[s.T]; !had && s.T >= first && s.T < last && s.T <= settled {
				store = append(store, s)
			}
		}
	}
	// A failed store only costs the next analysis the same join again.
	_ = c.writeSpanCache(ctx, r, store, depends, uint64(now().UnixNano()))
	return out, nil
}
