package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// ScaleOptions configure `make bench-scale`.
type ScaleOptions struct {
	Spans     int64         // rows to load
	BatchRows int           // rows per insert
	Workers   int           // concurrent inserts
	Templates int           // distinct generated batches, re-used with new trace ids and times
	Window    time.Duration // the loaded spans cover [now-Window, now)
	Queries   int           // timed queries of each kind
	SettleMax time.Duration // longest wait for background merges before the second round of reads
	Seed      uint64
	Dir       string
	Keep      bool
	Out       io.Writer
}

// DefaultScaleOptions load 50M spans over a day.
func DefaultScaleOptions() ScaleOptions {
	return ScaleOptions{Spans: 50_000_000, BatchRows: 50_000, Workers: 2, Templates: 8, Window: 24 * time.Hour,
		Queries: 50, SettleMax: 10 * time.Minute, Seed: 1, Out: os.Stdout}
}

// ScaleReport is what `make bench-scale` measured.
type ScaleReport struct {
	Rows         int64
	Load         time.Duration
	RowsPerSec   float64
	Parts        uint64
	BytesPerSpan float64
	Merging      Reads // right after the load, background merges running
	Settle       time.Duration
	SettledParts uint64
	Settled      Reads // once no merge ran (or SettleMax passed)
	ClickHouse   string
}

// Reads are the latencies of the three timed queries.
type Reads struct {
	TraceByID, Search, Timeline Latency
}

// RunScale loads o.Spans spans with raw inserts and times the three reads
// at that size.
func RunScale(ctx context.Context, o ScaleOptions) (*ScaleReport, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "aftertrace-bench-scale-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(d)
		}
	}
	fmt.Fprintf(o.Out, "bench-scale: work dir %s\n", dir)
	st, err := StartClickHouse(ctx, dir, slog.New(slog.DiscardHandler), TopologySingle)
	if err != nil {
		return nil, err
	}
	defer st.Stop()
	store, err := st.OpenStore(ctx, "scale", o.Workers+2)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	rep := &ScaleReport{ClickHouse: ServerVersion(ctx, store)}

	m, err := loadgen.NewModel(modelConfig(o.Seed))
	if err != nil {
		return nil, err
	}
	perRound := int64(o.Templates * o.BatchRows)
	rounds := max((o.Spans+perRound-1)/perRound, 1)
	roundSpan := o.Window / time.Duration(rounds)
	reqs := max(perRound/500, 1)
	base := time.Now().Add(-o.Window).Truncate(time.Second)
	fmt.Fprintf(o.Out, "bench-scale: generating %d template batches of %d rows; %d rounds of %s each\n", o.Templates, o.BatchRows, rounds, roundSpan)
	templates := BuildBatches(loadgen.NewGenerator(m, o.Seed), benchTenant, o.Templates, o.BatchRows, 500, base, roundSpan/time.Duration(reqs))

	// Load: round r re-uses the templates with trace ids xor-ed by a
	// round mask and times shifted by r × roundSpan.
	work := make(chan *otlpconv.SpanBatch, o.Workers)
	var rows atomic.Int64
	var firstErr error
	var once sync.Once
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	began := time.Now()
	for range o.Workers {
		wg.Go(func() {
			for b := range work {
				if err := store.InsertSpans(lctx, b); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				rows.Add(int64(b.Len()))
			}
		})
	}
	stopProgress := progressEvery(o.Out, 10*time.Second, func() string {
		n := rows.Load()
		return fmt.Sprintf("bench-scale: %d rows loaded (%.0f rows/s)", n, float64(n)/time.Since(began).Seconds())
	})
