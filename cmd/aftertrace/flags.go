package main

import (
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/services/allinone"
)

// bindClickHouse registers the ClickHouse connection flags.
func bindClickHouse(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.ClickHouse.Addr, "clickhouse-addr", c.ClickHouse.Addr, "ClickHouse native protocol address host:port")
	fs.StringVar(&c.ClickHouse.Database, "clickhouse-database", c.ClickHouse.Database, "ClickHouse database")
	fs.StringVar(&c.ClickHouse.Cluster, "clickhouse-cluster", c.ClickHouse.Cluster, "ClickHouse cluster (remote_servers name): migrations create Replicated tables ON CLUSTER plus Distributed tables; empty: one server")
	fs.StringVar(&c.ClickHouse.Username, "clickhouse-user", c.ClickHouse.Username, "ClickHouse user")
	fs.StringVar(&c.ClickHouse.Password, "clickhouse-password", c.ClickHouse.Password, "ClickHouse password")
	fs.IntVar(&c.ClickHouse.MaxOpenConns, "clickhouse-max-conns", c.ClickHouse.MaxOpenConns, "ClickHouse connection pool size")
	fs.DurationVar(&c.ClickHouse.QueryTimeout, "clickhouse-query-timeout", c.ClickHouse.QueryTimeout, "upper bound of the writer's and correlator's reads (API reads: --api-query-timeout)")
	fs.Uint64Var(&c.ClickHouse.MaxRowsToRead, "clickhouse-max-rows-to-read", c.ClickHouse.MaxRowsToRead, "rows one API read may scan (ClickHouse max_rows_to_read); over it the API answers 413 (0: unlimited)")
}

// bindNATS registers the queue flags.
func bindNATS(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "external NATS URL; empty starts an embedded NATS JetStream server")
	fs.StringVar(&c.EmbeddedNATS.StoreDir, "nats-store-dir", c.EmbeddedNATS.StoreDir, "JetStream store of the embedded server")
	fs.StringVar(&c.EmbeddedNATS.Host, "nats-host", c.EmbeddedNATS.Host, "listen host of the embedded server")
	fs.IntVar(&c.EmbeddedNATS.Port, "nats-port", c.EmbeddedNATS.Port, "listen port of the embedded server (-1: any free port)")
	fs.IntVar(&c.EmbeddedNATSNodes, "nats-embedded-nodes", c.EmbeddedNATSNodes, "embedded NATS servers: 1, or at least 3 for a JetStream cluster in this process (client ports nats-port+i, route ports nats-port+2000+i)")
	fs.BoolVar(&c.EmbeddedNATS.SyncAlways, "nats-sync", c.EmbeddedNATS.SyncAlways, "embedded server: fsync every write before acknowledging it (an acknowledged record survives power loss; default: fsync every --nats-sync-interval, survives a crash of the process)")
	fs.DurationVar(&c.EmbeddedNATS.SyncInterval, "nats-sync-interval", c.EmbeddedNATS.SyncInterval, "embedded server: fsync interval without --nats-sync (0: the NATS default, 2m)")
	fs.Int32Var(&c.EmbeddedNATS.MaxPayload, "nats-max-payload", c.EmbeddedNATS.MaxPayload, "max message size of the embedded server")
	fs.IntVar(&c.Publisher.MaxMessageBytes, "nats-max-message-bytes", c.Publisher.MaxMessageBytes, "requests are split into messages of at most this size")
	fs.DurationVar(&c.Publisher.AckTimeout, "nats-ack-timeout", c.Publisher.AckTimeout, "how long the gateway waits for JetStream to persist a request")
	fs.Int64Var(&c.Streams.MaxBytes, "nats-stream-max-bytes", c.Streams.MaxBytes, "cap on queued, unwritten data (-1 unlimited); when full the gateway answers 503")
	fs.IntVar(&c.Streams.Replicas, "nats-replicas", c.Streams.Replicas, "stream replicas (cluster only)")
}

