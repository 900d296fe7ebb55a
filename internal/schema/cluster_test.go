package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The single-node migrations, rewritten for a 2 × 2 cluster, create
// every table on every node (Replicated local tables, Distributed tables
// of the same names); a second run finds nothing to do.
func TestMigrateCluster(t *testing.T) {
	c := testenv.NewClickHouseCluster(t, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := schema.ClickHouseOptions{Addr: c.Nodes[0].Addr(), Database: "aftertrace", Cluster: c.Name}
	for run := range 2 {
		if err := schema.MigrateClickHouse(ctx, o); err != nil {
			t.Fatalf("migrate run %d: %v", run+1, err)
		}
	}
	var want uint64
	for i, n := range c.Nodes {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{n.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		var local, dist uint64
		err = conn.QueryRow(ctx, "SELECT countIf(engine LIKE 'Replicated%'), countIf(engine = 'Distributed') FROM system.tables WHERE database = 'aftertrace'").Scan(&local, &dist)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if local == 0 || local != dist {
			t.Errorf("node %d: %d replicated and %d distributed tables", i, local, dist)
		}
		if i == 0 {
			want = local
		} else if local != want {
			t.Errorf("node %d has %d tables, node 0 %d", i, local, want)
		}
	}
}
