package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
		if err := dropClickHouseDB(addr, name); err != nil {
			t.Errorf("testenv: drop clickhouse database %s: %v", name, err)
		}
	})
	err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: addr, Database: name})
	if err != nil {
		// Seen once in CI: a migration's connection closed under the
		// concurrent DDL of many test databases. Start over once on a
		// clean database; a second failure is reported with both errors.
		t.Logf("testenv: migrate clickhouse database %s failed, retrying once on a clean database: %v", name, err)
		if derr := dropClickHouseDB(addr, name); derr != nil {
			return fmt.Errorf("migrate clickhouse database %s: %w (drop before retry: %v)", name, err, derr)
		}
		if rerr := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: addr, Database: name}); rerr != nil {
			return fmt.Errorf("migrate clickhouse database %s: %w (first attempt: %v)", name, rerr, err)
		}
	}
	return nil
}

// dropClickHouseDB drops database name. A DDL statement whose client went
// away may still be running on the server ("New table appeared in database
// being dropped", code 219): the drop is tried again for a few seconds.
func dropClickHouseDB(addr, name string) error {
	var err error
	for range 10 {
		err = clickHouseExec(addr, "DROP DATABASE IF EXISTS "+name)
		var ex *clickhouse.Exception
		if err == nil || !errors.As(err, &ex) || ex.Code != 219 {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
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
