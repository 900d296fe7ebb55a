package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresConfig says where and how to run a private Postgres server.
type PostgresConfig struct {
	// Dir holds pgdata/ (the cluster, created by initdb on first start and
	// reused after) and the logs postgres.log and initdb.log.
	Dir      string
	Host     string // listen address; default 127.0.0.1
	Port     int    // zero picks a free port once, kept for later Starts
	Database string // created if missing; default "aftertrace"
	User     string // superuser made by initdb, trust auth; default "aftertrace"
	// BinDir holds postgres and initdb; default the /usr/lib/postgresql/<v>/bin
	// matching an existing cluster, else the newest, else PATH.
	BinDir string
	// Settings are extra server settings, passed as -c name=value.
	Settings map[string]string
	// NoSync turns off fsync in initdb and the server: much faster, but an
	// OS crash may corrupt the cluster. For tests.
	NoSync bool
	// InitCacheDir, if set, keeps a pristine copy of the first cluster initdb
	// makes there and copies it for later new clusters: initdb costs seconds
	// of CPU, a copy ~40 MB of I/O. For tests; shared safely between
	// concurrent processes.
	InitCacheDir string
	Logger       *slog.Logger
	StartTimeout time.Duration // default 60s; ctx may cut it shorter
}

// Postgres is a Postgres server child process. Safe for concurrent use.
type Postgres struct {
	cfg    PostgresConfig
	binDir string
	cred   *syscall.Credential // nil: run as ourselves
	log    *slog.Logger

	mu   sync.Mutex
	proc *process // latest run; nil before the first start
}

// StartPostgres initializes the cluster if Dir has none, starts the server,
// waits until it accepts connections and creates cfg.Database if missing.
// ctx bounds the start only, not the server's life: call Stop.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("postgres: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("postgres dir: %w", err)
	}
	cfg.Dir = dir
	if cfg.Host == "" {
		cfg.Host = defaultHost
	}
	if cfg.Database == "" {
		cfg.Database = "aftertrace"
	}
	if cfg.User == "" {
		cfg.User = "aftertrace"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.Port == 0 {
		if cfg.Port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	p := &Postgres{cfg: cfg, log: orDiscard(cfg.Logger).With("component", "postgres")}
	major, _ := os.ReadFile(filepath.Join(p.dataDir(), "PG_VERSION"))
	if p.binDir, err = findPostgresBin(cfg.BinDir, strings.TrimSpace(string(major))); err != nil {
		return nil, err
	}
	if p.cred, err = postgresCredential(); err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// DSN is the URL of cfg.Database, e.g.
// postgres://aftertrace@127.0.0.1:5432/aftertrace?sslmode=disable.
func (p *Postgres) DSN() string { return p.DSNFor(p.cfg.Database) }

// DSNFor is the URL of another database on this server.
func (p *Postgres) DSNFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(p.cfg.User),
		Host:     p.Addr(),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Addr is the server's host:port.
func (p *Postgres) Addr() string {
	return net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port))
}

// Dir is the server's private directory (absolute).
func (p *Postgres) Dir() string { return p.cfg.Dir }

// Done is closed when the current server process exits.
func (p *Postgres) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.done
}

func (p *Postgres) dataDir() string { return filepath.Join(p.cfg.Dir, "pgdata") }
func (p *Postgres) logPath() string { return filepath.Join(p.cfg.Dir, "postgres.log") }

// Start starts the server again after Stop, on the same dir and port.
// It is a no-op while the server runs.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && !p.proc.exited() {
		return nil
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("postgres dir: %w", err)
	}
	if err := ensureTraversable(p.log, p.cfg.Dir, p.cred); err != nil {
		return fmt.Errorf("postgres dir: %w", err)
	}
	if err := clearStalePIDFile(p.log, "postgres", filepath.Join(p.dataDir(), "postmaster.pid"), p.dataDir()); err != nil {
		return err
	}
	if err := checkPortFree(p.cfg.Host, p.cfg.Port); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := p.initdbIfNeeded(ctx); err != nil {
		return err
	}
	if err := ensureOwnedDir(p.dataDir(), p.cred); err != nil {
		return fmt.Errorf("postgres data dir: %w", err)
	}
	logs := markLogs(p.logPath())
	began := time.Now()
	proc, err := startProcess(processSpec{
		name:    "postgres",
		path:    filepath.Join(p.binDir, "postgres"),
		args:    p.serverArgs(),
		dir:     p.cfg.Dir,
		logPath: p.logPath(),
		cred:    p.cred,
		// Fast shutdown: smart shutdown (SIGTERM) would wait for clients.
		deathSig: syscall.SIGINT,
	})
	if err != nil {
		return err
	}
	p.proc = proc
	err = waitReady(ctx, p.cfg.StartTimeout, proc, logs, func(ctx context.Context) error {
		if !listensOn(proc.pid(), p.cfg.Port) {
			return errNotListening
		}
		return p.createDatabase(ctx)
	})
	if err != nil {
		return err
	}
	p.log.Info("postgres ready", "addr", p.Addr(), "pid", proc.pid(), "dir", p.cfg.Dir, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// Stop asks for a fast shutdown (SIGINT: clients are disconnected) and waits;
// at ctx's deadline it sends SIGKILL. Stopping a stopped server is a no-op.
func (p *Postgres) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil || p.proc.exited() {
		return nil
	}
	err := p.proc.stop(ctx, syscall.SIGINT)
	p.log.Info("postgres stopped", "pid", p.proc.pid(), "err", err)
	return err
}

func (p *Postgres) serverArgs() []string {
	settings := map[string]string{
		"listen_addresses": p.cfg.Host,
		"port":             strconv.Itoa(p.cfg.Port),
		// TCP only: socket paths are limited to ~100 bytes, too short for
		// deep temp dirs, and /var/run/postgresql may not be ours.
		"unix_socket_directories": "",
	}
	if p.cfg.NoSync {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range p.cfg.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", p.dataDir()}
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	return args
}

// createDatabase doubles as the readiness probe: it connects to the
// always-present "postgres" database and creates cfg.Database if missing.
func (p *Postgres) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.DSNFor("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", p.cfg.Database).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{p.cfg.Database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: lost a race, fine
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", p.cfg.Database, err)
	}
	p.log.Info("postgres database created", "database", p.cfg.Database)
	return nil
}
