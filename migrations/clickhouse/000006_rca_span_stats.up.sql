-- Root-cause analysis: span statistics per time bucket, as internal/rca
-- computes them (span self-join: self time and caller → callee gaps).
-- A read-through cache: a bucket's rows are computed once from settled
-- spans and reused by later analyses whose baseline covers the bucket.
-- Each computation is stamped with calc_id and with the number of spans
-- the bucket depended on (its own spans and their neighbours one minute
-- either side); a reader uses a computation only while that count is
-- unchanged, so late or re-delivered spans make it compute the bucket
-- again. Portable to ClickHouse 18.16; partitioned like spans so retention
-- drops it with them.
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
