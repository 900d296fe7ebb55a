package schema_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// Processes started together (replicas of a Deployment, a migration job)
// migrate a fresh deployment once: each migration is applied by one of
// them (one dirty and one clean version row each), the others wait on the
// Postgres lock and find nothing left to do. Each call has its own
// Postgres session and ClickHouse connection, as separate processes do.
func TestMigrateOncePerDeployment(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := env.ClickHouseDB + "_fresh"
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env.ClickHouseAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	const starters = 4
	errs := make([]error, starters)
	var wg sync.WaitGroup
	for i := range starters {
		wg.Go(func() {
			errs[i] = schema.Migrate(ctx, schema.Options{
				ClickHouse:  schema.ClickHouseOptions{Addr: env.ClickHouseAddr, Database: db},
				PostgresDSN: env.PostgresDSN,
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("starter %d: %v", i, err)
		}
	}
	var versions, dirty, clean uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(version), countIf(dirty = 1), countIf(dirty = 0) FROM "+db+".schema_migrations").Scan(&versions, &dirty, &clean); err != nil {
		t.Fatal(err)
	}
	if versions == 0 || dirty != versions || clean != versions {
		t.Errorf("%d versions applied with %d dirty and %d clean rows: want one of each per version (applied once)", versions, dirty, clean)
	}
}
