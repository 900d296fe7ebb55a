package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseClusterConfig says where to run a replicated, sharded
// ClickHouse: Shards × Replicas clickhouse-server processes and one
// ZooKeeper, on one host.
type ClickHouseClusterConfig struct {
	Dir              string // zookeeper/ and ch-s<shard>-r<replica>/ below it
	Name             string // remote_servers name; default "aftertrace"
	Shards, Replicas int    // default 2 × 2
	Host             string // default 127.0.0.1
	// Node i (shard-major) listens on TCPPort+i, HTTPPort+i and
	// InterserverPort+i; zero ports pick free ones.
	TCPPort, HTTPPort, InterserverPort int
	ZooKeeperPort                      int // zero picks a free one
	Logger                             *slog.Logger
}

// ClickHouseCluster is a running local cluster.
type ClickHouseCluster struct {
	Name  string
	ZK    *ZooKeeper
	Nodes []*ClickHouse // shard-major: shard 1's replicas first
}

// StartClickHouseCluster starts ZooKeeper and every node, and returns once
// a distributed DDL runs on all of them.
func StartClickHouseCluster(ctx context.Context, cfg ClickHouseClusterConfig) (_ *ClickHouseCluster, err error) {
	if cfg.Name == "" {
		cfg.Name = "aftertrace"
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 2
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 2
	}
	if cfg.Host == "" {
		cfg.Host = defaultHost
	}
	zk, err := StartZooKeeper(ctx, ZooKeeperConfig{Dir: filepath.Join(cfg.Dir, "zookeeper"), Host: cfg.Host, Port: cfg.ZooKeeperPort, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c := &ClickHouseCluster{Name: cfg.Name, ZK: zk}
	defer func() {
		if err != nil {
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			c.Stop(stop)
		}
	}()
	n := cfg.Shards * cfg.Replicas
	type ports struct{ tcp, http, inter int }
	ps := make([]ports, n)
	layout := make([][]HostPort, cfg.Shards)
	for i := range ps {
		for _, p := range []struct {
			dst  *int
			base int
		}{{&ps[i].tcp, cfg.TCPPort}, {&ps[i].http, cfg.HTTPPort}, {&ps[i].inter, cfg.InterserverPort}} {
			if p.base > 0 {
				*p.dst = p.base + i
			} else if *p.dst, err = FreePort(); err != nil {
				return nil, err
			}
		}
		layout[i/cfg.Replicas] = append(layout[i/cfg.Replicas], HostPort{Host: cfg.Host, Port: ps[i].tcp})
	}
	c.Nodes = make([]*ClickHouse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range ps {
		shard, replica := i/cfg.Replicas+1, i%cfg.Replicas+1
		wg.Go(func() {
			c.Nodes[i], errs[i] = StartClickHouse(ctx, ClickHouseConfig{
				Dir:  filepath.Join(cfg.Dir, fmt.Sprintf("ch-s%d-r%d", shard, replica)),
				Host: cfg.Host, TCPPort: p.tcp, HTTPPort: p.http, Logger: cfg.Logger,
				Cluster: &ClickHouseClusterNode{
					Name: cfg.Name, Shards: layout, ZooKeeper: []HostPort{zk.HostPort()},
					Shard: fmt.Sprint(shard), Replica: fmt.Sprintf("r%d", replica), InterserverPort: p.inter,
				},
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.settle(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops every node, then ZooKeeper.
func (c *ClickHouseCluster) Stop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n != nil {
			wg.Go(func() { _ = n.Stop(ctx) })
		}
	}
	wg.Wait()
	_ = c.ZK.Stop(ctx)
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
		select { // let a crashed node's exit be seen
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
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
