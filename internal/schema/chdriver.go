package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/multistmt"
)

// chDriver is a golang-migrate database.Driver over clickhouse-go's native
// connection. The library's own ClickHouse driver goes through
// database/sql, whose parameterised INSERT breaks the protocol with
// ClickHouse 18.16 (our compatibility floor); native batch inserts work on
// every version.
type chDriver struct {
	conn    driver.Conn
	locked  atomic.Bool
	timeout time.Duration
}

const chMigrationsTable = "schema_migrations"

func newCHDriver(ctx context.Context, conn driver.Conn) (*chDriver, error) {
	d := &chDriver{conn: conn, timeout: 5 * time.Minute}
	err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+chMigrationsTable+
		" (version Int64, dirty UInt8, sequence UInt64) ENGINE = TinyLog")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", chMigrationsTable, err)
	}
	return d, nil
}

func (d *chDriver) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.timeout)
}

// Open is unused: the driver is always built from an open connection.
func (d *chDriver) Open(string) (database.Driver, error) {
	return nil, errors.New("clickhouse migrate driver: use newCHDriver")
}

// Close leaves the connection to its owner.
func (d *chDriver) Close() error { return nil }

// Lock is process-local: ClickHouse has no advisory locks; concurrent
// migrators are serialized by running `aftertrace migrate` once per deploy.
func (d *chDriver) Lock() error {
	if !d.locked.CompareAndSwap(false, true) {
		return database.ErrLocked
	}
	return nil
}

func (d *chDriver) Unlock() error {
	if !d.locked.CompareAndSwap(true, false) {
		return database.ErrNotLocked
	}
	return nil
}

// Run executes each ;-separated statement of a migration.
func (d *chDriver) Run(migration io.Reader) error {
	ctx, cancel := d.ctx()
	defer cancel()
	var runErr error
	err := multistmt.Parse(migration, []byte(";"), 10<<20, func(stmt []byte) bool {
		q := strings.TrimSpace(string(stmt))
		if q == "" || q == ";" || isOnlyComments(q) {
			return true
		}
		if err := d.conn.Exec(ctx, q); err != nil {
			runErr = database.Error{OrigErr: err, Err: "migration failed", Query: stmt}
			return false
		}
		return true
	})
	return errors.Join(err, runErr)
}

func isOnlyComments(q string) bool {
	for _, line := range strings.Split(q, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "--") && line != ";" {
			return false
		}
	}
	return true
}

// SetVersion appends a version row; the newest sequence wins.
func (d *chDriver) SetVersion(version int, dirty bool) error {
	ctx, cancel := d.ctx()
	defer cancel()
	b, err := d.conn.PrepareBatch(ctx, "INSERT INTO "+chMigrationsTable+" (version, dirty, sequence)")
	if err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	var dv uint8
	if dirty {
		dv = 1
	}
	if err := b.Append(int64(version), dv, uint64(time.Now().UnixNano())); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("set migration version: %w", err)
	}
	return nil
}

// Version returns the newest version row, or NilVersion.
func (d *chDriver) Version() (int, bool, error) {
	ctx, cancel := d.ctx()
	defer cancel()
	rows, err := d.conn.Query(ctx, "SELECT version, dirty FROM "+chMigrationsTable+" ORDER BY sequence DESC LIMIT 1")
	if err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return database.NilVersion, false, rows.Err()
	}
	var v int64
	var dirty uint8
	if err := rows.Scan(&v, &dirty); err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	return int(v), dirty == 1, nil
}

// Drop removes every table of the current database.
func (d *chDriver) Drop() error {
	ctx, cancel := d.ctx()
	defer cancel()
	rows, err := d.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if err := d.conn.Exec(ctx, "DROP TABLE IF EXISTS `"+strings.ReplaceAll(n, "`", "")+"`"); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}
