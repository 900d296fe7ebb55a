package main

import (
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/services/allinone"
)

// bindClickHouse registers the ClickHouse connection flags.
func bindClickHouse(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.ClickHouse.Addr, "clickhouse-addr", c.ClickHouse.Addr, "ClickHouse native protocol address host:port")
	fs.StringVar(&c.ClickHouse.Database, "clickhouse-database", c.ClickHouse.Database, "ClickHouse database")
	fs.StringVar(&c.ClickHouse.Username, "clickhouse-user", c.ClickHouse.Username, "ClickHouse user")
	fs.StringVar(&c.ClickHouse.Password, "clickhouse-password", c.ClickHouse.Password, "ClickHouse password")
	fs.IntVar(&c.ClickHouse.MaxOpenConns, "clickhouse-max-conns", c.ClickHouse.MaxOpenConns, "ClickHouse connection pool size")
	fs.DurationVar(&c.ClickHouse.QueryTimeout, "clickhouse-query-timeout", c.ClickHouse.QueryTimeout, "upper bound of API reads")
}

// bindNATS registers the queue flags.
func bindNATS(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "external NATS URL; empty starts an embedded NATS JetStream server")
	fs.StringVar(&c.EmbeddedNATS.StoreDir, "nats-store-dir", c.EmbeddedNATS.StoreDir, "JetStream store of the embedded server")
	fs.StringVar(&c.EmbeddedNATS.Host, "nats-host", c.EmbeddedNATS.Host, "listen host of the embedded server")
	fs.IntVar(&c.EmbeddedNATS.Port, "nats-port", c.EmbeddedNATS.Port, "listen port of the embedded server (-1: any free port)")
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
}

// bindWriter registers the writer flags.
func bindWriter(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.Writer.OpsAddr, "writer-ops-addr", c.Writer.OpsAddr, "writer /healthz /readyz /metrics address when run alone")
	fs.IntVar(&c.Writer.Workers, "writer-workers", c.Writer.Workers, "concurrent insert loops")
	fs.IntVar(&c.Writer.BatchRows, "writer-batch-rows", c.Writer.BatchRows, "rows per ClickHouse insert")
	fs.DurationVar(&c.Writer.FlushInterval, "writer-flush-interval", c.Writer.FlushInterval, "longest wait before a partial batch is inserted")
	fs.IntVar(&c.Writer.MaxDeliver, "writer-max-deliver", c.Writer.MaxDeliver, "deliveries of an undecodable message before it is dead-lettered")
	fs.DurationVar(&c.Writer.AckWait, "writer-ack-wait", c.Writer.AckWait, "redelivery delay of unacknowledged messages")
}

// bindAPI registers the query API flags.
func bindAPI(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.API.Addr, "api-addr", c.API.Addr, "query API listen address")
}

// bindCommon registers flags every serving command has.
func bindCommon(fs *pflag.FlagSet, c *allinone.Config) {
	fs.StringVar(&c.DevAPIKey, "dev-api-key", c.DevAPIKey, "API key of the dev tenant")
	fs.StringVar(&c.PostgresDSN, "postgres-dsn", c.PostgresDSN, "Postgres connection string")
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "apply migrations at start")
}