feed:
	for r := range rounds {
		mask := roundMask(o.Seed, uint64(r))
		for _, t := range templates {
			if int64(r)*perRound >= o.Spans {
				break feed
			}
			select {
			case work <- shifted(t, mask, time.Duration(r)*roundSpan):
			case <-lctx.Done():
				break feed
			}
		}
	}
	close(work)
	wg.Wait()
	stopProgress()
	if firstErr != nil {
		return nil, firstErr
	}
	rep.Rows, rep.Load = rows.Load(), time.Since(began)
	rep.RowsPerSec = float64(rep.Rows) / rep.Load.Seconds()
	fmt.Fprintf(o.Out, "bench-scale: loaded %d rows in %s (%.0f rows/s)\n", rep.Rows, rep.Load.Round(time.Second), rep.RowsPerSec)

	_ = store.Conn().QueryRow(ctx, `SELECT toUInt64(count()) FROM system.parts WHERE database = 'scale' AND table = 'spans' AND active`).Scan(&rep.Parts)
	rep.BytesPerSpan, _, _ = BytesPerSpan(ctx, store, "scale", "")

	sc := scaleReads{store: store, templates: templates, models: m, rounds: rounds, base: base, o: o}
	fmt.Fprintf(o.Out, "bench-scale: timing %d reads of each kind while merges run\n", o.Queries)
	rep.Merging = sc.run(ctx, 7)
	settleStart := time.Now()
	rep.SettledParts = settle(ctx, store, "scale", o.SettleMax, 5*time.Second, o.Out)
	rep.Settle = time.Since(settleStart)
	fmt.Fprintf(o.Out, "bench-scale: timing %d reads of each kind after merges settled (%s)\n", o.Queries, rep.Settle.Round(time.Second))
	rep.Settled = sc.run(ctx, 8)
	return rep, nil
}

// scaleReads times the reads of `make bench-scale` on the loaded data.
type scaleReads struct {
	store     *chstore.Store
	templates []*otlpconv.SpanBatch
	models    *loadgen.Model
	rounds    int64
	base      time.Time
	o         ScaleOptions
}

// run times o.Queries reads of each kind, random ones drawn from stream.
func (sc *scaleReads) run(ctx context.Context, stream uint64) Reads {
	store, templates, m, rounds, base, o := sc.store, sc.templates, sc.models, sc.rounds, sc.base, sc.o
	var rep Reads
	rng := rand.New(rand.NewPCG(o.Seed, stream))
	// Trace by id: a random trace of a random round.
	var ms []float64
	errs := 0
	for range o.Queries {
		t := templates[rng.IntN(len(templates))]
		var id [16]byte
		copy(id[:], t.TraceID[rng.IntN(t.Len())])
		mask := roundMask(o.Seed, uint64(rng.Int64N(rounds)))
		for i := range id {
			id[i] ^= mask[i]
		}
		began := time.Now()
		spans, err := store.GetTrace(ctx, benchTenant, id)
		if err != nil || len(spans) == 0 {
			errs++
			continue
		}
		ms = append(ms, sinceMs(began))
	}
	rep.TraceByID = summarize(ms, errs)

	// Search: one service over a random hour.
	ms, errs = nil, 0
	for range o.Queries {
		s := m.Services[rng.IntN(len(m.Services))]
		start := base.Add(time.Duration(rng.Int64N(int64(o.Window - time.Hour))))
		began := time.Now()
		res, err := store.SearchTraces(ctx, chstore.TraceQuery{TenantID: benchTenant, Service: s.Name, Start: start, End: start.Add(time.Hour), Limit: 20})
		if err != nil || len(res) == 0 {
			errs++
			continue
		}
		ms = append(ms, sinceMs(began))
	}
	rep.Search = summarize(ms, errs)

	// Container timeline: the spans of one container over 15 minutes.
	ms, errs = nil, 0
	for range o.Queries {
		s := m.Services[rng.IntN(len(m.Services))]
		p := s.Pods[rng.IntN(len(s.Pods))]
		start := base.Add(time.Duration(rng.Int64N(int64(o.Window - 15*time.Minute))))
		began := time.Now()
		n, err := containerTimeline(ctx, store, p.ContainerID, start, start.Add(15*time.Minute))
		if err != nil || n == 0 {
			errs++
			continue
		}
		ms = append(ms, sinceMs(began))
	}
	rep.Timeline = summarize(ms, errs)
	return rep
}

