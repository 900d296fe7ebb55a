DROP TABLE IF EXISTS rca_buckets;

CREATE TABLE IF NOT EXISTS rca_span_stats (
    tenant_id String,
    date Date,
    retention_class String,
    namespace String,
    step_ns UInt64,
    bucket UInt64,
    spans UInt64,
    calc_id UInt64,
    kind String,
    service_name String,
    k8s_pod_name String,
    operation String,
    caller String,
    caller_pod String,
    n UInt64,
    errors UInt64,
    p90 Float64
) ENGINE = MergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, namespace, step_ns, bucket);
