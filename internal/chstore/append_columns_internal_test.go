package chstore

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

func arrayColumn(tb testing.TB, typ string) column.Interface {
	tb.Helper()
	col, err := column.Type(typ).Column("c", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return col
}

func stringRows(n, per int) [][]string {
	rows := make([][]string, n)
	for i := range rows {
		for j := 0; j < per; j++ {
			rows[i] = append(rows[i], "value-"+strconv.Itoa(i*per+j))
		}
	}
	return rows
}

func TestAppendColumnMatchesAppend(t *testing.T) {
	strs := stringRows(50, 3)
	strs[7] = nil
	u64 := [][]uint64{{1, 1 << 40}, nil, {3}}
	u8 := [][]uint8{{1, 2}, {}, {255}}
	tests := []struct {
		name, typ string
		v         any
	}{
		{"strings", "Array(String)", strs},
		{"uint64s", "Array(UInt64)", u64},
		{"uint8s", "Array(UInt8)", u8},
		{"scalar", "String", []string{"a", "b"}},
		{"fallback", "Array(UInt32)", [][]uint32{{1}, {2, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, got := arrayColumn(t, tt.typ), arrayColumn(t, tt.typ)
			if _, err := want.Append(tt.v); err != nil {
				t.Fatal(err)
			}
			if err := appendColumn(got, tt.v); err != nil {
				t.Fatal(err)
			}
			if want.Rows() != got.Rows() {
				t.Fatalf("rows %d, want %d", got.Rows(), want.Rows())
			}
			for i := 0; i < want.Rows(); i++ {
				w, g := want.Row(i, false), got.Row(i, false)
				if strconv.Quote(fmtAny(w)) != strconv.Quote(fmtAny(g)) {
					t.Fatalf("row %d: %v, want %v", i, g, w)
				}
			}
		})
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }

func BenchmarkAppendArrayString(b *testing.B) {
	rows := stringRows(50000, 8)
	b.Run("clickhouse-go", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			col := arrayColumn(b, "Array(String)")
			if _, err := col.Append(rows); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendColumn", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			col := arrayColumn(b, "Array(String)")
			if err := appendColumn(col, rows); err != nil {
				b.Fatal(err)
			}
		}
	})
}
