DROP TABLE IF EXISTS incident_root_causes;
