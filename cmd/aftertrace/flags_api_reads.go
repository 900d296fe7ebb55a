package main

import (
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/services/allinone"
)

// bindAPIReads registers the flags bounding the query API's reads (per
// request and per tenant) and its own ClickHouse pool.
func bindAPIReads(fs *pflag.FlagSet, c *allinone.Config) {
	r := &c.API.Reads
	fs.DurationVar(&r.QueryTimeout, "api-query-timeout", r.QueryTimeout, "deadline of every API request and of its queries (also sent to ClickHouse as max_execution_time); over it the API answers 504 timeout")
	fs.IntVar(&r.MaxTraceSpans, "api-max-trace-spans", r.MaxTraceSpans, "most spans of one trace answered by GET /api/v1/traces/{traceId} (the first by start time, with truncated: true)")
	fs.IntVar(&r.TenantExpensiveReads, "api-tenant-expensive-reads", r.TenantExpensiveReads, "expensive reads (RCA, searches, timelines, evidence bundles) one tenant may have in flight; more are answered 429 with Retry-After (0: unlimited)")
	fs.IntVar(&r.TenantQueries, "api-tenant-clickhouse-queries", r.TenantQueries, "ClickHouse queries of one tenant's reads at once (more wait); each runs at a priority that falls with the tenant's queries running, so a busy tenant yields to the others (0: half of ClickHouse's max_threads, at least 2)")
	fs.IntVar(&c.APIClickHouseMaxConns, "api-clickhouse-max-conns", c.APIClickHouseMaxConns, "size of the API's own ClickHouse connection pool (apart from --clickhouse-max-conns, the writer's and correlator's)")
}
