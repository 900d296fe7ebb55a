package testenv_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// Main also checks for leaked goroutines, after stopping the shared servers.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func chQueryUint(ctx context.Context, addr, query string, args ...any) (uint64, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n uint64
	err = conn.QueryRow(ctx, query, args...).Scan(&n)
	return n, err
}

func pgQueryBool(ctx context.Context, dsn, query string, args ...any) (bool, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var b bool
	err = conn.QueryRow(ctx, query, args...).Scan(&b)
	return b, err
}

func chTableExists(ctx context.Context, addr, db, table string) (bool, error) {
	n, err := chQueryUint(ctx, addr, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, table)
	return n == 1, err
}

func chDatabaseExists(ctx context.Context, addr, db string) (bool, error) {
	n, err := chQueryUint(ctx, addr, "SELECT count() FROM system.databases WHERE name = ?", db)
	return n == 1, err
}

func TestGetReturnsMigratedDatabases(t *testing.T) {
	ctx := testContext(t)
	env := testenv.Get(t)

	tests := []struct {
		name  string
		check func() (bool, error)
	}{
		{"clickhouse spans", func() (bool, error) {
			return chTableExists(ctx, env.ClickHouseAddr, env.ClickHouseDB, "spans")
		}},
		{"postgres tenants", func() (bool, error) {
			return pgQueryBool(ctx, env.PostgresDSN, "SELECT to_regclass('tenants') IS NOT NULL")
		}},
		{"nats jetstream", func() (bool, error) {
			nc, err := nats.Connect(env.NATSURL)
			if err != nil {
				return false, err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return false, err
			}
			_, err = js.AccountInfo(ctx)
			return err == nil, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := tt.check()
			if err != nil || !ok {
				t.Fatalf("= %v, %v; want true", ok, err)
			}
		})
	}
}

func TestGetDatabasesAreFreshAndDropped(t *testing.T) {
	ctx := testContext(t)
	var first, second *testenv.Env
	t.Run("use", func(t *testing.T) {
		first, second = testenv.Get(t), testenv.Get(t)
		if first.ClickHouseDB == second.ClickHouseDB || first.PostgresDSN == second.PostgresDSN || first.NATSURL == second.NATSURL {
			t.Fatalf("two Gets share state: %+v %+v", first, second)
		}
	})
	// The subtest's cleanup has run: its databases must be gone.
	for _, env := range []*testenv.Env{first, second} {
		if ok, err := chDatabaseExists(ctx, env.ClickHouseAddr, env.ClickHouseDB); err != nil || ok {
			t.Errorf("clickhouse database %s exists = %v, %v after cleanup", env.ClickHouseDB, ok, err)
		}
		if _, err := pgx.Connect(ctx, env.PostgresDSN); err == nil {
			t.Errorf("postgres database %s still accepts connections after cleanup", env.PostgresDSN)
		}
	}
}

func TestNewClickHouseRestartKeepsData(t *testing.T) {
	ctx := testContext(t)
	ch := testenv.NewClickHouse(t)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.Addr()}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE TABLE default.kept (x UInt64) ENGINE = MergeTree() ORDER BY x",
		"INSERT INTO default.kept SELECT number FROM system.numbers LIMIT 7",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	if err := ch.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping answered while stopped")
	}
	if err := ch.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The same client recovers once the server is back: that is what fault
	// tests rely on.
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM default.kept").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after restart: count = %d, %v; want 7", n, err)
	}
}

func TestNATSRestartKeepsStream(t *testing.T) {
	ctx := testContext(t)
	srv := testenv.NewNATS(t)
	url := srv.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "kept.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}

	srv.Restart(t)
	if srv.URL() != url {
		t.Errorf("URL changed on restart: %s -> %s", url, srv.URL())
	}

	// The client reconnects on its own; poll until the stream answers. Each
	// try gets its own deadline: a request lost in the restart never gets
	// a reply.
	var msgs uint64
	for {
		tryCtx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := js.Stream(tryCtx, "KEPT")
		cancel()
		if err == nil {
			msgs = info.CachedInfo().State.Msgs
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream not back after restart: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if msgs != 3 {
		t.Fatalf("after restart: %d messages; want 3", msgs)
	}

	srv.Shutdown()
	srv.Shutdown() // idempotent
}
