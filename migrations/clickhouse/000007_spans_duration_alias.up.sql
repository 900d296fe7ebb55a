-- duration_ns is end - start (0 under clock skew): computed on read instead
-- of stored, a few bytes per span less on disk (an ALIAS is not part of
-- SELECT * nor of inserts; queries name it as before).
ALTER TABLE spans DROP COLUMN duration_ns;
ALTER TABLE spans ADD COLUMN duration_ns UInt64 ALIAS if(end_time_unix_nano > start_time_unix_nano, end_time_unix_nano - start_time_unix_nano, 0);
