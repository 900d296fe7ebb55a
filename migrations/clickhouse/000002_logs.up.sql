-- Logs: one row per OTLP log record, portable down to ClickHouse 18.16 like
-- spans (UInt64 ns beside DateTime/Date, parallel attribute arrays, no TTL:
-- a retention worker drops (date, retention_class) partitions).
--
-- timestamp/date are the record's time_unix_nano, or observed_time_unix_nano
-- when the former is 0 (the gateway stamps the observed time when a client
-- left both unset). record_id is a hash computed by the writer from the
-- tenant, resource, scope, the record's position in its message and its
-- content, so a re-delivered record gets the same id: ReplacingMergeTree
-- collapses copies at merge time (they share the whole sorting key) and
-- reads dedup with LIMIT 1 BY record_id.
--
-- body holds string bodies as is and other AnyValue bodies as text in the
-- otlpconv encoding named by body_type (JSON for arrays and kvlists).
CREATE TABLE IF NOT EXISTS logs (
    tenant_id String,
    date Date,
    timestamp DateTime,
    retention_class String,
    record_id FixedString(16),
    time_unix_nano UInt64,
    observed_time_unix_nano UInt64,
    severity_number UInt8,
    severity_text String,
    body String,
    body_type UInt8,
    trace_id FixedString(16),
    span_id FixedString(8),
    flags UInt32,
    event_name String,
    service_name String,
    scope_name String,
    scope_version String,
    k8s_pod_uid String,
    k8s_pod_name String,
    k8s_namespace_name String,
    k8s_node_name String,
    container_id String,
    k8s_container_name String,
    attr_keys Array(String),
    attr_values Array(String),
    attr_types Array(UInt8),
    resource_keys Array(String),
    resource_values Array(String),
    resource_types Array(UInt8),
    dropped_attributes_count UInt32
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, timestamp, service_name, record_id);

-- Trace id -> time range of the trace's logs, so a by-trace log read without
-- a time window scans only the seconds those logs span. Records without a
-- trace id are left out.
CREATE TABLE IF NOT EXISTS log_trace_index (
    tenant_id String,
    date Date,
    retention_class String,
    trace_id FixedString(16),
    start_time_unix_nano UInt64,
    end_time_unix_nano UInt64
) ENGINE = MergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, trace_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS log_trace_index_mv TO log_trace_index AS
SELECT tenant_id, date, retention_class, trace_id,
       min(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano)) AS start_time_unix_nano,
       max(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano)) AS end_time_unix_nano
FROM logs
WHERE hex(trace_id) != '00000000000000000000000000000000'
GROUP BY tenant_id, date, retention_class, trace_id;
