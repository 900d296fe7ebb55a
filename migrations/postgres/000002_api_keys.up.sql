-- API key details for display, and change notifications so every process
-- evicts a revoked key from its authentication cache at once.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS description TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS api_keys_tenant_id_idx ON api_keys (tenant_id, id);

-- Any update or delete of a key that changes what it authenticates (revoked,
-- moved, rehashed, removed) notifies channel aftertrace_api_keys with the
-- key id. Notifications are sent at commit, so listeners never evict before
-- the change is visible.
CREATE OR REPLACE FUNCTION aftertrace_api_keys_notify() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('aftertrace_api_keys', OLD.id);
        RETURN OLD;
    END IF;
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.key_hash IS DISTINCT FROM OLD.key_hash THEN
        PERFORM pg_notify('aftertrace_api_keys', NEW.id);
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS api_keys_notify ON api_keys;
CREATE TRIGGER api_keys_notify
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION aftertrace_api_keys_notify();
