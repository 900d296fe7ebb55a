-- Container registry: what every signal saw of a container or pod. The
-- materialized views add one row per (container, pod, names) and insert
-- block with the first and last time seen; the registry reads aggregate
-- them (min/max/any), so a container stays known after it is gone, for as
-- long as its sightings are retained. Events (container_events) add
-- sightings too, and carry termination reasons and exit codes.
CREATE TABLE IF NOT EXISTS container_sightings (
    tenant_id String,
    date Date,
    retention_class String,
    container_id String,
    container_name String,
    k8s_pod_uid String,
    k8s_pod_name String,
    k8s_namespace_name String,
    k8s_node_name String,
    service_name String,
    image String,
    signal String,
    first_seen_unix_nano UInt64,
    last_seen_unix_nano UInt64,
    records UInt64
) ENGINE = MergeTree()
PARTITION BY (date, retention_class)
ORDER BY (tenant_id, container_id, k8s_pod_uid);

CREATE MATERIALIZED VIEW IF NOT EXISTS container_sightings_spans_mv TO container_sightings AS
SELECT tenant_id, date, retention_class, container_id, k8s_container_name AS container_name, k8s_pod_uid, k8s_pod_name,
       k8s_namespace_name, k8s_node_name, service_name, resource_values[indexOf(resource_keys, 'container.image.name')] AS image, 'spans' AS signal,
       min(start_time_unix_nano) AS first_seen_unix_nano, max(end_time_unix_nano) AS last_seen_unix_nano, count() AS records
FROM spans
WHERE container_id != '' OR k8s_pod_uid != ''
GROUP BY tenant_id, date, retention_class, container_id, container_name, k8s_pod_uid, k8s_pod_name,
         k8s_namespace_name, k8s_node_name, service_name, image;

CREATE MATERIALIZED VIEW IF NOT EXISTS container_sightings_logs_mv TO container_sightings AS
SELECT tenant_id, date, retention_class, container_id, k8s_container_name AS container_name, k8s_pod_uid, k8s_pod_name,
       k8s_namespace_name, k8s_node_name, service_name, resource_values[indexOf(resource_keys, 'container.image.name')] AS image, 'logs' AS signal,
       min(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano)) AS first_seen_unix_nano, max(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano)) AS last_seen_unix_nano, count() AS records
FROM logs
WHERE container_id != '' OR k8s_pod_uid != ''
GROUP BY tenant_id, date, retention_class, container_id, container_name, k8s_pod_uid, k8s_pod_name,
         k8s_namespace_name, k8s_node_name, service_name, image;

CREATE MATERIALIZED VIEW IF NOT EXISTS container_sightings_metric_points_mv TO container_sightings AS
SELECT tenant_id, date, retention_class, container_id, k8s_container_name AS container_name, k8s_pod_uid, k8s_pod_name,
       k8s_namespace_name, k8s_node_name, service_name, resource_values[indexOf(resource_keys, 'container.image.name')] AS image, 'metrics' AS signal,
       min(time_unix_nano) AS first_seen_unix_nano, max(time_unix_nano) AS last_seen_unix_nano, count() AS records
FROM metric_points
WHERE container_id != '' OR k8s_pod_uid != ''
GROUP BY tenant_id, date, retention_class, container_id, container_name, k8s_pod_uid, k8s_pod_name,
         k8s_namespace_name, k8s_node_name, service_name, image;

CREATE MATERIALIZED VIEW IF NOT EXISTS container_sightings_container_events_mv TO container_sightings AS
SELECT tenant_id, date, retention_class, container_id, container_name AS container_name, k8s_pod_uid, k8s_pod_name,
       k8s_namespace_name, k8s_node_name, workload AS service_name, image AS image, 'events' AS signal,
       min(time_unix_nano) AS first_seen_unix_nano, max(time_unix_nano) AS last_seen_unix_nano, count() AS records
FROM container_events
WHERE container_id != '' OR k8s_pod_uid != ''
GROUP BY tenant_id, date, retention_class, container_id, container_name, k8s_pod_uid, k8s_pod_name,
         k8s_namespace_name, k8s_node_name, workload, image;
