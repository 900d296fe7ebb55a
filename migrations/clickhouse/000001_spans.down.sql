DROP TABLE IF EXISTS service_index_mv;
DROP TABLE IF EXISTS service_index;
DROP TABLE IF EXISTS trace_index_mv;
DROP TABLE IF EXISTS trace_index;
DROP TABLE IF EXISTS spans;
