DROP TRIGGER IF EXISTS api_keys_notify ON api_keys;
DROP FUNCTION IF EXISTS aftertrace_api_keys_notify();
DROP INDEX IF EXISTS api_keys_tenant_id_idx;
ALTER TABLE api_keys DROP COLUMN IF EXISTS description;
ALTER TABLE api_keys DROP COLUMN IF EXISTS prefix;
