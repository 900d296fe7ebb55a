DROP TABLE IF EXISTS metric_names_mv;
DROP TABLE IF EXISTS metric_names;
DROP TABLE IF EXISTS metric_points;
