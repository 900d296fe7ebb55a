DROP TABLE IF EXISTS rca_span_stats;
