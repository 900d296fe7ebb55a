ALTER TABLE incident_events DROP COLUMN IF EXISTS summary;
ALTER TABLE incident_events DROP COLUMN IF EXISTS score;
ALTER TABLE incidents DROP COLUMN IF EXISTS kind;
DROP TABLE IF EXISTS incident_rules;
