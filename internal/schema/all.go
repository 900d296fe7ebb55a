package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/lease"
)

// Options are both databases of a deployment.
type Options struct {
	ClickHouse  ClickHouseOptions // Addr "": ClickHouse is not migrated
	PostgresDSN string            // "": Postgres is not migrated, and nothing is locked
}

// Migrate applies the ClickHouse and then the Postgres migrations once per
// deployment: with a Postgres DSN it holds a Postgres advisory lock (one per
// ClickHouse database) for the whole run, so several processes started
// together (replicas of a Deployment, a migration job beside them) apply
// each migration once and the others wait, then find nothing to do.
// golang-migrate's own lock covers Postgres only; ClickHouse has none.
func Migrate(ctx context.Context, o Options) error {
	if o.PostgresDSN != "" {
		release, err := lockDeployment(ctx, o.PostgresDSN, "aftertrace-migrate/"+o.ClickHouse.Addr+"/"+o.ClickHouse.Database)
		if err != nil {
			return err
		}
		defer release()
	}
	if o.ClickHouse.Addr != "" {
		if err := MigrateClickHouse(ctx, o.ClickHouse); err != nil {
			return fmt.Errorf("migrate clickhouse: %w", err)
		}
	}
	if o.PostgresDSN != "" {
		if err := MigratePostgres(ctx, o.PostgresDSN); err != nil {
			return fmt.Errorf("migrate postgres: %w", err)
		}
	}
	return nil
}

// lockDeployment waits (bounded by ctx) for the session-level advisory lock
// named name on a connection of its own, and returns its release. A
// process that dies holding it loses its session, and so the lock.
func lockDeployment(ctx context.Context, dsn, name string) (release func(), err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("migration lock: connect postgres: %w", err)
	}
	key := lease.Key(name)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		// Closing the session releases the lock too; unlock first so the
		// next process need not wait for the close to reach the server.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
		_ = conn.Close(context.WithoutCancel(ctx))
	}, nil
}
