// Package chstore reads and writes telemetry in ClickHouse. The schema is
// portable down to ClickHouse 18.16 (see migrations/clickhouse).
package chstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says how to reach ClickHouse.
type Config struct {
	Addr         string        // host:port of the native protocol
	Database     string        // database holding the tables
	Username     string        //
	Password     string        //
	DialTimeout  time.Duration //
	MaxOpenConns int           //
	QueryTimeout time.Duration // upper bound for API reads (client ctx and server max_execution_time)
	// MaxExecutionTime, if positive, is sent as ClickHouse
	// max_execution_time (whole seconds, at least 1) with every read, also
	// with those whose ctx has no deadline (RCA) or one too short for
	// clickhouse-go to send it (≤ 1 s). 0: only what the ctx deadline
	// implies (clickhouse-go sends deadline + 5 s when over 1 s).
	MaxExecutionTime time.Duration
	// MaxRowsToRead bounds the rows one read may scan (ClickHouse
	// max_rows_to_read); over it a read fails with apperr KindTooLarge.
	// 0: unlimited.
	MaxRowsToRead uint64
	// Cluster, when set, is the ClickHouse cluster the tables live on
	// (schema.ClickHouseOptions.Cluster): reads and inserts use the
	// Distributed tables, inserts wait for the shards
	// (insert_distributed_sync), and partition drops and mutations go to
	// every node's local table. The servers' profile must set
	// distributed_product_mode = 'global' (subqueries on Distributed
	// tables run once, on the initiator; ClickHouse 18.16's protocol takes
	// only numeric settings from a client).
	Cluster string
	// QueryObserver, if set, is shown every read's SQL text and bound
	// arguments before it runs (tests check that user input is only ever
	// bound, never spliced into the SQL).
	QueryObserver func(query string, args []any)
}

// DefaultConfig returns the defaults for a local ClickHouse.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:19000", // the dev stack of `make run`
		Database:     "aftertrace",
		Username:     "default",
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 16,
		QueryTimeout: 30 * time.Second,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("clickhouse addr: must not be empty"))
	}
	if c.Database == "" {
		errs = append(errs, errors.New("clickhouse database: must not be empty"))
	}
	if strings.ContainsAny(c.Cluster, "`\\") {
		errs = append(errs, errors.New("clickhouse cluster: must not contain backquotes or backslashes"))
	}
	if c.MaxOpenConns <= 0 {
		errs = append(errs, errors.New("clickhouse max open conns: must be positive"))
	}
	return errors.Join(errs...)
}

// Store is a handle on the ClickHouse tables.
type Store struct {
	conn driver.Conn
	cfg  Config
	days *tenantDays
}

// Open connects to ClickHouse (lazily: a down server is not an error here).
func Open(cfg Config) (*Store, error) {
	var settings clickhouse.Settings
	if cfg.Cluster != "" {
		settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Settings:        settings,
		Addr:            []string{cfg.Addr},
		Auth:            clickhouse.Auth{Database: cfg.Database, Username: cfg.Username, Password: cfg.Password},
		DialTimeout:     cfg.DialTimeout,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    cfg.MaxOpenConns,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	return &Store{conn: newReadConn(conn, cfg), cfg: cfg, days: newTenantDays()}, nil
}

// Conn exposes the driver connection (tests and tools).
func (s *Store) Conn() driver.Conn { return s.conn }

// Ping checks that ClickHouse answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close releases the connections.
func (s *Store) Close() error { return s.conn.Close() }

// ddlTarget is how an ALTER names table: itself on a single node, every
// node's local table on a cluster. table must come from a closed set.
func (s *Store) ddlTarget(table string) string {
	if s.cfg.Cluster == "" {
		return table
	}
	return table + "_local ON CLUSTER `" + s.cfg.Cluster + "`"
}

// systemTable is a system table of every shard on a cluster (one replica
// each), else of the server.
func (s *Store) systemTable(name string) string {
	if s.cfg.Cluster == "" {
		return "system." + name
	}
	return "cluster('" + s.cfg.Cluster + "', system, " + name + ")"
}
