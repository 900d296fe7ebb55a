package rca

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// Every analysis reads a baseline several times longer than its window,
// largely the same buckets as the analyses before it, and the aggregates
// of a bucket never change once its rows have arrived. So the
// StoreSource keeps each settled bucket it computes in rca_buckets and
// reuses it, computing only what is missing: the window, the recent
// minutes, buckets whose source rows changed and a partial bucket at
// either end of the range.
//
// A stored bucket is stamped with the number of source rows it depended
// on (its own and those up to margin either side). It is used only while
// that number is unchanged, so late, re-delivered or deleted rows make the
// next analysis compute the bucket again: the answer is always the one
// the aggregation gives on the current data.

// maxParts bounds the pieces of a range one read computes at once.
const maxParts = 4

// cacheSettle is how long after the end of a bucket's dependency range
// the bucket is stored: before, its rows are likely still arriving.
const cacheSettle = 5 * time.Minute

// cacheSpec says how one signal is computed and cached.
type cacheSpec[T any] struct {
	signal  string        // versioned name in rca_buckets
	tables  []string      // source tables whose rows a bucket depends on
	margin  time.Duration // how far beyond a bucket its rows reach (span children)
	compute func(ctx context.Context, r Range, childFrom time.Time) ([]T, error)
	bucket  func(T) int64
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// cacheWriter stores computed buckets off the request path: one goroutine,
// owned by the StoreSource that made it (Close stops and waits for it),
// takes writes from a bounded queue; when the queue is full a write is
// dropped (a later analysis computes those buckets again).
type cacheWriter struct {
	st   *chstore.Store
	jobs chan cacheWrite
	done chan struct{}
}

type cacheWrite struct {
	signal string
	r      Range
	bs     []chstore.RCABucket
}

// cacheWriteTimeout bounds one background write.
const cacheWriteTimeout = 30 * time.Second

func newCacheWriter(st *chstore.Store) *cacheWriter {
	w := &cacheWriter{st: st, jobs: make(chan cacheWrite, 16), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for j := range w.jobs {
			ctx, cancel := context.WithTimeout(context.Background(), cacheWriteTimeout)
			_ = w.st.WriteRCABuckets(ctx, j.signal, j.r, j.bs) // best effort: a miss costs a recomputation
			cancel()
		}
	}()
	return w
}

func (w *cacheWriter) write(j cacheWrite) {
	select {
	case w.jobs <- j:
	default: // full: drop
	}
}

func (w *cacheWriter) close() {
	close(w.jobs)
	<-w.done
}

// cachedRead reads spec's signal for r, from rca_buckets where current.
// New buckets are stored through w (nil: before returning).
func cachedRead[T any](ctx context.Context, st *chstore.Store, w *cacheWriter, now time.Time, spec cacheSpec[T], r Range) ([]T, error) {
	stepNs := r.Step.Nanoseconds()
	first := (r.From.UnixNano() + stepNs - 1) / stepNs * stepNs
	last := r.To.UnixNano() / stepNs * stepNs
	if r.Step < time.Minute || r.Step%time.Second != 0 || last-first < 2*stepNs {
		return spec.compute(ctx, r, r.From)
	}
	stepS, marginS := int64(r.Step/time.Second), int64(spec.margin/time.Second)
	atom := stepS
	if marginS > 0 {
		atom = gcd(stepS, marginS)
	}
	counts := map[int64]uint64{}
	for _, t := range spec.tables {
		c, err := st.RCADepCounts(ctx, t, r, time.Unix(first/1e9-marginS, 0), time.Unix(last/1e9+marginS, 0), atom)
		if err != nil {
			return spec.compute(ctx, r, r.From)
		}
		for a, n := range c {
			counts[a] += n
		}
	}
	sum := func(from, to int64) uint64 {
		var s uint64
		for a := from; a < to; a += atom {
			s += counts[a]
		}
		return s
	}
	dep := func(b int64) uint64 { return sum(b/1e9-marginS, b/1e9+stepS+marginS) }

	cr := r
	cr.From, cr.To = time.Unix(0, first), time.Unix(0, last)
	stored, err := st.ReadRCABuckets(ctx, spec.signal, cr)
	if err != nil {
		stored = nil // no cache (e.g. an older schema): compute everything
	}
	best := map[int64]chstore.RCABucket{}
	for _, b := range stored {
		if b.Dep != dep(b.Bucket) {
			continue // stale: the bucket's rows changed since
		}
		if cur, ok := best[b.Bucket]; !ok || b.CalcID > cur.CalcID {
			best[b.Bucket] = b
		}
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
	var out []T
	cached := map[int64]bool{}
	add(r.From.UnixNano(), first)
	for b := first; b < last; b += stepNs {
		if sum(b/1e9, b/1e9+stepS) == 0 {
			continue // no rows start in the bucket
		}
		if sb, ok := best[b]; ok {
			var rows []T
			if json.Unmarshal(sb.Payload, &rows) == nil {
				out = append(out, rows...)
				cached[b] = true
				continue
			}
		}
		add(b, b+stepNs)
	}
	add(last, r.To.UnixNano())
	if len(todo) > maxParts {
		// too fragmented to compute piecewise: one pass over the range
		todo, out, cached = []part{{r.From.UnixNano(), r.To.UnixNano()}}, nil, map[int64]bool{}
	}

	results := make([][]T, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, p := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := r
			pr.From, pr.To = time.Unix(0, p.from).UTC(), time.Unix(0, p.to).UTC()
			childFrom := pr.From.Add(-spec.margin)
			if childFrom.Before(r.From) {
				childFrom = r.From
			}
			results[i], errs[i] = spec.compute(ctx, pr, childFrom)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	byBucket := map[int64][]T{}
	for _, rows := range results {
		out = append(out, rows...)
		for _, x := range rows {
			byBucket[spec.bucket(x)] = append(byBucket[spec.bucket(x)], x)
		}
	}
	// Store the settled buckets computed now, empty ones too (a bucket
	// with rows but nothing to aggregate is an answer as well).
	settled := now.Add(-cacheSettle - spec.margin - r.Step).UnixNano()
	calc := uint64(now.UnixNano())
	var store []chstore.RCABucket
	for _, p := range todo {
		for b := max(p.from, first); b < min(p.to, last); b += stepNs {
			if cached[b] || b%stepNs != 0 || b > settled || sum(b/1e9, b/1e9+stepS) == 0 {
				continue
			}
			rows := byBucket[b]
			if rows == nil {
				rows = []T{}
			}
			payload, err := json.Marshal(rows)
			if err != nil {
				continue
			}
			store = append(store, chstore.RCABucket{Bucket: b, Dep: dep(b), CalcID: calc, Payload: payload})
		}
	}
	// A failed store only costs the next analysis the same computation.
	if w != nil {
		w.write(cacheWrite{spec.signal, r, store})
	} else {
		_ = st.WriteRCABuckets(ctx, spec.signal, r, store)
	}
	return out, nil
}
