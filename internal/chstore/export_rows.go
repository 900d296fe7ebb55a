package chstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// exportRows encodes up to limit rows as JSON objects (keys in column
// order) and hands each to emit; it returns how many rows there were, up
// to limit+1 (one more tells the caller the export was cut short).
func exportRows(rows driver.Rows, names []string, limit int, emit func([]byte) error) (int, error) {
	types := rows.ColumnTypes()
	if len(types) != len(names) {
		return 0, fmt.Errorf("export: %d columns, expected %d", len(types), len(names))
	}
	keys := make([][]byte, len(names))
	for i, n := range names {
		k, _ := json.Marshal(n)
		keys[i] = append(k, ':')
	}
	dest := make([]any, len(types))
	for i, ct := range types {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	n := 0
	var buf bytes.Buffer
	for rows.Next() {
		n++
		if n > limit {
			continue
		}
		if err := rows.Scan(dest...); err != nil {
			return n, fmt.Errorf("scan: %w", err)
		}
		buf.Reset()
		buf.WriteByte('{')
		for i := range dest {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(keys[i])
			if err := writeJSONValue(&buf, reflect.ValueOf(dest[i]).Elem()); err != nil {
				return n, fmt.Errorf("encode %s: %w", names[i], err)
			}
		}
		buf.WriteByte('}')
		if err := emit(bytes.Clone(buf.Bytes())); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// writeJSONValue encodes a scanned value: times as RFC 3339 (UTC), NaN and
// infinities as strings, nil pointers as null.
func writeJSONValue(buf *bytes.Buffer, v reflect.Value) error {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		buf.WriteString(strconv.Quote(x.UTC().Format(time.RFC3339Nano)))
		return nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			buf.WriteString(strconv.Quote(strconv.FormatFloat(x, 'g', -1, 64)))
			return nil
		}
	case float32:
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			buf.WriteString(strconv.Quote(strconv.FormatFloat(f, 'g', -1, 64)))
			return nil
		}
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 {
		buf.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONValue(buf, v.Index(i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}
