// Package bench measures Aftertrace: raw ClickHouse insert throughput, the
// highest end-to-end ingest rate sustained without growing lag, ingest →
// queryable latency, trace-by-id latency and bytes per span on disk; and,
// at scale, query latency over tens of millions of spans.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/localstack"
	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/services/writer"
)

// benchKey is the dev API key of the benchmarked process.
const benchKey = "bench-key-0123456789"

// benchTenant is the dev tenant id the process files data under.
const benchTenant = "dev"

// Stack is a private ClickHouse plus, optionally, an `aftertrace run`
// process on free loopback ports.
type Stack struct {
	Dir string
	CH  *localstack.ClickHouse // the single server, or the cluster's first node
	// Cluster is set on the cluster topology: CH is its node 0, through
	// which the benchmark and the app read and write.
	Cluster *localstack.ClickHouseCluster

	// Set by StartApp.
	GRPCAddr, HTTPAddr, APIAddr, NATSURL string
	OpsAddr                              string // /metrics and /debug/pprof/
	app                                  *exec.Cmd
	appDone                              chan error
	nc                                   *nats.Conn
	js                                   jetstream.JetStream
	log                                  *slog.Logger
}

// Topologies of the benchmarked ClickHouse.
const (
	TopologySingle  = "single"
	TopologyCluster = "cluster" // 2 shards × 2 replicas with ZooKeeper, on this host
)

// StartClickHouse starts a ClickHouse (or, for TopologyCluster, a local
// cluster) under dir.
func StartClickHouse(ctx context.Context, dir string, log *slog.Logger, topology string) (*Stack, error) {
	st := &Stack{Dir: dir, log: log}
	var err error
	if topology == TopologyCluster {
		st.Cluster, err = localstack.StartClickHouseCluster(ctx, localstack.ClickHouseClusterConfig{Dir: filepath.Join(dir, "clickhouse-cluster"), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("start clickhouse cluster: %w", err)
		}
		st.CH = st.Cluster.Nodes[0]
		return st, nil
	}
	for range 3 {
		st.CH, err = localstack.StartClickHouse(ctx, localstack.ClickHouseConfig{Dir: filepath.Join(dir, "clickhouse"), Logger: log})
		if !errors.Is(err, localstack.ErrAddrInUse) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	return st, nil
}

// OpenStore migrates database db and opens it.
func (st *Stack) OpenStore(ctx context.Context, db string, conns int) (*chstore.Store, error) {
	if err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: st.CH.Addr(), Database: db, Username: "default", Cluster: st.clusterName()}); err != nil {
		return nil, err
	}
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.Cluster = st.CH.Addr(), db, conns, st.clusterName()
	return chstore.Open(cfg)
}

// StartApp runs `bin run` against ClickHouse database db with an embedded
// NATS, and waits until the gateway and the API are ready.
func (st *Stack) StartApp(ctx context.Context, bin, db string, extra []string) error {
	ports := make([]int, 5)
	for i := range ports {
		p, err := localstack.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	hp := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	st.GRPCAddr, st.HTTPAddr, st.APIAddr = hp(ports[0]), hp(ports[1]), hp(ports[2])
	st.NATSURL = "nats://" + hp(ports[3])
	st.OpsAddr = hp(ports[4])
	args := append([]string{"run",
		"--log-level", "warn",
		"--clickhouse-addr", st.CH.Addr(), "--clickhouse-database", db,
		"--nats-store-dir", filepath.Join(st.Dir, "nats"), "--nats-host", "127.0.0.1", "--nats-port", strconv.Itoa(ports[3]),
		"--grpc-addr", st.GRPCAddr, "--http-addr", st.HTTPAddr, "--api-addr", st.APIAddr, "--ops-addr", st.OpsAddr,
		"--dev-api-key", benchKey,
	}, extra...)
	if c := st.clusterName(); c != "" {
		args = append(args, "--clickhouse-cluster", c)
	}
	logf, err := os.Create(filepath.Join(st.Dir, "aftertrace.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	st.app, st.appDone = cmd, make(chan error, 1)
	go func() { st.appDone <- cmd.Wait(); logf.Close() }()

	deadline := time.Now().Add(90 * time.Second)
	for _, u := range []string{"http://" + st.HTTPAddr + "/readyz", "http://" + st.APIAddr + "/readyz"} {
		for {
			if ok := httpOK(ctx, u); ok {
				break
			}
			select {
			case err := <-st.appDone:
				st.app = nil
				return fmt.Errorf("aftertrace exited before it was ready (%v); see %s", err, logf.Name())
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("aftertrace not ready after 90s; see %s", logf.Name())
			}
		}
	}
	st.nc, err = nats.Connect(st.NATSURL, nats.Name("aftertrace-bench"))
	if err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	st.js, err = jetstream.New(st.nc)
	return err
}

func httpOK(ctx context.Context, u string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Lag is the writer consumer's backlog in messages: not yet delivered plus
// delivered but not acknowledged.
func (st *Stack) Lag(ctx context.Context) (int64, error) { return st.LagOf(ctx, bus.SignalTraces) }

// LagOf is the backlog of the writer consumers of one signal (both lanes).
func (st *Stack) LagOf(ctx context.Context, sig bus.Signal) (int64, error) {
	var lag int64
	for _, l := range bus.Lanes {
		c, err := st.js.Consumer(ctx, bus.IngestStream, writer.ConsumerName(writer.DefaultConfig().Durable, sig, l))
		if err != nil {
			return 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		lag += int64(info.NumPending) + int64(info.NumAckPending)
	}
	return lag, nil
}

// Stop stops the process and ClickHouse.
func (st *Stack) Stop() {
	if st.nc != nil {
		st.nc.Close()
	}
	if st.app != nil {
		_ = st.app.Process.Signal(syscall.SIGTERM)
		select {
		case <-st.appDone:
		case <-time.After(30 * time.Second):
			_ = st.app.Process.Kill()
			<-st.appDone
		}
	}
	switch {
	case st.Cluster != nil:
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st.Cluster.Stop(ctx)
	case st.CH != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = st.CH.Stop(ctx)
	}
}

// clusterName is the ClickHouse cluster's name, or "" on one server.
func (st *Stack) clusterName() string {
	if st.Cluster == nil {
		return ""
	}
	return st.Cluster.Name
}
