package chstore

import (
	"reflect"
	"slices"
	"time"
)

// MaxPartitionsPerInsert bounds the (date, retention class) partitions one
// insert touches: ClickHouse refuses an insert block spanning more than
// max_partitions_per_insert_block (100 by default on current servers) —
// a failure that would follow the rows, not the server — so a batch
// spanning more is sent as several inserts.
const MaxPartitionsPerInsert = 90

// partitionKey is a row's partition.
type partitionKey struct {
	date  time.Time
	class string
}

// splitByPartition returns cols (in the order of names) as one or more
// column sets, each spanning at most maxParts partitions; rows keep their
// order within a set. Without "date" and "retention_class" columns, or
// within the bound, cols is returned as it is.
func splitByPartition(names []string, cols []any, rows, maxParts int) [][]any {
	di, ci := slices.Index(names, "date"), slices.Index(names, "retention_class")
	if di < 0 || ci < 0 || rows == 0 {
		return [][]any{cols}
	}
	dates, ok1 := cols[di].([]time.Time)
	classes, ok2 := cols[ci].([]string)
	if !ok1 || !ok2 || len(dates) != rows || len(classes) != rows {
		return [][]any{cols}
	}
	part := make(map[partitionKey]int) // partition → its chunk
	chunkOf := make([]int, rows)
	chunks, inChunk := 0, 0
	for i := 0; i < rows; i++ {
		k := partitionKey{dates[i].Truncate(24 * time.Hour), classes[i]}
		c, seen := part[k]
		if !seen {
			if chunks == 0 || inChunk == maxParts {
				chunks++
				inChunk = 0
			}
			c = chunks - 1
			part[k] = c
			inChunk++
		}
		chunkOf[i] = c
	}
	if chunks <= 1 {
		return [][]any{cols}
	}
	idx := make([][]int, chunks)
	for i, c := range chunkOf {
		idx[c] = append(idx[c], i)
	}
	out := make([][]any, chunks)
	for c := range out {
		out[c] = make([]any, len(cols))
		for j, col := range cols {
			out[c][j] = pick(col, idx[c])
		}
	}
	return out
}

// pick is the rows at idx of a column slice.
func pick(col any, idx []int) any {
	v := reflect.ValueOf(col)
	if v.Kind() != reflect.Slice {
		return col
	}
	out := reflect.MakeSlice(v.Type(), len(idx), len(idx))
	for n, i := range idx {
		out.Index(n).Set(v.Index(i))
	}
	return out.Interface()
}
