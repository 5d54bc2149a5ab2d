-- Tokens follow the database: after an import completes, every live lead of it is checked in Redis and the
-- missing tokens are stamped again (a Redis restart or failover can lose keys the chunks had stamped). The
-- time of that check is recorded; the sweep checks the completed imports not checked yet.
ALTER TABLE lead_imports ADD COLUMN tokens_checked_at timestamptz;
CREATE INDEX lead_imports_tokens_unchecked ON lead_imports (finished_at)
    WHERE status = 'completed' AND tokens_checked_at IS NULL;
