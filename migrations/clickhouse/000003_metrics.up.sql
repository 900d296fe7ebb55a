-- Metric data points: one row per OTLP data point of any of the five kinds
-- (metric_type: 1 gauge, 2 sum, 3 histogram, 4 exponential histogram,
-- 5 summary, as pmetric.MetricType numbers them). Columns of the other
-- kinds hold their defaults. Portable down to ClickHouse 18.16 like spans:
-- integer ns timestamps beside DateTime/Date, parallel arrays for
-- attributes and exemplars, no TTL (a retention worker drops
-- (date, retention_class) partitions).
--
-- series_id is a 64-bit hash (computed by the writer) of the tenant, the
-- metric name, type, unit, temporality and monotonicity, the scope, the
-- resource attributes and the point attributes (keys sorted): one value per
-- time series. The sort key (tenant_id, metric_name, series_id,
-- time_unix_nano) is the identity of a point, so ReplacingMergeTree
-- collapses re-delivered copies at merge time, and reads also dedup with
-- LIMIT 1 BY series_id, time_unix_nano.
CREATE TABLE IF NOT EXISTS metric_points (
    tenant_id String,
    date Date,
    timestamp DateTime,
    retention_class String,
    metric_name String,
    metric_type UInt8,
    description String,
    unit String,
    series_id UInt64,
    start_time_unix_nano UInt64,
    time_unix_nano UInt64,
    flags UInt32,
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
    -- sum only
    is_monotonic UInt8,
    -- sum, histogram, exponential histogram: 0 unspecified, 1 delta, 2 cumulative
    aggregation_temporality UInt8,
    -- gauge and sum: value_type 1 double (value), 2 int (value_int, with value
    -- holding it as a double too), 0 no value
    value_type UInt8,
    value Float64,
    value_int Int64,
    -- histogram, exponential histogram, summary
    count UInt64,
    sum Nullable(Float64),
    -- histogram, exponential histogram
    min Nullable(Float64),
    max Nullable(Float64),
    -- histogram
    bucket_counts Array(UInt64),
    explicit_bounds Array(Float64),
    -- exponential histogram
    scale Int32,
    zero_count UInt64,
    zero_threshold Float64,
    positive_offset Int32,
    positive_bucket_counts Array(UInt64),
    negative_offset Int32,
    negative_bucket_counts Array(UInt64),
    -- summary: parallel arrays of quantile_values.quantile / .value
    quantiles Array(Float64),
    quantile_values Array(Float64),
    -- exemplars, parallel arrays: value_type as for points, trace and span
    -- ids are raw bytes (empty when the exemplar has none), filtered
    -- attributes a JSON object each ("" when none)
    exemplar_times Array(UInt64),
    exemplar_value_types Array(UInt8),
    exemplar_values Array(Float64),
    exemplar_int_values Array(Int64),
    exemplar_trace_ids Array(String),
    exemplar_span_ids Array(String),
    exemplar_attrs Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, metric_name, series_id, time_unix_nano);

-- Metric names seen per tenant and day, for /api/v1/metrics/names without
-- scanning the points.
CREATE TABLE IF NOT EXISTS metric_names (
    tenant_id String,
    date Date,
    metric_name String,
    metric_type UInt8,
    unit String,
    description String,
    point_count UInt64
) ENGINE = SummingMergeTree(point_count)
PARTITION BY date
ORDER BY (tenant_id, metric_name, metric_type, unit, description, date);

CREATE MATERIALIZED VIEW IF NOT EXISTS metric_names_mv TO metric_names AS
SELECT tenant_id, date, metric_name, metric_type, unit, description, count() AS point_count
FROM metric_points
GROUP BY tenant_id, date, metric_name, metric_type, unit, description;
