DROP TABLE IF EXISTS custody_log;
DROP TABLE IF EXISTS evidence_bundles;
DROP TABLE IF EXISTS retention_state;
DROP TABLE IF EXISTS capture_rules;
DROP TABLE IF EXISTS holds;
DROP TABLE IF EXISTS retention_policies;
