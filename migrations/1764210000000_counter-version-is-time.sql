-- Up Migration

-- From this version on, the application writes counters.version as the time of the row's last change in
-- microseconds since the epoch, made strictly increasing (GREATEST(version + 1, now in microseconds)).
-- Rows written before keep their small counts and move to time-based versions on their next change.
-- Why: a count goes back when Postgres is restored from a backup, and the Redis view, which only accepts
-- newer versions, would then ignore the restored rows' next changes.
COMMENT ON COLUMN counters.version IS
  'time of the last change in microseconds since the epoch, strictly increasing per row; the Redis view only moves to newer versions';

-- Down Migration
COMMENT ON COLUMN counters.version IS NULL;
