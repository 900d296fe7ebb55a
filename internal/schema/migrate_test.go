package schema_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestMigrationsAreIdempotent: testenv.Get already migrated both databases;
// applying again changes nothing and the version is recorded.
func TestMigrationsAreIdempotent(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: env.ClickHouseAddr, Database: env.ClickHouseDB}); err != nil {
			t.Fatalf("clickhouse run %d: %v", i, err)
		}
		if err := schema.MigratePostgres(ctx, env.PostgresDSN); err != nil {
			t.Fatalf("postgres run %d: %v", i, err)
		}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env.ClickHouseAddr}, Auth: clickhouse.Auth{Database: env.ClickHouseDB}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var version int64
	var dirty uint8
	if err := conn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations ORDER BY sequence DESC LIMIT 1").Scan(&version, &dirty); err != nil {
		t.Fatal(err)
	}
	if version < 1 || dirty != 0 {
		t.Errorf("clickhouse version %d dirty %d", version, dirty)
	}
	var tables uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name IN ('spans', 'trace_index', 'service_index')").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 3 {
		t.Errorf("%d of the span tables exist", tables)
	}
	pg, err := pgx.Connect(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	var n int
	if err := pg.QueryRow(ctx, "SELECT count(*) FROM tenants").Scan(&n); err != nil {
		t.Errorf("tenants table: %v", err)
	}
}

func TestMigrateRejectsOddDatabaseName(t *testing.T) {
	err := schema.MigrateClickHouse(context.Background(), schema.ClickHouseOptions{Addr: "127.0.0.1:1", Database: "x`; DROP"})
	if err == nil {
		t.Fatal("accepted a database name with a backquote")
	}
}
