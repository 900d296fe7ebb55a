// Package schema applies the embedded SQL migrations to ClickHouse and
// Postgres with golang-migrate. Applying is idempotent: an up-to-date
// database is left alone.
package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/aftertrace/aftertrace/migrations"
)

// ClickHouseOptions says where the ClickHouse migrations go.
type ClickHouseOptions struct {
	Addr     string // host:port of the native protocol
	Database string
	Username string
	Password string
	// Cluster, when set, is the ClickHouse cluster (remote_servers) whose
	// every node gets the schema: Replicated tables ON CLUSTER plus
	// Distributed tables of the single-node names (see clusterize).
	Cluster string
}

// MigrateClickHouse creates the database if needed and applies all pending
// ClickHouse migrations.
func MigrateClickHouse(ctx context.Context, o ClickHouseOptions) error {
	if o.Database == "" {
		o.Database = "default"
	}
	if strings.ContainsAny(o.Database+o.Cluster, "`\\") {
		return fmt.Errorf("clickhouse database name %q: must not contain backquotes or backslashes", o.Database)
	}
	admin, err := openCH(o, "default")
	if err != nil {
		return err
	}
	create := "CREATE DATABASE IF NOT EXISTS `" + o.Database + "`"
	if o.Cluster != "" {
		create += " ON CLUSTER `" + o.Cluster + "`"
	}
	err = admin.Exec(ctx, create)
	_ = admin.Close()
	if err != nil {
		return fmt.Errorf("create clickhouse database %q: %w", o.Database, err)
	}
	conn, err := openCH(o, o.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	drv, err := newCHDriver(ctx, conn, o.Cluster, o.Database)
	if err != nil {
		return err
	}
	return apply(ctx, migrations.ClickHouse, "clickhouse", "clickhouse", drv)
}

func openCH(o ClickHouseOptions, db string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{o.Addr},
		Auth:        clickhouse.Auth{Database: db, Username: o.Username, Password: o.Password},
		DialTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", o.Addr, err)
	}
	return conn, nil
}

// MigratePostgres applies all pending Postgres migrations.
func MigratePostgres(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres pool: %w", err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		return fmt.Errorf("postgres migrate driver: %w", err)
	}
	return apply(ctx, migrations.Postgres, "postgres", "pgx5", drv)
}

func apply(ctx context.Context, fsys fs.FS, dir, name string, drv database.Driver) error {
	src, err := iofs.New(fsys, dir)
	if err != nil {
		return fmt.Errorf("%s migrations source: %w", name, err)
	}
	m, err := migrate.NewWithInstance("iofs", src, name, drv)
	if err != nil {
		return fmt.Errorf("%s migrate: %w", name, err)
	}
	defer m.Close()
	done := make(chan struct{})
	defer close(done)
	go func() { // lets a cancelled context stop a long migration
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("%s migrate up: %w", name, err)
	}
	return nil
}
