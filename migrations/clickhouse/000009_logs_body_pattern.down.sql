ALTER TABLE logs DROP COLUMN body_pattern;
