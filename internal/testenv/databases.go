package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/localstack"
	"github.com/aftertrace/aftertrace/internal/schema"
)

// uniqueName is a database name valid unquoted in both servers.
func uniqueName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// newClickHouseDB creates and migrates database name; the drop is registered
// first so a failed migration leaves nothing behind.
func newClickHouseDB(ctx context.Context, t testing.TB, addr, name string) error {
	t.Cleanup(func() {
		if err := clickHouseExec(addr, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testenv: drop clickhouse database %s: %v", name, err)
		}
	})
	if err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: addr, Database: name}); err != nil {
		return fmt.Errorf("migrate clickhouse database %s: %w", name, err)
	}
	return nil
}

func clickHouseExec(addr, query string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, query)
}

// newPostgresDB creates and migrates database name on pg.
func newPostgresDB(ctx context.Context, t testing.TB, pg *localstack.Postgres, name string) error {
	if err := postgresExec(ctx, pg.DSN(), "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create postgres database %s: %w", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions a test forgot to close instead of failing.
		if err := postgresExec(ctx, pg.DSN(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop postgres database %s: %v", name, err)
		}
	})
	if err := schema.MigratePostgres(ctx, pg.DSNFor(name)); err != nil {
		return fmt.Errorf("migrate postgres database %s: %w", name, err)
	}
	return nil
}

func postgresExec(ctx context.Context, dsn, query string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, query)
	return err
}
