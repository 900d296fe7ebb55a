package chstore

import (
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// appendColumn appends a whole batch column to an insert column. Nested
// slices for Array columns go row by row through the column's reflection-free
// path: clickhouse-go's Array.Append walks every element with reflection and
// boxes it (one allocation per string or large integer). Rows of strings and
// uint64s are handed over as slices of pointers, which box without
// allocating; uint8s never allocate when boxed. Anything else goes through
// the column's own Append.
func appendColumn(col column.Interface, v any) error {
	arr, ok := col.(*column.Array)
	if !ok {
		_, err := col.Append(v)
		return err
	}
	switch rows := v.(type) {
	case [][]string:
		return appendArrayRows(arr, rows)
	case [][]uint64:
		return appendArrayRows(arr, rows)
	case [][]uint8:
		for _, row := range rows {
			if err := arr.AppendRow(row); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := col.Append(v)
	return err
}

// appendArrayRows appends each row as a []*T built in one reused scratch
// slice (AppendRow copies the values; it keeps no reference to the row).
func appendArrayRows[T any](arr *column.Array, rows [][]T) error {
	var ptrs []*T
	for _, row := range rows {
		ptrs = ptrs[:0]
		for i := range row {
			ptrs = append(ptrs, &row[i])
		}
		if err := arr.AppendRow(ptrs); err != nil {
			return fmt.Errorf("row of %d: %w", len(row), err)
		}
	}
	return nil
}

// appendColumns appends the batch's columns (in names order) to the insert.
func appendColumns(batch driver.Batch, names []string, cols []any) error {
	insert := batch.Columns()
	if len(insert) != len(cols) {
		return fmt.Errorf("insert has %d columns, batch %d", len(insert), len(cols))
	}
	for i, v := range cols {
		if err := appendColumn(insert[i], v); err != nil {
			return fmt.Errorf("column %s: %w", names[i], err)
		}
	}
	return nil
}
