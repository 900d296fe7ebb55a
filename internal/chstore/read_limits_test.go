package chstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The read limits are ClickHouse settings that the oldest supported server
// (18.16) accepts and enforces; their errors become apperr kinds.
func TestReadLimits(t *testing.T) {
	env := testenv.Get(t)
	var seen []string
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = env.ClickHouseAddr, env.ClickHouseDB, 2
	cfg.MaxRowsToRead = 1000
	cfg.QueryObserver = func(q string, _ []any) { seen = append(seen, q) }
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Scanning 1,000,000 rows is over max_rows_to_read (chstore's reads map
	// the error to KindTooLarge; see services/api for the 413 answer).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n uint64
	err = s.Conn().QueryRow(ctx, "SELECT count() FROM system.numbers_mt LIMIT 1000000").Scan(&n)
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 158 {
		t.Fatalf("over max_rows_to_read: %v, want ClickHouse exception 158 TOO_MANY_ROWS", err)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], "system.numbers_mt") {
		t.Errorf("observer saw %q", seen)
	}

	// max_execution_time stops a slow query on the server. clickhouse-go
	// derives it from the ctx deadline (deadline + 5 s); here it is set
	// directly to 1 s to keep the test short.
	// (No ctx deadline here, which would replace the setting; a watchdog
	// cancels instead.)
	slow := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 1}))
	slow, cancel2 := context.WithCancel(slow)
	defer cancel2()
	watchdog := time.AfterFunc(30*time.Second, cancel2)
	defer watchdog.Stop()
	raw, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env.ClickHouseAddr}, Auth: clickhouse.Auth{Database: env.ClickHouseDB}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	err = raw.QueryRow(slow, "SELECT count() FROM system.numbers WHERE cityHash64(number) = 1").Scan(&n)
	if !errors.As(err, &ex) || ex.Code != 159 {
		t.Fatalf("slow query: %v after %v, want exception 159 TIMEOUT_EXCEEDED", err, time.Since(start))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("server-side timeout took %v", took)
	}
}

// The ClickHouse limit errors map to client-facing kinds through the same
// path as every read's errors.
func TestReadLimitErrorKinds(t *testing.T) {
	for code, want := range map[int32]apperr.Kind{158: apperr.KindTooLarge, 396: apperr.KindTooLarge, 159: apperr.KindTimeout} {
		err := chstore.ReadErrForTest(&clickhouse.Exception{Code: code, Message: "Limit for rows to read exceeded: 5 rows read, maximum: 2"})
		if apperr.KindOf(err) != want {
			t.Errorf("code %d: kind %v, want %v", code, apperr.KindOf(err), want)
		}
		if code == 158 && !strings.Contains(apperr.PublicMessage(err), "more than 2 rows") {
			t.Errorf("message %q", apperr.PublicMessage(err))
		}
	}
}
