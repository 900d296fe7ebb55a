package localstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ZooKeeperConfig says where to run a private standalone ZooKeeper (the
// coordination service of replicated ClickHouse tables).
type ZooKeeperConfig struct {
	Dir  string // zoo.cfg, data/ and zookeeper.out.log
	Host string // default 127.0.0.1
	Port int    // client port; zero picks a free one
	// Jar is ZooKeeper's jar (its manifest names its dependencies);
	// default Debian's /usr/share/java/zookeeper.jar.
	Jar          string
	Logger       *slog.Logger
	StartTimeout time.Duration // default 60s
}

// ZooKeeper is a ZooKeeper server child process (java).
type ZooKeeper struct {
	cfg ZooKeeperConfig
	log *slog.Logger

	mu   sync.Mutex
	proc *process
}

// DefaultZooKeeperJar is where Debian's zookeeper package puts the server.
const DefaultZooKeeperJar = "/usr/share/java/zookeeper.jar"

// StartZooKeeper writes Dir/zoo.cfg, starts the server and waits until it
// answers "imok".
func StartZooKeeper(ctx context.Context, cfg ZooKeeperConfig) (*ZooKeeper, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("zookeeper: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("zookeeper dir: %w", err)
	}
	cfg.Dir = dir
	if cfg.Host == "" {
		cfg.Host = defaultHost
	}
	if cfg.Jar == "" {
		cfg.Jar = DefaultZooKeeperJar
	}
	if _, err := os.Stat(cfg.Jar); err != nil {
		return nil, fmt.Errorf("zookeeper: %w (install Debian's zookeeper package)", err)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.Port == 0 {
		if cfg.Port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("zookeeper: %w", err)
		}
	}
	z := &ZooKeeper{cfg: cfg, log: orDiscard(cfg.Logger).With("component", "zookeeper")}
	if err := z.Start(ctx); err != nil {
		return nil, err
	}
	return z, nil
}

// Addr is the client address, host:port.
func (z *ZooKeeper) Addr() string {
	return net.JoinHostPort(z.cfg.Host, strconv.Itoa(z.cfg.Port))
}

// HostPort is the client address.
func (z *ZooKeeper) HostPort() HostPort { return HostPort{Host: z.cfg.Host, Port: z.cfg.Port} }

// Start starts the server (again); a no-op while it runs.
func (z *ZooKeeper) Start(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc != nil && !z.proc.exited() {
		return nil
	}
	data := filepath.Join(z.cfg.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("zookeeper dir: %w", err)
	}
	if err := checkPortFree(z.cfg.Host, z.cfg.Port); err != nil {
		return fmt.Errorf("zookeeper: %w", err)
	}
	// Sessions may last up to 40 s (20 ticks): a node slowed by a busy machine
	// keeps its session (ClickHouse 18.16 can crash on DDL while it renews one).
	conf := fmt.Sprintf("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\n"+
		"admin.enableServer=false\nmaxClientCnxns=0\n4lw.commands.whitelist=ruok\n", data, z.cfg.Port, z.cfg.Host)
	cfgPath := filepath.Join(z.cfg.Dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("zookeeper config: %w", err)
	}
	out := filepath.Join(z.cfg.Dir, "zookeeper.out.log")
	logs := markLogs(out)
	p, err := startProcess(processSpec{
		name:     "zookeeper",
		path:     "java",
		args:     []string{"-Xmx256m", "-cp", z.cfg.Jar, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath},
		dir:      z.cfg.Dir,
		logPath:  out,
		deathSig: syscall.SIGTERM,
	})
	if err != nil {
		return err
	}
	z.proc = p
	if err := waitReady(ctx, z.cfg.StartTimeout, p, logs, func(ctx context.Context) error { return ruok(ctx, z.Addr()) }); err != nil {
		return err
	}
	z.log.Info("zookeeper ready", "addr", z.Addr(), "pid", p.pid())
	return nil
}

// Stop sends SIGTERM and waits; at ctx's deadline SIGKILL.
func (z *ZooKeeper) Stop(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc == nil || z.proc.exited() {
		return nil
	}
	return z.proc.stop(ctx, syscall.SIGTERM)
}

// ruok asks ZooKeeper's four-letter "ruok"; a serving server says "imok".
func ruok(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(c, 16))
	if string(b) != "imok" {
		return errNotListening
	}
	return nil
}
