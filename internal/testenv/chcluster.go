package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// ClusterName is the remote_servers name of a test cluster.
const ClusterName = "aftertrace"

// NewClickHouseCluster starts a replicated, sharded ClickHouse on loopback
// owned by one test: ZooKeeper and shards × replicas clickhouse-server
// processes of Debian's packages (localstack.StartClickHouseCluster), all
// stopped in t.Cleanup.
func NewClickHouseCluster(t testing.TB, shards, replicas int) *localstack.ClickHouseCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := localstack.StartClickHouseCluster(ctx, localstack.ClickHouseClusterConfig{
		Dir: t.TempDir(), Name: ClusterName, Shards: shards, Replicas: replicas, Logger: logger(),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() { // what the nodes said, before their dirs go
			for _, n := range c.Nodes {
				if b, err := os.ReadFile(filepath.Join(n.Dir(), "log", "server.err.log")); err == nil {
					t.Logf("%s server.err.log (last 3 KiB):\n%s", filepath.Base(n.Dir()), b[max(0, len(b)-3072):])
				}
			}
		}
		stop, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.Stop(stop)
	})
	return c
}
