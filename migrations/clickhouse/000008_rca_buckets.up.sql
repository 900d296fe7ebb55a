-- Root-cause analysis: a read-through cache of the aggregates internal/rca
-- judges (span statistics, log template counts, failed traces, metric
-- means), one row per signal and time bucket. The aggregates of a settled
-- bucket never change, and every analysis reads a baseline around its
-- window, largely the buckets the analyses before it read; a bucket is
-- computed once and reused while the number of source rows it depended on
-- (dep) is unchanged, so late or re-delivered rows make the next analysis
-- compute it again. payload holds the bucket's rows as JSON; signal names
-- carry a version ("spans/v1") so a changed aggregate is never read from
-- an older one. Portable to ClickHouse 18.16; partitioned like spans so
-- retention drops it with them. Replaces rca_span_stats.
CREATE TABLE IF NOT EXISTS rca_buckets (
    tenant_id String,
    date Date,
    retention_class String,
    namespace String,
    signal String,
    step_ns UInt64,
    bucket UInt64,
    dep UInt64,
    calc_id UInt64,
    payload String
) ENGINE = MergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, namespace, signal, step_ns, bucket);

DROP TABLE IF EXISTS rca_span_stats;
