package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// RawResult is the throughput of pre-built inserts straight into ClickHouse.
type RawResult struct {
	Rows       int64
	Inserts    int64
	Elapsed    time.Duration
	RowsPerSec float64
	BatchRows  int
	Workers    int
	ClientCPU  float64 // CPU seconds of this process (clickhouse-go encoding)
	CHCPU      float64 // CPU seconds of ClickHouse
}

// RawInsert inserts the batches rounds times over with workers concurrent
// inserts (like the writer's insert loops), stopping early at maxTime.
// Round r inserts copies with trace ids xor-ed by a round mask and times
// moved by r × roundSpan, as bench-scale does: rows the same as end to end
// ones in that no two are duplicates (identical rows would be collapsed by
// ReplacingMergeTree merges, making the baseline's merges cheaper than
// those of real traffic).
func RawInsert(ctx context.Context, store *chstore.Store, batches []*otlpconv.SpanBatch, seed uint64, roundSpan time.Duration, workers, rounds int, maxTime time.Duration) (RawResult, error) {
	ctx, cancel := context.WithTimeout(ctx, maxTime+time.Minute)
	defer cancel()
	work := make(chan *otlpconv.SpanBatch, workers)
	var rows, inserts atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	begin := time.Now()
	for range workers {
		wg.Go(func() {
			for b := range work {
				if err := store.InsertSpans(ctx, b); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				rows.Add(int64(b.Len()))
				inserts.Add(1)
			}
		})
	}
	deadline := begin.Add(maxTime)
feed:
	for r := range rounds {
		mask := roundMask(seed, uint64(r))
		for _, b := range batches {
			if time.Now().After(deadline) {
				break feed
			}
			select {
			case work <- shifted(b, mask, time.Duration(r)*roundSpan):
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(work)
	wg.Wait()
	res := RawResult{Rows: rows.Load(), Inserts: inserts.Load(), Elapsed: time.Since(begin), Workers: workers}
	if len(batches) > 0 {
		res.BatchRows = batches[0].Len()
	}
	if firstErr != nil {
		return res, fmt.Errorf("raw insert: %w", firstErr)
	}
	res.RowsPerSec = float64(res.Rows) / res.Elapsed.Seconds()
	return res, nil
}
