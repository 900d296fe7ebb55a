package chstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TenantReads is one tenant's share of ClickHouse for reads: at most n
// of its queries run at once (one root-cause analysis alone fans out to a
// dozen), and each runs at a ClickHouse priority that falls with the
// tenant's queries already running. ClickHouse pauses a query while
// queries of a higher priority (a lower number) run, so a tenant that
// keeps the server busy yields to a tenant that asks now and then.
type TenantReads struct {
	slots   chan struct{}
	running atomic.Int32
}

// maxPriority is the lowest priority a read gets.
const maxPriority = 8

// NewTenantReads allows n concurrent queries (at least 1).
func NewTenantReads(n int) *TenantReads {
	return &TenantReads{slots: make(chan struct{}, max(n, 1))}
}

type tenantReadsKey struct{}

// WithTenantReads makes the reads of ctx take t's slots and priorities.
func WithTenantReads(ctx context.Context, t *TenantReads) context.Context {
	return context.WithValue(ctx, tenantReadsKey{}, t)
}

// enterTenantReads waits for a slot of ctx's TenantReads (none: no wait,
// no priority) and returns the query's priority and the release.
func enterTenantReads(ctx context.Context) (priority int, done func(), err error) {
	t, _ := ctx.Value(tenantReadsKey{}).(*TenantReads)
	if t == nil {
		return 0, func() {}, nil
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, readErr(ctx, "waiting for a read slot of the tenant", ctx.Err())
	}
	n := t.running.Add(1) - 1
	var once sync.Once
	return int(min(1+n, maxPriority)), func() {
		once.Do(func() {
			t.running.Add(-1)
			<-t.slots
		})
	}, nil
}

type threadsKey struct{}

// WithReadThreads runs the reads of ctx on at most n ClickHouse threads
// (max_threads): an expensive read leaves the other cores to the others.
func WithReadThreads(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, threadsKey{}, n)
}

// doneRows releases the query's slot when its rows are closed.
type doneRows struct {
	driver.Rows
	done func()
}

func (r *doneRows) Close() error {
	err := r.Rows.Close()
	r.done()
	return err
}

// errRow is a Row whose query never ran.
type errRow struct{ err error }

func (r errRow) Err() error           { return r.err }
func (r errRow) Scan(...any) error    { return r.err }
func (r errRow) ScanStruct(any) error { return r.err }

// ServerThreads is ClickHouse's max_threads: how many threads one query
// may use, by default the server's cores.
func (s *Store) ServerThreads(ctx context.Context) (int, error) {
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'max_threads'").Scan(&v); err != nil {
		return 0, fmt.Errorf("read max_threads: %w", err)
	}
	// "8", or "auto(8)" on newer servers.
	v = strings.TrimSuffix(strings.TrimPrefix(v, "auto("), ")")
	n, err := strconv.Atoi(strings.Trim(v, "'"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("max_threads %q: not a positive number", v)
	}
	return n, nil
}
