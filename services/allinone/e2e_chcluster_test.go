package allinone

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The whole product on a 2 shards × 2 replicas ClickHouse cluster (with
// ZooKeeper): under steady ingest one replica is SIGKILLed and later
// restarted. Every acknowledged trace is stored and readable (0 lost),
// reads of traces replicated before the kill keep answering while the
// replica is down, and the restarted replica catches up with its shard.
// (A trace acknowledged just before the kill may exist only on the
// killed replica — an insert waits for one replica of its shard, the other
// fetches the part asynchronously — and reads as not found until that
// replica is back; the test reads one acknowledged ~1.5 s earlier.)
func TestClickHouseReplicaKilled(t *testing.T) {
	env := testenv.Get(t)
	cluster := testenv.NewClickHouseCluster(t, 2, 2)
	app := startApp(t, env, cluster.Nodes[0].Addr(), appOptions{cfg: func(c *Config) {
		c.ClickHouse.Cluster = cluster.Name
		c.ClickHouse.Database = "aftertrace_e2e"
	}})
	const victim = 1 // shard 1's second replica; the app talks to node 0

	var acked []string
	statuses := map[int]int{}
	readsDown, readsDownOK := 0, 0
	start := time.Now()
	const (
		killAt    = 2 * time.Second
		restartAt = 8 * time.Second
		stopAt    = 14 * time.Second
	)
	phase := 0
	ackedAtKill := 0
	for n := 0; time.Since(start) < stopAt && n < 5000; n++ {
		switch {
		case phase == 0 && time.Since(start) > killAt:
			if err := cluster.Nodes[victim].Kill(); err != nil {
				t.Fatal(err)
			}
			ackedAtKill = len(acked)
			phase++
		case phase == 1 && time.Since(start) > restartAt:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := cluster.Nodes[victim].Start(ctx)
			cancel()
			if err != nil {
				t.Fatalf("restart replica: %v", err)
			}
			phase++
		}
		id := newTraceID()
		code, hdr, body := app.sendTrace(t, makeTrace(id, 3, "chcluster"))
		statuses[code]++
		switch code {
		case http.StatusOK:
			acked = append(acked, hexID(id))
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			if hdr.Get("Retry-After") == "" {
				t.Errorf("%d without Retry-After: %s", code, body)
			}
		default:
			t.Fatalf("answer %d during a replica kill: %s", code, body)
		}
		if phase == 1 && ackedAtKill > 20 && n%5 == 0 { // a read while the replica is down, of a trace acked ~1.5 s before the kill
			readsDown++
			var tr apiTrace
			if code := app.getJSON(t, "/api/v1/traces/"+acked[ackedAtKill/4], &tr); code == http.StatusOK && len(tr.Spans) == 3 {
				readsDownOK++
			} else {
				t.Logf("read while a replica was down: %d, %d spans", code, len(tr.Spans))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("answers %v; %d acknowledged traces; reads while a replica was down: %d of %d answered", statuses, len(acked), readsDownOK, readsDown)
	if len(acked) < 100 {
		t.Fatalf("only %d traces acknowledged", len(acked))
	}
	if readsDown == 0 || readsDownOK != readsDown {
		t.Errorf("reads while a replica was down: %d of %d answered", readsDownOK, readsDown)
	}
	for _, id := range acked {
		app.waitTrace(t, id, 3, time.Minute)
	}

	// The restarted replica catches up: it holds what its shard's other
	// replica holds.
	count := func(node int) uint64 {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cluster.Nodes[node].Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM aftertrace_e2e.spans_local").Scan(&n); err != nil {
			return 0
		}
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for {
		a, b := count(0), count(victim)
		if a > 0 && a == b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d holds %d spans, its shard's other replica %d", victim, b, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
