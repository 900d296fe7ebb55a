-- The masked text of each record's body (otlpconv.LogPattern: the "log",
-- "message" or "msg" field of a JSON body, else the body; ids and numbers
-- replaced by '#'), written by the writer, so that root-cause analysis
-- counts log templates and finds error lines without reading bodies.
-- Records stored before have '' and are masked at read time.
ALTER TABLE logs ADD COLUMN body_pattern String DEFAULT '' AFTER body_type;
