package testenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// portAttempts covers the race between picking a free port and the server
// binding it.
const portAttempts = 3

func startClickHouse(ctx context.Context, dir string) (ch *localstack.ClickHouse, err error) {
	for range portAttempts {
		ch, err = localstack.StartClickHouse(ctx, localstack.ClickHouseConfig{Dir: dir, Logger: logger()})
		if !errors.Is(err, localstack.ErrAddrInUse) {
			break
		}
	}
	return ch, err
}

func startPostgres(ctx context.Context, dir string) (pg *localstack.Postgres, err error) {
	for range portAttempts {
		pg, err = localstack.StartPostgres(ctx, localstack.PostgresConfig{
			Dir: dir,
			// No fsync: test data need not survive an OS crash, and it
			// makes CREATE DATABASE several times faster.
			NoSync: true,
			// initdb costs each test package seconds of CPU (7-20 s seen on
			// a busy 2-core box); copying a cached cluster is ~40 MB of I/O.
			InitCacheDir: filepath.Join(os.TempDir(), "aftertrace-testenv-initdb"),
			Logger:       logger(),
		})
		if !errors.Is(err, localstack.ErrAddrInUse) {
			break
		}
	}
	return pg, err
}

// NewClickHouse starts a ClickHouse only this test uses, so it may Stop and
// Start it (fault tests). It is stopped in t.Cleanup. Its default database
// is empty: migrate it with schema.MigrateClickHouse if needed.
func NewClickHouse(t testing.TB) *localstack.ClickHouse {
	t.Helper()
	dir := t.TempDir() // registered first, so removed after the Stop below
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ch, err := startClickHouse(ctx, dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ch.Stop(ctx); err != nil {
			t.Errorf("testenv: stop clickhouse: %v", err)
		}
	})
	return ch
}