// bindGateway registers the gateway flags.
func bindGateway(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.Gateway.GRPCAddr, "grpc-addr", c.Gateway.GRPCAddr, "OTLP/gRPC listen address")
	fs.StringVar(&c.Gateway.HTTPAddr, "http-addr", c.Gateway.HTTPAddr, "OTLP/HTTP listen address")
	fs.Int64Var(&c.Gateway.MaxRequestBytes, "max-request-bytes", c.Gateway.MaxRequestBytes, "largest OTLP request, after decompression")
	fs.IntVar(&c.Gateway.MaxConcurrentRequests, "max-concurrent-requests", c.Gateway.MaxConcurrentRequests, "OTLP requests processed at once; more are shed with 503")
	fs.DurationVar(&c.Gateway.ShutdownTimeout, "gateway-shutdown-timeout", c.Gateway.ShutdownTimeout, "drain deadline")
	fs.Int64Var(&c.Gateway.MaxInflightBytes, "max-inflight-bytes", c.Gateway.MaxInflightBytes, "bytes of OTLP requests decoded and published at once; more are shed with 503")
	fs.Float64Var(&c.Gateway.TenantLimit.RecordsPerSecond, "tenant-records-per-second", c.Gateway.TenantLimit.RecordsPerSecond, "default per-tenant ingest rate in records (spans, log records, points) per second; over it 429 (0: unlimited; Postgres tenant_limits overrides)")
	fs.IntVar(&c.Gateway.TenantLimit.RecordsBurst, "tenant-records-burst", c.Gateway.TenantLimit.RecordsBurst, "default per-tenant burst of records (0: one second of the rate)")
	fs.Float64Var(&c.Gateway.TenantLimit.BytesPerSecond, "tenant-bytes-per-second", c.Gateway.TenantLimit.BytesPerSecond, "default per-tenant ingest rate in decompressed request bytes per second (0: unlimited)")
	fs.IntVar(&c.Gateway.TenantLimit.BytesBurst, "tenant-bytes-burst", c.Gateway.TenantLimit.BytesBurst, "default per-tenant burst of bytes (0: one second of the rate)")
	fs.DurationVar(&c.Gateway.TenantLimit.MaxAge, "ingest-max-age", c.Gateway.TenantLimit.MaxAge, "reject records older than this (0: the tenant's longest retention policy or default; replaying old datasets needs a large value); tenant_limits.max_record_age_seconds overrides")
	fs.DurationVar(&c.Gateway.TenantLimit.MaxFuture, "ingest-max-future", c.Gateway.TenantLimit.MaxFuture, "reject records more than this ahead of the gateway's clock (0: no bound); tenant_limits.max_future_seconds overrides")
	fs.Float64Var(&c.Gateway.TenantLimit.ShareRecordsPerSecond, "tenant-share-records-per-second", c.Gateway.TenantLimit.ShareRecordsPerSecond, "a tenant's fair share of the ingest rate: records beyond it travel in the bulk lane, so a tenant's flood never queues ahead of the others (0: one lane)")
	fs.DurationVar(&c.Gateway.LateAfter, "ingest-late-after", c.Gateway.LateAfter, "requests with a record older than this travel in the bulk lane (backfills never delay live data; 0: never)")
	fs.DurationVar(&c.Gateway.TenantLimitsRefresh, "tenant-limits-refresh", c.Gateway.TenantLimitsRefresh, "how often per-tenant limits are re-read from Postgres")
}

// bindWriter registers the writer flags.
func bindWriter(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.Writer.OpsAddr, "writer-ops-addr", c.Writer.OpsAddr, "writer /healthz /readyz /metrics address when run alone")
	fs.IntVar(&c.Writer.Workers, "writer-workers", c.Writer.Workers, "concurrent inserts per signal (one puller fills the next batch meanwhile)")
	fs.IntVar(&c.Writer.BatchRows, "writer-batch-rows", c.Writer.BatchRows, "rows per ClickHouse insert")
	fs.DurationVar(&c.Writer.FlushInterval, "writer-flush-interval", c.Writer.FlushInterval, "longest wait before a partial batch is inserted")
	fs.DurationVar(&c.Writer.BulkFlushInterval, "writer-bulk-flush-interval", c.Writer.BulkFlushInterval, "longest wait before a partial batch of the bulk lane (beyond a tenant's share, late records) is inserted")
	fs.IntVar(&c.Writer.MaxDeliver, "writer-max-deliver", c.Writer.MaxDeliver, "deliveries of an undecodable message before it is dead-lettered")
	fs.DurationVar(&c.Writer.AckWait, "writer-ack-wait", c.Writer.AckWait, "redelivery delay of unacknowledged messages")
}

// bindAPI registers the query API flags.
func bindAPI(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.API.Addr, "api-addr", c.API.Addr, "query API listen address")
	fs.StringVar(&c.AdminAPIKey, "admin-api-key", c.AdminAPIKey, "admin key opening /admin/v1 (tenants, API keys; needs Postgres); empty: admin API off")
	bindAPIReads(fs, c)
}

// bindCommon registers flags every serving command has.
func bindCommon(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.DevAPIKey, "dev-api-key", c.DevAPIKey, "API key of the dev tenant")
	fs.StringVar(&c.PostgresDSN, "postgres-dsn", c.PostgresDSN, "Postgres connection string")
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "apply migrations at start (once per deployment: processes started together wait on a Postgres lock)")
	fs.DurationVar(&c.LeaseInterval, "lease-interval", c.LeaseInterval, "background loops (retention, capture, bundles, anomalies) run in one process of the deployment at a time; another takes over within about twice this long after it dies")
	fs.StringVar(&c.TLS.CertFile, "tls-cert-file", c.TLS.CertFile, "PEM certificate: serve the OTLP (gRPC, HTTP) and API listeners over TLS")
	fs.StringVar(&c.TLS.KeyFile, "tls-key-file", c.TLS.KeyFile, "PEM private key of --tls-cert-file")
	fs.StringVar(&c.TLS.ClientCAFile, "tls-client-ca-file", c.TLS.ClientCAFile, "PEM CA bundle: require client certificates signed by it (mutual TLS)")
}
