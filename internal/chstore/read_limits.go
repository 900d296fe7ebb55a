package chstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// readConn wraps the driver connection so that every read (Query,
// QueryRow, Select) of every signal's queries goes through one place: it
// carries the read limits as ClickHouse settings and is shown to the
// QueryObserver. Inserts (PrepareBatch) pass through untouched.
//
// The query timeout: with a ctx deadline over 1 s (readCtx) clickhouse-go
// itself sends max_execution_time (deadline + 5 s), so the server stops the
// query as well as the client; Config.MaxExecutionTime sends it with every
// read, so reads without such a deadline (RCA, a tiny timeout) are bounded
// on the server too.
type readConn struct {
	driver.Conn
	settings clickhouse.Settings // nil: none
	observe  func(query string, args []any)
	// retryRemote: on a cluster, a read that failed on a connection to
	// another node (a replica that just died: its pooled connection is
	// dead, and ClickHouse fails over only on new connections) is run once
	// more, and then goes to a live replica.
	retryRemote bool
}

// remoteFailure reports a ClickHouse exception of a connection between
// nodes: NETWORK_ERROR, SOCKET_TIMEOUT, ALL_CONNECTION_TRIES_FAILED,
// POCO_EXCEPTION (connection reset), CANNOT_READ_FROM_SOCKET,
// CANNOT_WRITE_TO_SOCKET, UNEXPECTED_PACKET_FROM_SERVER.
func remoteFailure(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case 209, 210, 279, 1000, 23, 24, 102:
		return true
	}
	return false
}

func newReadConn(conn driver.Conn, cfg Config) *readConn {
	c := &readConn{Conn: conn, observe: cfg.QueryObserver, retryRemote: cfg.Cluster != ""}
	// Integer settings only: ClickHouse 18.16 speaks the old settings
	// encoding, which has no strings.
	if cfg.MaxRowsToRead > 0 {
		c.settings = clickhouse.Settings{"max_rows_to_read": int(min(cfg.MaxRowsToRead, 1<<62))}
	}
	if cfg.MaxExecutionTime > 0 {
		if c.settings == nil {
			c.settings = clickhouse.Settings{}
		}
		c.settings["max_execution_time"] = maxExecutionSeconds(cfg.MaxExecutionTime)
	}
	return c
}

// maxExecutionSeconds is d as ClickHouse max_execution_time: whole
// seconds, rounded up, at least 1 (0 would mean no limit).
func maxExecutionSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// prepare adds the read settings to ctx (replacing any ClickHouse settings
// the caller put there: chstore's queries set none), takes a slot of the
// tenant's reads (TenantReads, if ctx has one) and shows the query. done
// gives the slot back once the query's rows are read.
func (c *readConn) prepare(ctx context.Context, query string, args []any) (_ context.Context, done func(), err error) {
	if c.observe != nil {
		c.observe(query, args)
	}
	priority, done, err := enterTenantReads(ctx)
	if err != nil {
		return ctx, nil, err
	}
	threads, _ := ctx.Value(threadsKey{}).(int)
	if len(c.settings) == 0 && priority == 0 && threads == 0 {
		return ctx, done, nil
	}
	set := maps.Clone(c.settings)
	if set == nil {
		set = clickhouse.Settings{}
	}
	if priority > 0 {
		set["priority"] = priority
	}
	if threads > 0 {
		set["max_threads"] = threads
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(set)), done, nil
}

func (c *readConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	ctx, done, err := c.prepare(ctx, query, args)
	if err != nil {
		return nil, err
	}
	rows, err := c.Conn.Query(ctx, query, args...)
	if err != nil && c.retryRemote && remoteFailure(err) {
		rows, err = c.Conn.Query(ctx, query, args...)
	}
	if err != nil {
		done()
		return nil, err
	}
	return &doneRows{Rows: rows, done: done}, nil
}

func (c *readConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	ctx, done, err := c.prepare(ctx, query, args)
	if err != nil {
		return errRow{err}
	}
	defer done()
	row := c.Conn.QueryRow(ctx, query, args...)
	if c.retryRemote && remoteFailure(row.Err()) {
		row = c.Conn.QueryRow(ctx, query, args...)
	}
	return row
}

func (c *readConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	ctx, done, err := c.prepare(ctx, query, args)
	if err != nil {
		return err
	}
	defer done()
	return c.Conn.Select(ctx, dest, query, args...)
}

// ClickHouse exception codes of a read over a limit.
const (
	chTooManyRows        = 158 // TOO_MANY_ROWS (max_rows_to_read, max_result_rows)
	chTimeoutExceeded    = 159 // TIMEOUT_EXCEEDED (max_execution_time)
	chTooManyBytes       = 307 // TOO_MANY_BYTES
	chTooManyRowsOrBytes = 396 // TOO_MANY_ROWS_OR_BYTES (newer servers)
)

// limitErr classifies a ClickHouse error of a read over a limit: too many
// rows is the client's to fix (413: narrow the query), a server-side
// timeout is a 504. Other errors give nil.
func limitErr(op string, err error) error {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return nil
	}
	cause := fmt.Errorf("%s: %w", op, err)
	switch ex.Code {
	case chTooManyRows, chTooManyBytes, chTooManyRowsOrBytes:
		msg := "the query would read more rows than allowed"
		if m := maxRE.FindStringSubmatch(ex.Message); m != nil {
			msg = "the query would read more than " + m[1] + " rows"
		}
		return apperr.Wrap(apperr.KindTooLarge, cause, msg+"; narrow the time range or add filters")
	case chTimeoutExceeded:
		return apperr.Wrap(apperr.KindTimeout, cause, queryTimeoutMsg)
	}
	return nil
}

// queryTimeoutMsg is the public message of a read over the query timeout,
// whether the server (max_execution_time) or the client (deadline) stopped
// it.
const queryTimeoutMsg = "the query took longer than the query timeout; narrow the time range or add filters"

// maxRE finds the limit in ClickHouse's message "Limit for rows to read
// exceeded: 1001 rows read (or to read), maximum: 1000".
var maxRE = regexp.MustCompile(`maximum: ([0-9]+)`)
