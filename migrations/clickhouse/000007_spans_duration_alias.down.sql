ALTER TABLE spans DROP COLUMN duration_ns;
ALTER TABLE spans ADD COLUMN duration_ns UInt64 DEFAULT if(end_time_unix_nano > start_time_unix_nano, end_time_unix_nano - start_time_unix_nano, 0);
