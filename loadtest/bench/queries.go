package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// Latency summarizes a set of timings in milliseconds.
type Latency struct {
	N             int
	P50, P99, Max float64
	Errors        int
}

func summarize(ms []float64, errs int) Latency {
	l := Latency{N: len(ms), Errors: errs}
	if len(ms) == 0 {
		return l
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	l.P50, l.P99, l.Max = quantile(s, 0.50), quantile(s, 0.99), s[len(s)-1]
	return l
}

// quantile of sorted s by the nearest-rank method.
func quantile(s []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// TraceByID reads each id once through the API, one at a time.
func TraceByID(ctx context.Context, apiAddr string, ids []string) Latency {
	var ms []float64
	errs := 0
	for _, id := range ids {
		t := time.Now()
		n, code, err := getTrace(ctx, apiAddr, id)
		if err != nil || code != http.StatusOK || n == 0 {
			errs++
			continue
		}
		ms = append(ms, float64(time.Since(t))/float64(time.Millisecond))
	}
	return summarize(ms, errs)
}

// BytesPerSpan is the on-disk size of the active parts of the spans table
// divided by their rows; on a cluster (name set) of the local tables of
// one replica of every shard.
func BytesPerSpan(ctx context.Context, store *chstore.Store, db, cluster string) (float64, uint64, error) {
	var bytes, rows uint64
	parts, table := "system.parts", "spans"
	if cluster != "" {
		parts, table = "cluster('"+cluster+"', system, parts)", "spans_local"
	}
	err := store.Conn().QueryRow(ctx, `SELECT toUInt64(sum(bytes_on_disk)), toUInt64(sum(rows)) FROM `+parts+`
		WHERE database = ? AND table = ? AND active`, db, table).Scan(&bytes, &rows)
	if err != nil {
		// Older servers name the column "bytes".
		err = store.Conn().QueryRow(ctx, `SELECT toUInt64(sum(bytes)), toUInt64(sum(rows)) FROM `+parts+`
			WHERE database = ? AND table = ? AND active`, db, table).Scan(&bytes, &rows)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("bytes per span: %w", err)
	}
	if rows == 0 {
		return 0, 0, nil
	}
	return float64(bytes) / float64(rows), rows, nil
}

// ServerVersion is ClickHouse's version().
func ServerVersion(ctx context.Context, store *chstore.Store) string {
	var v string
	if err := store.Conn().QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}
