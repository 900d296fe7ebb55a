-- Root causes of an incident: the result of the RCA engine (internal/rca)
-- over the incident's window, stored as the JSON the API answers with, so
-- that GET /api/v1/incidents/{id}/root-causes shows what was concluded and
-- when. Recomputed when the incident's window has grown since.
CREATE TABLE IF NOT EXISTS incident_root_causes (
    incident_id   TEXT PRIMARY KEY REFERENCES incidents(id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    result        JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_root_causes_tenant ON incident_root_causes (tenant_id, incident_id);
