DROP TABLE IF EXISTS log_trace_index_mv;
DROP TABLE IF EXISTS log_trace_index;
DROP TABLE IF EXISTS logs;
