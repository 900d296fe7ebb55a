package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseConfig says where and how to run a private ClickHouse server.
type ClickHouseConfig struct {
	// Dir holds config.xml (rewritten on each start), data/, log/ and
	// clickhouse.out.log (the process's stdout and stderr). Created if
	// missing; existing data is reused.
	Dir  string
	Host string // listen address; default 127.0.0.1
	// TCPPort (native protocol) and HTTPPort; zero picks a free port once,
	// kept for later Starts.
	TCPPort, HTTPPort int
	// Binary is the server command; default clickhouse-server, else
	// "clickhouse server". A binary named "clickhouse" gets the "server" arg.
	Binary       string
	LogLevel     string // ClickHouse logger level; default "warning"
	Logger       *slog.Logger
	StartTimeout time.Duration // default 60s; ctx may cut it shorter
	// Cluster, when set, makes the server a node of a cluster.
	Cluster *ClickHouseClusterNode
}

// ClickHouse is a ClickHouse server child process. Safe for concurrent use.
type ClickHouse struct {
	cfg  ClickHouseConfig
	bin  string
	args []string
	log  *slog.Logger

	mu   sync.Mutex
	proc *process // latest run; nil before the first start
}

// StartClickHouse writes Dir/config.xml, starts the server and waits until it
// answers a native-protocol ping. ctx bounds the start only, not the
// server's life: call Stop.
func StartClickHouse(ctx context.Context, cfg ClickHouseConfig) (*ClickHouse, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("clickhouse: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("clickhouse dir: %w", err)
	}
	cfg.Dir = dir
	if cfg.Host == "" {
		cfg.Host = defaultHost
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warning"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	ports := []*int{&cfg.TCPPort, &cfg.HTTPPort}
	if cfg.Cluster != nil {
		ports = append(ports, &cfg.Cluster.InterserverPort)
	}
	for _, p := range ports {
		if *p == 0 {
			if *p, err = FreePort(); err != nil {
				return nil, fmt.Errorf("clickhouse: %w", err)
			}
		}
	}
	bin, args, err := findClickHouse(cfg.Binary)
	if err != nil {
		return nil, err
	}
	c := &ClickHouse{
		cfg:  cfg,
		bin:  bin,
		args: append(args, "--config-file="+filepath.Join(dir, "config.xml")),
		log:  orDiscard(cfg.Logger).With("component", "clickhouse"),
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Addr is the native-protocol address, host:port.
func (c *ClickHouse) Addr() string {
	return net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.TCPPort))
}

// HTTPAddr is the HTTP interface address, host:port.
func (c *ClickHouse) HTTPAddr() string {
	return net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.HTTPPort))
}

// Dir is the server's private directory (absolute).
func (c *ClickHouse) Dir() string { return c.cfg.Dir }

// Done is closed when the current server process exits, for callers that
// want to notice a crash.
func (c *ClickHouse) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc.done
}

// Files under Dir.
func (c *ClickHouse) dataDir() string    { return filepath.Join(c.cfg.Dir, "data") }
func (c *ClickHouse) logDir() string     { return filepath.Join(c.cfg.Dir, "log") }
func (c *ClickHouse) outLog() string     { return filepath.Join(c.cfg.Dir, "clickhouse.out.log") }
func (c *ClickHouse) serverLog() string  { return filepath.Join(c.logDir(), "server.log") }
func (c *ClickHouse) errLog() string     { return filepath.Join(c.logDir(), "server.err.log") }
func (c *ClickHouse) statusFile() string { return filepath.Join(c.dataDir(), "status") }

// Start starts the server again after Stop, with the same dir and ports.
// It is a no-op while the server runs.
func (c *ClickHouse) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil && !c.proc.exited() {
		return nil
	}
	for _, d := range []string{c.cfg.Dir, c.dataDir(), c.logDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("clickhouse dir: %w", err)
		}
	}
	// ClickHouse locks its status file, so a stale one only matters for
	// telling the user a server already runs here.
	if err := clearStalePIDFile(c.log, "clickhouse", c.statusFile(), c.cfg.Dir); err != nil {
		return err
	}
	for _, port := range []int{c.cfg.TCPPort, c.cfg.HTTPPort} {
		if err := checkPortFree(c.cfg.Host, port); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
	}
	err := writeClickHouseConfig(filepath.Join(c.cfg.Dir, "config.xml"), clickHouseConfigData{
		LogLevel:   c.cfg.LogLevel,
		LogPath:    c.serverLog(),
		ErrLogPath: c.errLog(),
		Host:       c.cfg.Host,
		TCPPort:    c.cfg.TCPPort,
		HTTPPort:   c.cfg.HTTPPort,
		DataDir:    c.dataDir(),
		// Merges run beside the queries: as many merge threads as cores
		// (at least 2), not ClickHouse's 16, so a burst of small parts
		// cannot take every core from the readers.
		MergeThreads: max(2, runtime.NumCPU()),
		Cluster:      c.cfg.Cluster,
	})
	if err != nil {
		return err
	}
	logs := markLogs(c.outLog(), c.errLog())
	began := time.Now()
	p, err := startProcess(processSpec{
		name:     "clickhouse",
		path:     c.bin,
		args:     c.args,
		dir:      c.cfg.Dir,
		logPath:  c.outLog(),
		deathSig: syscall.SIGTERM,
	})
	if err != nil {
		return err
	}
	c.proc = p
	if err := waitReady(ctx, c.cfg.StartTimeout, p, logs, func(ctx context.Context) error {
		if !listensOn(p.pid(), c.cfg.TCPPort) {
			return errNotListening
		}
		return pingClickHouse(ctx, c.Addr())
	}); err != nil {
		return err
	}
	c.log.Info("clickhouse ready", "addr", c.Addr(), "http", c.HTTPAddr(), "pid", p.pid(), "dir", c.cfg.Dir, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// Stop sends SIGTERM and waits; at ctx's deadline it sends SIGKILL.
// Stopping a stopped server is a no-op.
func (c *ClickHouse) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return nil
	}
	err := c.proc.stop(ctx, syscall.SIGTERM)
	c.log.Info("clickhouse stopped", "pid", c.proc.pid(), "err", err)
	return err
}

func pingClickHouse(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{addr},
		DialTimeout:  time.Second,
		MaxOpenConns: 1,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Ping(ctx)
}

// Kill SIGKILLs the server (a crash, for tests) and waits for it to exit.
func (c *ClickHouse) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return nil
	}
	return c.proc.stop(context.Background(), syscall.SIGKILL)
}
