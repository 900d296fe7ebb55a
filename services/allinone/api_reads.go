package allinone

import (
	"context"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/rca"
)

// defaultAPIClickHouseMaxConns is the default size of the API's own
// ClickHouse pool.
const defaultAPIClickHouseMaxConns = 8

// apiReads are the API's own ClickHouse store (a pool apart from the
// writer's and the correlator's, so heavy reads cannot starve inserts, nor
// inserts the reads) and the root-cause engine reading through it.
type apiReads struct {
	store *chstore.Store
	rca   *rca.Engine
}

// apiClickHouse is the configuration of the API's store: the ClickHouse
// settings with the API's pool size and query timeout, which it also sends
// as max_execution_time with every read.
func (c Config) apiClickHouse() chstore.Config {
	ch := c.ClickHouse
	ch.MaxOpenConns = c.APIClickHouseMaxConns
	ch.QueryTimeout = c.API.Reads.QueryTimeout
	ch.MaxExecutionTime = c.API.Reads.QueryTimeout
	return ch
}

func (c Config) validateAPIReads() error {
	if c.runs(modAPIReads) && c.APIClickHouseMaxConns <= 0 {
		return fmt.Errorf("api clickhouse max conns: must be positive, got %d", c.APIClickHouseMaxConns)
	}
	return nil
}

// openAPIReads opens the API's store; close releases it.
func (a *App) openAPIReads(ctx context.Context) (*apiReads, error) {
	store, err := chstore.Open(a.cfg.apiClickHouse())
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if r := &a.cfg.API.Reads; r.TenantQueries == 0 {
		// Half of what one query may use (ClickHouse's max_threads, its
		// cores): one tenant's reads leave the server half free. At least
		// two, so a tenant's point read never waits behind its own search.
		r.TenantQueries = 2
		if n, err := store.ServerThreads(ctx); err == nil {
			r.TenantQueries = max(2, n/2)
		} else {
			a.log.Warn("could not read ClickHouse max_threads; two queries per tenant at a time", "err", err)
		}
	}
	return &apiReads{store: store, rca: newRCA(store, a.log.With("service", "rca", "for", "api"))}, nil
}

// close stops the engine's background cache writes, then the pool.
func (r *apiReads) close() {
	if r == nil {
		return
	}
	_ = r.rca.Close()
	_ = r.store.Close()
}

// ClickHouse is the ClickHouse store of the writer and the background
// loops (nil when none runs).
func (a *App) ClickHouse() *chstore.Store { return a.chStore }

// APIClickHouse is the API's own ClickHouse store (nil unless the API
// runs).
func (a *App) APIClickHouse() *chstore.Store {
	if a.reads == nil {
		return nil
	}
	return a.reads.store
}
