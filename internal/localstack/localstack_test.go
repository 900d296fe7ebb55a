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
	pg, err := StartPostgres(ctx, PostgresConfig{Dir: filepath.Join(dir, "pg"), NoSync: true})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("PIDS", ch.proc.pid(), pg.proc.pid())
	select {} // wait to be killed
}

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
	ctx := testContext(t)
	dir := t.TempDir()
	pg := startTestPostgres(t, PostgresConfig{Dir: dir})
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
	pg2 := startTestPostgres(t, PostgresConfig{Dir: dir})
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

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestStalePIDFileIsRemoved(t *testing.T) {
	ctx := testContext(t)
	ch := startTestClickHouse(t, ClickHouseConfig{})
	pg := startTestPostgres(t, PostgresConfig{})
	servers := []struct {
		name    string
		pidFile string
		format  string
		stop    func(context.Context) error
		start   func(context.Context) error
	}{
		{"clickhouse", filepath.Join(ch.Dir(), "data", "status"), "PID: %s\nStarted at: 2020-01-01 00:00:00\nRevision: 54412\n", ch.Stop, ch.Start},
		{"postgres", filepath.Join(pg.Dir(), "pgdata", "postmaster.pid"), "%s\n/nonexistent\n1600000000\n5432\n\n127.0.0.1\n  1234  5678\nready\n", pg.Stop, pg.Start},
	}
	pids := []struct {
		name string
		pid  string
	}{
		{"dead pid", strconv.Itoa(deadPID(t))},
		{"live pid of another program", strconv.Itoa(os.Getpid())},
		{"garbage", "not a pid"},
	}
	for _, s := range servers {
		for _, p := range pids {
			t.Run(s.name+"/"+p.name, func(t *testing.T) {
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
	}
}

func TestSecondServerOnSameDirIsRefused(t *testing.T) {
	ctx := testContext(t)
	ch := startTestClickHouse(t, ClickHouseConfig{})
	pg := startTestPostgres(t, PostgresConfig{})
	tests := []struct {
		name  string
		start func() error
		pid   int
	}{
		{"clickhouse", func() error {
			c, err := StartClickHouse(ctx, ClickHouseConfig{Dir: ch.Dir()})
			if err == nil {
				_ = c.Stop(ctx)
			}
			return err
		}, ch.proc.pid()},
		{"postgres", func() error {
			p, err := StartPostgres(ctx, PostgresConfig{Dir: pg.Dir()})
			if err == nil {
				_ = p.Stop(ctx)
			}
			return err
		}, pg.proc.pid()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.start()
			want := fmt.Sprintf("pid %d", tt.pid)
			if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want already running, %s", err, want)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
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
			name: "postgres exits at start, log tail in error",
			start: func(dir string) error {
				_, err := StartPostgres(ctx, PostgresConfig{Dir: dir, NoSync: true, Settings: map[string]string{"shared_buffers": "bogus"}})
				return err
			},
			want: []string{"exited during start", "postgres.log", `invalid value for parameter "shared_buffers"`},
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
