package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// ClickHouseCluster is a replicated, sharded ClickHouse on loopback owned
// by one test: shards × replicas clickhouse-server processes of Debian's
// package and one ZooKeeper, all stopped in t.Cleanup.
type ClickHouseCluster struct {
	Name  string
	ZK    *localstack.ZooKeeper
	Nodes []*localstack.ClickHouse // shard-major: shard 1's replicas first
}

// ClusterName is the remote_servers name of a test cluster.
const ClusterName = "aftertrace"

// NewClickHouseCluster starts ZooKeeper and shards × replicas ClickHouse
// nodes and waits until every one answers.
func NewClickHouseCluster(t testing.TB, shards, replicas int) *ClickHouseCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	zk, err := localstack.StartZooKeeper(ctx, localstack.ZooKeeperConfig{Dir: filepath.Join(dir, "zookeeper")})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c := &ClickHouseCluster{Name: ClusterName, ZK: zk}
	t.Cleanup(func() {
		if t.Failed() { // what the nodes said, before their dirs go
			for _, n := range c.Nodes {
				if n == nil {
					continue
				}
				if b, err := os.ReadFile(filepath.Join(n.Dir(), "log", "server.err.log")); err == nil {
					t.Logf("%s server.err.log (last 3 KiB):\n%s", filepath.Base(n.Dir()), b[max(0, len(b)-3072):])
				}
			}
		}
		stop, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			if n != nil {
				wg.Go(func() { _ = n.Stop(stop) })
			}
		}
		wg.Wait()
		_ = zk.Stop(stop)
	})
	// Every node's ports first: each config names all of them.
	type node struct{ tcp, http, inter int }
	nodes := make([]node, shards*replicas)
	layout := make([][]localstack.HostPort, shards)
	for i := range nodes {
		for _, p := range []*int{&nodes[i].tcp, &nodes[i].http, &nodes[i].inter} {
			if *p, err = localstack.FreePort(); err != nil {
				t.Fatalf("testenv: %v", err)
			}
		}
		layout[i/replicas] = append(layout[i/replicas], localstack.HostPort{Host: "127.0.0.1", Port: nodes[i].tcp})
	}
	c.Nodes = make([]*localstack.ClickHouse, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			c.Nodes[i], errs[i] = localstack.StartClickHouse(ctx, localstack.ClickHouseConfig{
				Dir:     filepath.Join(dir, fmt.Sprintf("ch-s%d-r%d", i/replicas+1, i%replicas+1)),
				TCPPort: n.tcp, HTTPPort: n.http,
				Cluster: &localstack.ClickHouseClusterNode{
					Name: ClusterName, Shards: layout, ZooKeeper: []localstack.HostPort{zk.HostPort()},
					Shard: fmt.Sprint(i/replicas + 1), Replica: fmt.Sprintf("r%d", i%replicas+1), InterserverPort: n.inter,
				},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("testenv: clickhouse node %d: %v", i, err)
		}
	}
	if err := c.settle(ctx); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return c
}

// settle returns once one distributed DDL has run on every node: a node
// whose DDL worker met its first task too early crashed (ClickHouse
// 18.16), and is started again.
func (c *ClickHouseCluster) settle(ctx context.Context) error {
	var last error
	for range 5 {
		for i, n := range c.Nodes {
			select {
			case <-n.Done():
				if err := n.Start(ctx); err != nil {
					return fmt.Errorf("clickhouse node %d: restart: %w", i, err)
				}
			default:
			}
			if err := WaitZooKeeperSession(ctx, n.Addr()); err != nil {
				return fmt.Errorf("clickhouse node %d: %w", i, err)
			}
		}
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{c.Nodes[0].Addr()}, DialTimeout: time.Second})
		if err != nil {
			return err
		}
		last = conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS settle ON CLUSTER `"+c.Name+"`")
		conn.Close()
		if last == nil {
			return nil
		}
		time.Sleep(time.Second) // let a crashed node's exit be seen
	}
	return fmt.Errorf("cluster does not run distributed DDL: %w", last)
}

// WaitZooKeeperSession waits until the ClickHouse node at addr reads
// ZooKeeper. ClickHouse 18.16 may crash (SIGSEGV in
// zkutil::ZooKeeper::createImpl) on a distributed DDL that arrives while
// it is still starting.
func WaitZooKeeperSession(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second, MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no zookeeper session: %v (%w)", err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
