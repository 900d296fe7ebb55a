-- Container events: Falco alerts, Kubernetes events and pod status
-- transitions normalized into one table (internal/events.Event). Portable
-- down to ClickHouse 18.16 like spans. event_id is a hash of the tenant,
-- the source and the raw content, so a re-delivered event keeps its id:
-- ReplacingMergeTree collapses copies at merge time and reads dedup with
-- LIMIT 1 BY event_id.
--
-- container_id is the normalized id as the source gave it (Falco: 12 hex
-- chars; runtimes: 64); container_id_short is its first 12 chars, the key
-- that matches both forms.
CREATE TABLE IF NOT EXISTS container_events (
    tenant_id String,
    date Date,
    timestamp DateTime,
    retention_class String,
    event_id FixedString(16),
    time_unix_nano UInt64,
    observed_time_unix_nano UInt64,
    source String,
    type String,
    severity UInt8,
    severity_text String,
    reason String,
    message String,
    container_id String,
    container_id_short String,
    container_name String,
    k8s_pod_uid String,
    k8s_pod_name String,
    k8s_namespace_name String,
    k8s_node_name String,
    workload String,
    image String,
    process_name String,
    process_cmdline String,
    user_name String,
    exit_code Int32,
    tags Array(String),
    field_keys Array(String),
    field_values Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, timestamp, event_id);

-- Event -> trace links written by the correlator, one row per (event,
-- trace); re-linking writes the same key again (ReplacingMergeTree +
-- LIMIT 1 BY event_id, trace_id on read). The trace is classified into a
-- business transaction and its business keys when it is linked.
CREATE TABLE IF NOT EXISTS event_links (
    tenant_id String,
    date Date,
    retention_class String,
    event_id FixedString(16),
    event_time_unix_nano UInt64,
    trace_id FixedString(16),
    trace_start_unix_nano UInt64,
    trace_duration_ns UInt64,
    match_kind String,
    span_count UInt32,
    root_service String,
    root_name String,
    failed UInt8,
    business_transaction String,
    business_key_names Array(String),
    business_key_values Array(String),
    linked_at_unix_nano UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, event_id, trace_id);

-- Trace -> events, for GET /api/v1/traces/{traceId}/events.
CREATE TABLE IF NOT EXISTS trace_event_index (
    tenant_id String,
    date Date,
    retention_class String,
    trace_id FixedString(16),
    event_id FixedString(16),
    event_time_unix_nano UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, trace_id, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_event_index_mv TO trace_event_index AS
SELECT tenant_id, date, retention_class, trace_id, event_id, event_time_unix_nano
FROM event_links;
