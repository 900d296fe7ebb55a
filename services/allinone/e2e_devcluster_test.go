package allinone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// `make run-cluster`'s stack: `run --stack-topology cluster` starts
// ClickHouse 2 shards × 2 replicas with ZooKeeper and three embedded NATS
// servers, migrates the cluster schema and serves; traces sent to it are
// readable and spread over both shards.
func TestDevStackCluster(t *testing.T) {
	env := testenv.Get(t)
	base := freeBase(t)
	app := startApp(t, env, "127.0.0.1:1", appOptions{cfg: func(c *Config) { // the stack replaces the address
		c.StackDir = t.TempDir()
		c.StackTopology = "cluster"
		c.StackClickHouse, c.StackClickHouseHT, c.StackPostgres = base, base+300, base+400
		c.NATSURL = ""
		c.EmbeddedNATS.Port = -1
	}})
	cfg := app.Config()
	if cfg.ClickHouse.Cluster == "" || cfg.EmbeddedNATSNodes != 3 || cfg.Streams.Replicas != 3 {
		t.Fatalf("cluster stack config: clickhouse cluster %q, %d NATS servers, R%d", cfg.ClickHouse.Cluster, cfg.EmbeddedNATSNodes, cfg.Streams.Replicas)
	}
	var ids []string
	for range 20 {
		id := newTraceID()
		if code, _, body := app.sendTrace(t, makeTrace(id, 3, "devcluster")); code != 200 {
			t.Fatalf("send: %d %s", code, body)
		}
		ids = append(ids, hexID(id))
	}
	for _, id := range ids {
		app.waitTrace(t, id, 3, time.Minute)
	}
	for _, node := range []int{0, 2} { // each shard's first replica
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", base+node)}})
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		err = conn.QueryRow(context.Background(), "SELECT count() FROM "+cfg.ClickHouse.Database+".spans_local").Scan(&n)
		conn.Close()
		if err != nil || n == 0 || n == 60 {
			t.Errorf("shard node %d holds %d of 60 spans (%v): want a share", node, n, err)
		}
	}
}

// freeBase finds a port p with p..p+3 (native), p+100..p+103
// (interserver), p+200 (ZooKeeper), p+300..p+303 (HTTP) and p+400
// (Postgres) free.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(20000)
		ok := true
		for _, q := range []int{p, p + 1, p + 2, p + 3, p + 100, p + 101, p + 102, p + 103, p + 200, p + 300, p + 301, p + 302, p + 303, p + 400} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}
