-- Per-tenant incident rules: they replace the correlator's flag defaults
-- for the tenant (PUT /api/v1/incident-rules). An event at or above
-- min_severity, or of one of event_types, opens an incident; so does an
-- anomaly whose top root-cause candidate scores at least anomaly_min_score
-- (0: anomalies never open incidents for the tenant).
CREATE TABLE IF NOT EXISTS incident_rules (
    tenant_id          TEXT PRIMARY KEY,
    min_severity       SMALLINT NOT NULL CHECK (min_severity BETWEEN 1 AND 24),
    event_types        TEXT[] NOT NULL DEFAULT '{}',
    anomaly_min_score  DOUBLE PRECISION NOT NULL CHECK (anomaly_min_score >= 0),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What opened an incident: a container event or an anomaly found by the
-- correlator's periodic root-cause analysis.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'anomaly'));

-- Anomaly records of an incident (type 'anomaly') keep the candidate's
-- score and a summary of its evidence; events keep 0 and ''.
ALTER TABLE incident_events ADD COLUMN IF NOT EXISTS score DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE incident_events ADD COLUMN IF NOT EXISTS summary TEXT NOT NULL DEFAULT '';
