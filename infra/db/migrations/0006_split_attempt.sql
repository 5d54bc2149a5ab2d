-- The split lease is work in flight: a short lease renewed at every checkpoint, taken over by the next
-- attempt once it lapses (a splitter killed by SIGKILL, out of memory or a timeout). Each claim numbers
-- its attempt; a checkpoint or finish of an older attempt matches no row (fencing), so a slow splitter
-- that lost its lease stops instead of writing over the one that took it.
ALTER TABLE lead_imports ADD COLUMN split_attempt integer NOT NULL DEFAULT 0;
CREATE INDEX lead_imports_splitting ON lead_imports (split_lease_until) WHERE status IN ('queued', 'splitting');
