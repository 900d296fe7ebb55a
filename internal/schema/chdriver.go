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

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// chDriver is a golang-migrate database.Driver over clickhouse-go's native
// connection. The library's own ClickHouse driver goes through
// database/sql, whose parameterised INSERT breaks the protocol with
// ClickHouse 18.16 (our compatibility floor); native batch inserts work on
// every version.
type chDriver struct {
	conn    driver.Conn
	cluster string // "": single node
	db      string
	locked  atomic.Bool
	timeout time.Duration
}

const chMigrationsTable = "schema_migrations"

func newCHDriver(ctx context.Context, conn driver.Conn, cluster, db string) (*chDriver, error) {
	d := &chDriver{conn: conn, cluster: cluster, db: db, timeout: 5 * time.Minute}
	stmts, err := d.statements("CREATE TABLE IF NOT EXISTS " + chMigrationsTable +
		" (version Int64, dirty UInt8, sequence UInt64) ENGINE = MergeTree() ORDER BY sequence")
	if err != nil {
		return nil, err
	}
	for _, stmt := range stmts {
		if err := d.exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create %s: %w", chMigrationsTable, err)
		}
	}
	return d, nil
}

// statements is what runs for one statement of a migration: itself on a
// single node, its cluster forms on a cluster.
func (d *chDriver) statements(stmt string) ([]string, error) {
	if d.cluster == "" {
		return []string{stmt}, nil
	}
	return clusterize(stmt, d.cluster, d.db)
}

func (d *chDriver) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.timeout)
}

// bookkeepingTimeout bounds the version reads and writes, which are tiny:
// a hang there fails fast instead of stalling a deploy.
const bookkeepingTimeout = 30 * time.Second

func (d *chDriver) shortCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), bookkeepingTimeout)
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

// Run executes each ;-separated statement of a migration. Comments are
// removed first so a semicolon inside one does not split a statement.
func (d *chDriver) Run(migration io.Reader) error {
	ctx, cancel := d.ctx()
	defer cancel()
	src, err := io.ReadAll(io.LimitReader(migration, 10<<20))
	if err != nil {
		return fmt.Errorf("read migration: %w", err)
	}
	for _, one := range splitStatements(string(src)) {
		stmts, err := d.statements(one)
		if err != nil {
			return database.Error{OrigErr: err, Err: "migration failed", Query: []byte(one)}
		}
		for _, stmt := range stmts {
			if err := d.exec(ctx, stmt); err != nil {
				return database.Error{OrigErr: err, Err: "migration failed", Query: []byte(stmt)}
			}
		}
	}
	return nil
}

// exec runs one statement, and again after a pause when it failed in a
// way that passes (apperr.Retryable: a connection closed under it, a
// transient server code): the pool dials a new connection, and the
// statements are idempotent (IF NOT EXISTS). Seen in tests under load:
// "use of closed network connection" on a fresh connection.
func (d *chDriver) exec(ctx context.Context, stmt string) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		if err = d.conn.Exec(ctx, stmt); err == nil || !apperr.Retryable(err) {
			return err
		}
	}
	return err
}

// splitStatements drops -- and /* */ comments outside string literals and
// splits the rest on semicolons outside string literals.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(sql) && sql[j] != c {
				if sql[j] == '\\' {
					j++
				}
				j++
			}
			end := min(j+1, len(sql))
			cur.WriteString(sql[i:end])
			i = end - 1
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += end + 3
			}
			cur.WriteByte(' ')
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// SetVersion appends a version row; the newest sequence wins.
func (d *chDriver) SetVersion(version int, dirty bool) error {
	ctx, cancel := d.shortCtx()
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
	ctx, cancel := d.shortCtx()
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
