-- Per-tenant ingest rate limits of the gateway. A row overrides the
-- gateway's defaults (--tenant-records-per-second and friends) for one
-- tenant; a NULL column keeps the default. A rate of 0 means unlimited.
-- The gateway re-reads this table periodically (no restart needed).
CREATE TABLE IF NOT EXISTS tenant_limits (
    tenant_id           TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    records_per_second  DOUBLE PRECISION CHECK (records_per_second >= 0),
    records_burst       BIGINT CHECK (records_burst >= 0),
    bytes_per_second    DOUBLE PRECISION CHECK (bytes_per_second >= 0),
    bytes_burst         BIGINT CHECK (bytes_burst >= 0),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
