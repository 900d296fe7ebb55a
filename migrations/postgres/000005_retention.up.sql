-- Retention policies, forensic holds, capture rules, evidence bundles and
-- their chain of custody (internal/retention, services/retention).

-- A tenant's policy set, replaced as a whole by PUT /api/v1/retention.
-- Rows get the class "d<days>" of the most specific matching policy when
-- they are written; a change applies to rows written afterwards.
CREATE TABLE IF NOT EXISTS retention_policies (
    tenant_id   TEXT NOT NULL,
    position    INT NOT NULL,
    signal      TEXT NOT NULL CHECK (signal IN ('spans', 'logs', 'metrics', 'events', 'links')),
    days        INT NOT NULL CHECK (days >= 1),
    namespace   TEXT NOT NULL DEFAULT '',
    service     TEXT NOT NULL DEFAULT '',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, position)
);

-- Forensic holds. Never deleted: a release is recorded (status, who,
-- when). While open, the retention worker copies the selected rows into
-- the ClickHouse "hold" class up to copied_until (the watermark, on the
-- rows' timestamps). trigger_key makes a capture rule place one hold per
-- (rule, trigger, scope) however often it is evaluated.
CREATE TABLE IF NOT EXISTS holds (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    target       TEXT NOT NULL,
    start_at     TIMESTAMPTZ,
    end_at       TIMESTAMPTZ,
    reason       TEXT NOT NULL,
    until        TIMESTAMPTZ,
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'released', 'expired')),
    rule_id      TEXT NOT NULL DEFAULT '',
    trigger_key  TEXT,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_by  TEXT NOT NULL DEFAULT '',
    released_at  TIMESTAMPTZ,
    copied_until TIMESTAMPTZ,
    copied_rows  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS holds_tenant_idx ON holds (tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS holds_open_idx ON holds (status) WHERE status = 'open';
CREATE UNIQUE INDEX IF NOT EXISTS holds_trigger_idx ON holds (tenant_id, trigger_key) WHERE trigger_key IS NOT NULL;

-- A tenant's capture rules, replaced as a whole by PUT /api/v1/capture-rules.
CREATE TABLE IF NOT EXISTS capture_rules (
    tenant_id      TEXT NOT NULL,
    position       INT NOT NULL,
    id             TEXT NOT NULL,
    trigger        TEXT NOT NULL CHECK (trigger IN ('falco', 'oom_killed', 'incident')),
    min_severity   TEXT NOT NULL DEFAULT '',
    namespace      TEXT NOT NULL DEFAULT '',
    before_seconds INT NOT NULL CHECK (before_seconds >= 0),
    after_seconds  INT NOT NULL CHECK (after_seconds >= 0),
    PRIMARY KEY (tenant_id, position),
    UNIQUE (tenant_id, id)
);

-- Small state of the retention worker (e.g. how far capture rules have
-- looked at container events).
CREATE TABLE IF NOT EXISTS retention_state (
    key         TEXT PRIMARY KEY,
    value_ns    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Evidence bundle jobs; archive holds the finished tar.gz.
CREATE TABLE IF NOT EXISTS evidence_bundles (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    scope           TEXT NOT NULL,
    target          TEXT NOT NULL,
    start_at        TIMESTAMPTZ NOT NULL,
    end_at          TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    error           TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    manifest        JSONB,
    archive         BYTEA,
    archive_sha256  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS evidence_bundles_tenant_idx ON evidence_bundles (tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS evidence_bundles_pending_idx ON evidence_bundles (created_at) WHERE status IN ('pending', 'running');

-- Chain of custody: append-only.
CREATE TABLE IF NOT EXISTS custody_log (
    seq        BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    bundle_id  TEXT NOT NULL DEFAULT '',
    hold_id    TEXT NOT NULL DEFAULT '',
    scope      TEXT NOT NULL DEFAULT '',
    target     TEXT NOT NULL DEFAULT '',
    detail     JSONB
);
CREATE INDEX IF NOT EXISTS custody_log_bundle_idx ON custody_log (tenant_id, bundle_id, seq);
CREATE INDEX IF NOT EXISTS custody_log_target_idx ON custody_log (tenant_id, scope, target, seq);
