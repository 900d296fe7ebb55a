-- Spans: one row per span. Portable down to ClickHouse 18.16: integer ns
-- timestamps beside DateTime/Date, parallel arrays for attributes, no TTL
-- (a retention worker drops (date, retention_class) partitions).
-- ReplacingMergeTree collapses re-delivered copies of a span at merge time;
-- queries also dedup at read time with LIMIT 1 BY.
CREATE TABLE IF NOT EXISTS spans (
    tenant_id String,
    date Date,
    timestamp DateTime,
    retention_class String,
    trace_id FixedString(16),
    span_id FixedString(8),
    parent_span_id FixedString(8),
    trace_state String,
    flags UInt32,
    service_name String,
    name String,
    kind Int8,
    start_time_unix_nano UInt64,
    end_time_unix_nano UInt64,
    duration_ns UInt64,
    status_code Int8,
    status_message String,
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
    event_times Array(UInt64),
    event_names Array(String),
    event_attrs Array(String),
    link_trace_ids Array(String),
    link_span_ids Array(String),
    link_trace_states Array(String),
    link_attrs Array(String),
    dropped_attributes_count UInt32,
    dropped_events_count UInt32,
    dropped_links_count UInt32
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, timestamp, trace_id, span_id);

-- Trace id -> time range, so a trace-by-id read scans only the seconds the
-- trace spans instead of every partition.
CREATE TABLE IF NOT EXISTS trace_index (
    tenant_id String,
    date Date,
    retention_class String,
    trace_id FixedString(16),
    start_time_unix_nano UInt64,
    end_time_unix_nano UInt64
) ENGINE = MergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, trace_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index_mv TO trace_index AS
SELECT tenant_id, date, retention_class, trace_id,
       min(start_time_unix_nano) AS start_time_unix_nano,
       max(end_time_unix_nano) AS end_time_unix_nano
FROM spans
GROUP BY tenant_id, date, retention_class, trace_id;

-- Services seen per tenant and day, for /api/v1/services without scanning spans.
CREATE TABLE IF NOT EXISTS service_index (
    tenant_id String,
    date Date,
    service_name String,
    span_count UInt64
) ENGINE = SummingMergeTree(span_count)
PARTITION BY date
ORDER BY (tenant_id, service_name, date);

CREATE MATERIALIZED VIEW IF NOT EXISTS service_index_mv TO service_index AS
SELECT tenant_id, date, service_name, count() AS span_count
FROM spans
GROUP BY tenant_id, date, service_name;
