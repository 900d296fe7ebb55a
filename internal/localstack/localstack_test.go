package localstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// helperEnv makes the test binary act as a parent that starts servers and
// then gets killed, to check the servers die with it.
const helperEnv = "LOCALSTACK_TEST_PARENT_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelperParent(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func runHelperParent(dir string) {
	ctx := context.Background()
	ch, err := StartClickHouse(ctx, ClickHouseConfig{Dir: filepath.Join(dir, "ch")})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	pg, err := StartPostgres(ctx, PostgresConfig{Dir: filepath.Join(dir, "pg"), NoSync: true, InitCacheDir: initCache})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("PIDS", ch.proc.pid(), pg.proc.pid())
	select {} // wait to be killed
}

// initCache is shared with internal/testenv: tests that only need some
// cluster skip initdb's seconds of CPU.
var initCache = filepath.Join(os.TempDir(), "aftertrace-testenv-initdb")

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startTestClickHouse(t *testing.T, cfg ClickHouseConfig) *ClickHouse {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ch, err := StartClickHouse(testContext(t), cfg)
	if err != nil {
		t.Fatalf("StartClickHouse: %v", err)
	}
	t.Cleanup(func() { stopOrFail(t, ch.Stop) })
	return ch
}

func startTestPostgres(t *testing.T, cfg PostgresConfig) *Postgres {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.NoSync = true
	pg, err := StartPostgres(testContext(t), cfg)
	if err != nil {
		t.Fatalf("StartPostgres: %v", err)
	}
	t.Cleanup(func() { stopOrFail(t, pg.Stop) })
	return pg
}

func stopOrFail(t *testing.T, stop func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func chExec(ctx context.Context, addr, query string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, query)
}

func chCount(ctx context.Context, addr, query string) (uint64, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n uint64
	err = conn.QueryRow(ctx, query).Scan(&n)
	return n, err
}

func pgQueryInt(ctx context.Context, dsn, query string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, query).Scan(&n)
	return n, err
}

func pgExec(ctx context.Context, dsn, query string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, query)
	return err
}

func TestClickHouseRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ch := startTestClickHouse(t, ClickHouseConfig{})
	for _, q := range []string{
		"CREATE TABLE default.kept (x UInt64) ENGINE = MergeTree() ORDER BY x",
		"INSERT INTO default.kept SELECT number FROM system.numbers LIMIT 42",
	} {
		if err := chExec(ctx, ch.Addr(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	addr, httpAddr := ch.Addr(), ch.HTTPAddr()

	for range 2 { // the second Stop is a no-op
		if err := ch.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if _, err := chCount(ctx, addr, "SELECT 1"); err == nil {
		t.Fatal("query answered after Stop")
	}
	select {
	case <-ch.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}

	for range 2 { // the second Start is a no-op
		if err := ch.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	if ch.Addr() != addr || ch.HTTPAddr() != httpAddr {
		t.Errorf("addresses changed on restart: %s %s -> %s %s", addr, httpAddr, ch.Addr(), ch.HTTPAddr())
	}
	n, err := chCount(ctx, ch.Addr(), "SELECT count() FROM default.kept")
	if err != nil || n != 42 {
		t.Fatalf("after restart: count = %d, %v; want 42", n, err)
	}
}

func TestPostgresRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	// A private dir, like os.MkdirTemp makes: the postgres OS user must
	// still get in when we run as root.
	dir := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := PostgresConfig{Dir: dir, Settings: map[string]string{"max_connections": "37"}}
	pg := startTestPostgres(t, cfg)
	if n, err := pgQueryInt(ctx, pg.DSN(), "SELECT current_setting('max_connections')::int"); err != nil || n != 37 {
		t.Errorf("max_connections = %d, %v; want 37 from Settings", n, err)
	}
	if !strings.HasPrefix(pg.DSN(), "postgres://aftertrace@127.0.0.1:") || !strings.HasSuffix(pg.DSN(), "/aftertrace?sslmode=disable") {
		t.Errorf("DSN = %s", pg.DSN())
	}
	if err := pgExec(ctx, pg.DSN(), "CREATE TABLE kept AS SELECT generate_series(1, 42) AS x"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := pg.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}

	// Start on the same dir: reuses the cluster and database.
	pg2 := startTestPostgres(t, cfg)
	if n, err := pgQueryInt(ctx, pg2.DSN(), "SELECT count(*) FROM kept"); err != nil || n != 42 {
		t.Fatalf("after restart: count = %d, %v; want 42", n, err)
	}
	if err := pg2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// And Start on the same object, same port.
	if err := pg2.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if n, err := pgQueryInt(ctx, pg2.DSN(), "SELECT count(*) FROM kept"); err != nil || n != 42 {
		t.Fatalf("after Start: count = %d, %v; want 42", n, err)
	}
}

func TestPostgresInitCache(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	cache := t.TempDir()
	first := startTestPostgres(t, PostgresConfig{InitCacheDir: cache})
	ents, err := os.ReadDir(cache)
	if err != nil || len(ents) != 1 {
		t.Fatalf("cache holds %v, %v; want one cluster", ents, err)
	}
	if _, err := os.Stat(filepath.Join(first.Dir(), "initdb.log")); err != nil {
		t.Errorf("first cluster: no initdb.log (%v); want it made by initdb", err)
	}

	second := startTestPostgres(t, PostgresConfig{InitCacheDir: cache, Database: "other"})
	if _, err := os.Stat(filepath.Join(second.Dir(), "initdb.log")); err == nil {
		t.Error("second cluster ran initdb; want a copy of the cache")
	}
	if n, err := pgQueryInt(ctx, second.DSN(), "SELECT 1"); err != nil || n != 1 {
		t.Fatalf("cluster copied from cache: SELECT 1 = %d, %v", n, err)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestPIDFiles shares one server of each kind between its subtests: they
// stop and start it, so they run in order.
func TestPIDFiles(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ch := startTestClickHouse(t, ClickHouseConfig{})
	pg := startTestPostgres(t, PostgresConfig{InitCacheDir: initCache})
	servers := []struct {
		name    string
		pidFile string
		format  string
		stop    func(context.Context) error
		start   func(context.Context) error
		again   func() error // a second start on the same dir
		pid     func() int
	}{
		{
			name:    "clickhouse",
			pidFile: filepath.Join(ch.Dir(), "data", "status"),
			format:  "PID: %s\nStarted at: 2020-01-01 00:00:00\nRevision: 54412\n",
			stop:    ch.Stop,
			start:   ch.Start,
			again: func() error {
				c, err := StartClickHouse(ctx, ClickHouseConfig{Dir: ch.Dir()})
				if err == nil {
					_ = c.Stop(ctx)
				}
				return err
			},
			pid: func() int { return ch.proc.pid() },
		},
		{
			name:    "postgres",
			pidFile: filepath.Join(pg.Dir(), "pgdata", "postmaster.pid"),
			format:  "%s\n/nonexistent\n1600000000\n5432\n\n127.0.0.1\n  1234  5678\nready\n",
			stop:    pg.Stop,
			start:   pg.Start,
			again: func() error {
				p, err := StartPostgres(ctx, PostgresConfig{Dir: pg.Dir()})
				if err == nil {
					_ = p.Stop(ctx)
				}
				return err
			},
			pid: func() int { return pg.proc.pid() },
		},
	}
	stale := []struct {
		name string
		pid  string
	}{
		{"dead pid", strconv.Itoa(deadPID(t))},
		{"live pid of another program", strconv.Itoa(os.Getpid())},
		{"garbage", "not a pid"},
	}
	for _, s := range servers {
		for _, p := range stale {
			t.Run(s.name+"/stale/"+p.name, func(t *testing.T) {
				if err := s.stop(ctx); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(s.pidFile, []byte(fmt.Sprintf(s.format, p.pid)), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := s.start(ctx); err != nil {
					t.Fatalf("start with stale pid file: %v", err)
				}
			})
		}
		t.Run(s.name+"/already running", func(t *testing.T) {
			err := s.again()
			want := fmt.Sprintf("pid %d", s.pid())
			if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want already running, %s", err, want)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name  string
		start func(dir string) error
		is    error
		want  []string
	}{
		{
			name: "clickhouse binary missing",
			start: func(dir string) error {
				_, err := StartClickHouse(ctx, ClickHouseConfig{Dir: dir, Binary: "/nonexistent/clickhouse-server"})
				return err
			},
			want: []string{"/nonexistent/clickhouse-server", "apt-get install clickhouse-server"},
		},
		{
			name: "postgres binaries missing",
			start: func(dir string) error {
				_, err := StartPostgres(ctx, PostgresConfig{Dir: dir, BinDir: "/nonexistent"})
				return err
			},
			want: []string{"/nonexistent", "apt-get install postgresql"},
		},
		{
			name: "clickhouse port busy",
			start: func(dir string) error {
				_, err := StartClickHouse(ctx, ClickHouseConfig{Dir: dir, TCPPort: busyPort})
				return err
			},
			is:   ErrAddrInUse,
			want: []string{strconv.Itoa(busyPort)},
		},
		{
			name: "postgres port busy",
			start: func(dir string) error {
				_, err := StartPostgres(ctx, PostgresConfig{Dir: dir, Port: busyPort, NoSync: true})
				return err
			},
			is:   ErrAddrInUse,
			want: []string{strconv.Itoa(busyPort)},
		},
		{
			name: "postgres exits at start: data dir from another major version",
			start: func(dir string) error {
				if err := os.MkdirAll(filepath.Join(dir, "pgdata"), 0o700); err != nil {
					return err
				}
				for name, content := range map[string]string{"PG_VERSION": "99\n", "postgresql.conf": ""} {
					if err := os.WriteFile(filepath.Join(dir, "pgdata", name), []byte(content), 0o600); err != nil {
						return err
					}
				}
				_, err := StartPostgres(ctx, PostgresConfig{Dir: dir})
				return err
			},
			want: []string{"exited during start", "postgres.log", "initialized by PostgreSQL version 99"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.start(t.TempDir())
			if err == nil {
				t.Fatal("started; want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v; want errors.Is %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v; want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestServersDieWithParent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper: %v", err)
	}
	var chPID, pgPID int
	if _, err := fmt.Sscanf(line, "PIDS %d %d", &chPID, &pgPID); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range []int{chPID, pgPID} {
		for pidAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("server pid %d still alive after its parent was killed", pid)
			}
			time.Sleep(pollInterval)
		}
	}
}

func TestLogTailShowsOnlyThisRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("old run: Address already in use\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := markLogs(path, filepath.Join(t.TempDir(), "missing.log"))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		fmt.Fprintf(f, "line %d\n", i)
	}
	f.Close()

	got := mark.tail()
	if strings.Contains(got, "old run") || mark.mentions("Address already in use") {
		t.Errorf("tail includes an earlier run: %q", got)
	}
	if !strings.Contains(got, "line 29") || strings.Contains(got, "line 9\n") {
		t.Errorf("tail = %q; want the last %d lines", got, tailLines)
	}
}
