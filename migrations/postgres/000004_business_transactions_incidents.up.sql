-- Business transactions: per-tenant definitions (name, match rules, business
-- key attribute names) the correlator classifies linked traces with. Rules
-- and keys are JSON documents validated by the API (internal/biztx).
CREATE TABLE IF NOT EXISTS business_transactions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    rules       JSONB NOT NULL,
    keys        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- Incidents opened by the correlator. The id of an incident is derived from
-- the event that opened it, so re-processing that event finds it again.
CREATE TABLE IF NOT EXISTS incidents (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    severity         SMALLINT NOT NULL,
    namespace        TEXT NOT NULL,
    workload         TEXT NOT NULL,
    services         TEXT[] NOT NULL DEFAULT '{}',
    first_event_at   TIMESTAMPTZ NOT NULL,
    last_event_at    TIMESTAMPTZ NOT NULL,
    opened_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  TEXT,
    resolved_at      TIMESTAMPTZ,
    resolved_by      TEXT
);
CREATE INDEX IF NOT EXISTS incidents_tenant_status ON incidents (tenant_id, status, last_event_at);
CREATE INDEX IF NOT EXISTS incidents_tenant_opened ON incidents (tenant_id, opened_at DESC, id DESC);

-- The events of an incident; an event belongs to at most one incident.
CREATE TABLE IF NOT EXISTS incident_events (
    tenant_id     TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    incident_id   TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    event_time    TIMESTAMPTZ NOT NULL,
    type          TEXT NOT NULL,
    severity      SMALLINT NOT NULL,
    reason        TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    workload      TEXT NOT NULL,
    pod_name      TEXT NOT NULL,
    pod_uid       TEXT NOT NULL,
    container_id  TEXT NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident_id, event_time);

-- Status history of an incident: who did what, when.
CREATE TABLE IF NOT EXISTS incident_history (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    status_from  TEXT NOT NULL,
    status_to    TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS incident_history_incident ON incident_history (incident_id, id);
