DROP TABLE IF EXISTS incident_history;
DROP TABLE IF EXISTS incident_events;
DROP TABLE IF EXISTS incidents;
DROP TABLE IF EXISTS business_transactions;