// settle waits until no merge of db has run for two polls (every poll
// apart) in a row, at most max, and returns the active parts of spans then.
func settle(ctx context.Context, store *chstore.Store, db string, max, poll time.Duration, out io.Writer) uint64 {
	deadline := time.Now().Add(max)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 2 {
		var n uint64
		if err := store.Conn().QueryRow(ctx, `SELECT toUInt64(count()) FROM system.merges WHERE database = ?`, db).Scan(&n); err != nil {
			fmt.Fprintln(out, "bench-scale: merges:", err)
			break
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(poll)
	}
	var parts uint64
	_ = store.Conn().QueryRow(ctx, `SELECT toUInt64(count()) FROM system.parts WHERE database = ? AND table = 'spans' AND active`, db).Scan(&parts)
	return parts
}

// containerTimeline reads the spans of one container in [from, to), the
// query behind a container timeline view; it returns the rows read.
func containerTimeline(ctx context.Context, store *chstore.Store, containerID string, from, to time.Time) (int, error) {
	rows, err := store.Conn().Query(ctx, `SELECT lower(hex(trace_id)), lower(hex(span_id)), name, start_time_unix_nano, duration_ns, status_code
		FROM spans
		WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) AND container_id = ?
		ORDER BY start_time_unix_nano LIMIT 1000`,
		benchTenant, uint32(from.Unix()), uint32(to.Unix()), containerID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var tid, sid, name string
		var start, dur uint64
		var code int8
		if err := rows.Scan(&tid, &sid, &name, &start, &dur, &code); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func roundMask(seed, round uint64) [16]byte {
	var m [16]byte
	if round == 0 {
		return m
	}
	rng := rand.New(rand.NewPCG(seed, round))
	for i := range m {
		m[i] = byte(rng.Uint32())
	}
	return m
}

// shifted copies t with trace ids xor-ed by mask and every time moved by d.
func shifted(t *otlpconv.SpanBatch, mask [16]byte, d time.Duration) *otlpconv.SpanBatch {
	b := *t
	n := t.Len()
	b.TraceID = make([]string, n)
	b.Date, b.Timestamp = make([]time.Time, n), make([]time.Time, n)
	b.StartNs, b.EndNs = make([]uint64, n), make([]uint64, n)
	b.EventTimes = make([][]uint64, n)
	var id [16]byte
	for i := range n {
		copy(id[:], t.TraceID[i])
		for j := range id {
			id[j] ^= mask[j]
		}
		b.TraceID[i] = string(id[:])
		b.Timestamp[i] = t.Timestamp[i].Add(d)
		b.Date[i] = b.Timestamp[i]
		b.StartNs[i], b.EndNs[i] = t.StartNs[i]+uint64(d), t.EndNs[i]+uint64(d)
		if len(t.EventTimes[i]) > 0 {
			ev := make([]uint64, len(t.EventTimes[i]))
			for k, v := range t.EventTimes[i] {
				ev[k] = v + uint64(d)
			}
			b.EventTimes[i] = ev
		}
	}
	return &b
}

func sinceMs(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

func progressEvery(w io.Writer, every time.Duration, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Table writes the scale results, the summary line last.
func (r *ScaleReport) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tnotes")
	fmt.Fprintf(tw, "rows loaded\t%d\t%.0f rows/s raw inserts, %s, ClickHouse %s\n", r.Rows, r.RowsPerSec, r.Load.Round(time.Second), r.ClickHouse)
	fmt.Fprintf(tw, "active parts\t%d → %d\tright after the load → after waiting %s for background merges to finish\n", r.Parts, r.SettledParts, r.Settle.Round(time.Second))
	fmt.Fprintf(tw, "bytes per span\t%.0f\tsystem.parts active, right after the load\n", r.BytesPerSpan)
	for _, phase := range []struct {
		name  string
		reads Reads
	}{{"while merging", r.Merging}, {"settled", r.Settled}} {
		for _, q := range []struct {
			name, note string
			l          Latency
		}{
			{"trace by id", "chstore.GetTrace, random trace", phase.reads.TraceByID},
			{"search", "chstore.SearchTraces, one service, random 1h window, limit 20", phase.reads.Search},
			{"container timeline", "spans of one container_id, random 15 min window, ≤1000 rows", phase.reads.Timeline},
		} {
			fmt.Fprintf(tw, "%s (%s)\tp50 %.1f ms, p99 %.1f ms\t%s; n=%d, %d errors/empty\n", q.name, phase.name, q.l.P50, q.l.P99, q.note, q.l.N, q.l.Errors)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "scale_spans=%d load_rows_per_s=%.0f trace_by_id_p99_ms=%.1f search_p99_ms=%.1f container_timeline_p99_ms=%.1f trace_by_id_p99_ms_merging=%.1f bytes_per_span=%.0f\n",
		r.Rows, r.RowsPerSec, r.Settled.TraceByID.P99, r.Settled.Search.P99, r.Settled.Timeline.P99, r.Merging.TraceByID.P99, r.BytesPerSpan)
}
