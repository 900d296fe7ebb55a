DROP TABLE IF EXISTS container_sightings_spans_mv;
DROP TABLE IF EXISTS container_sightings_logs_mv;
DROP TABLE IF EXISTS container_sightings_metric_points_mv;
DROP TABLE IF EXISTS container_sightings_container_events_mv;
DROP TABLE IF EXISTS container_sightings;
