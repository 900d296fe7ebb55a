DROP TABLE IF EXISTS tenant_limits;
