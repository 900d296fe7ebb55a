package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// devStack is the private ClickHouse and Postgres of `make run` (or the
// ClickHouse cluster of `make run-cluster`).
type devStack struct {
	ch      *localstack.ClickHouse
	cluster *localstack.ClickHouseCluster
	pg      *localstack.Postgres
}

// startStack starts ClickHouse and Postgres under cfg.StackDir and points
// cfg at them.
func (a *App) startStack(ctx context.Context) (*devStack, error) {
	cfg := &a.cfg
	dir, err := filepath.Abs(cfg.StackDir)
	if err != nil {
		return nil, fmt.Errorf("stack dir: %w", err)
	}
	st := &devStack{}
	if cfg.StackTopology == "cluster" {
		a.log.Info("starting ClickHouse cluster (2 shards × 2 replicas) and ZooKeeper", "dir", filepath.Join(dir, "clickhouse-cluster"), "ports", fmt.Sprintf("%d-%d", cfg.StackClickHouse, cfg.StackClickHouse+3))
		st.cluster, err = localstack.StartClickHouseCluster(ctx, localstack.ClickHouseClusterConfig{
			Dir:     filepath.Join(dir, "clickhouse-cluster"),
			TCPPort: cfg.StackClickHouse, HTTPPort: cfg.StackClickHouseHT, InterserverPort: cfg.StackClickHouse + 100,
			ZooKeeperPort: cfg.StackClickHouse + 200,
			Logger:        a.log,
		})
		if err != nil {
			return nil, fmt.Errorf("start clickhouse cluster: %w", err)
		}
		cfg.ClickHouse.Cluster = st.cluster.Name
		if cfg.NATSURL == "" {
			cfg.EmbeddedNATSNodes = 3
			cfg.Streams.Replicas = 3
		}
	} else {
		a.log.Info("starting ClickHouse", "dir", filepath.Join(dir, "clickhouse"), "port", cfg.StackClickHouse)
		st.ch, err = localstack.StartClickHouse(ctx, localstack.ClickHouseConfig{
			Dir:      filepath.Join(dir, "clickhouse"),
			TCPPort:  cfg.StackClickHouse,
			HTTPPort: cfg.StackClickHouseHT,
			Logger:   a.log,
		})
		if err != nil {
			return nil, fmt.Errorf("start clickhouse: %w", err)
		}
	}
	a.log.Info("starting Postgres", "dir", filepath.Join(dir, "postgres"), "port", cfg.StackPostgres)
	st.pg, err = localstack.StartPostgres(ctx, localstack.PostgresConfig{
		Dir:    filepath.Join(dir, "postgres"),
		Port:   cfg.StackPostgres,
		Logger: a.log,
	})
	if err != nil {
		st.stop()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if st.cluster != nil {
		cfg.ClickHouse.Addr = st.cluster.Nodes[0].Addr()
	} else {
		cfg.ClickHouse.Addr = st.ch.Addr()
	}
	cfg.PostgresDSN = st.pg.DSN()
	if cfg.NATSURL == "" && cfg.EmbeddedNATS.StoreDir == "" {
		cfg.EmbeddedNATS.StoreDir = filepath.Join(dir, "nats")
	}
	if cfg.DevAPIKey == "" {
		key, err := devKey(filepath.Join(dir, "dev-api-key"), "atk_dev_")
		if err != nil {
			st.stop()
			return nil, err
		}
		cfg.DevAPIKey = key
	}
	if cfg.AdminAPIKey == "" && cfg.runs(TargetAPI) {
		key, err := devKey(filepath.Join(dir, "admin-api-key"), "ata_dev_")
		if err != nil {
			st.stop()
			return nil, err
		}
		cfg.AdminAPIKey = key
	}
	return st, nil
}

func (st *devStack) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st.pg != nil {
		_ = st.pg.Stop(ctx)
	}
	if st.ch != nil {
		_ = st.ch.Stop(ctx)
	}
	if st.cluster != nil {
		st.cluster.Stop(ctx)
	}
}

// devKey reads the dev key (API or admin) kept in path, creating a random
// one starting with prefix on first use so the key stays the same across
// restarts of the dev stack.
func devKey(path, prefix string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 8 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate %s: %w", path, err)
	}
	key := prefix + hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}
