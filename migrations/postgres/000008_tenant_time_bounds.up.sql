-- Per-tenant bounds on record times (internal/limits): a record older than
-- max_record_age_seconds or more than max_future_seconds ahead is rejected
-- by the gateway (OTLP partial success). NULL keeps the gateway's default:
-- the tenant's longest retention, and --ingest-max-future.
ALTER TABLE tenant_limits ADD COLUMN IF NOT EXISTS max_record_age_seconds BIGINT CHECK (max_record_age_seconds >= 0);
ALTER TABLE tenant_limits ADD COLUMN IF NOT EXISTS max_future_seconds BIGINT CHECK (max_future_seconds >= 0);
