-- Retention that one tenant cannot stall for another (internal/retention,
-- services/retention).

-- A hold whose rows could not be copied records why. While it fails, the
-- retention worker keeps its tenant's rows of its window instead of
-- dropping them, and drops every other tenant's and date's rows as usual.
ALTER TABLE holds ADD COLUMN IF NOT EXISTS sync_error TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN IF NOT EXISTS sync_failures INT NOT NULL DEFAULT 0;

-- Tenants that have set retention policies (an empty set too): enforcement
-- applies the policies in force to their stored rows, not only to rows
-- written afterwards.
CREATE TABLE IF NOT EXISTS retention_policy_tenants (
    tenant_id   TEXT PRIMARY KEY,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO retention_policy_tenants (tenant_id)
SELECT DISTINCT tenant_id FROM retention_policies ON CONFLICT DO NOTHING;

-- How far capture rules have looked, per tenant and trigger (falco,
-- oom_killed, incident): one tenant's failing trigger never holds back
-- another's.
CREATE TABLE IF NOT EXISTS capture_watermarks (
    tenant_id   TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    seen_ns     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, trigger)
);

-- Triggers whose holds could not be placed: retried by the next passes,
-- skipped (and kept here) once attempts reach the worker's bound. A trigger
-- that succeeds later is removed.
CREATE TABLE IF NOT EXISTS capture_failures (
    tenant_id        TEXT NOT NULL,
    trigger_key      TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    rule_id          TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    attempts         INT NOT NULL,
    last_error       TEXT NOT NULL,
    skipped          BOOLEAN NOT NULL DEFAULT false,
    first_failed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_failed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, trigger_key)
);

-- Evidence bundles: builds counted (a build that died is retried up to the
-- worker's bound, then failed with error_code 'attempts_exhausted'), a
-- heartbeat while building, and the archive stored in chunks (never whole
-- in one value; archive stays for bundles built before).
ALTER TABLE evidence_bundles ADD COLUMN IF NOT EXISTS attempts INT NOT NULL DEFAULT 0;
ALTER TABLE evidence_bundles ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ;
ALTER TABLE evidence_bundles ADD COLUMN IF NOT EXISTS error_code TEXT NOT NULL DEFAULT '';
ALTER TABLE evidence_bundles ADD COLUMN IF NOT EXISTS archive_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE evidence_bundles SET archive_bytes = octet_length(archive) WHERE archive IS NOT NULL AND archive_bytes = 0;
CREATE INDEX IF NOT EXISTS evidence_bundles_tenant_done_idx ON evidence_bundles (tenant_id) WHERE status = 'done';
CREATE TABLE IF NOT EXISTS evidence_bundle_chunks (
    bundle_id  TEXT NOT NULL REFERENCES evidence_bundles (id) ON DELETE CASCADE,
    seq        INT NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (bundle_id, seq)
);
