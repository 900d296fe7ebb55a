ALTER TABLE tenant_limits DROP COLUMN IF EXISTS max_future_seconds;
ALTER TABLE tenant_limits DROP COLUMN IF EXISTS max_record_age_seconds;
