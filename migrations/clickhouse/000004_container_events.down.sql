DROP TABLE IF EXISTS trace_event_index_mv;
DROP TABLE IF EXISTS trace_event_index;
DROP TABLE IF EXISTS event_links;
DROP TABLE IF EXISTS container_events;
