-- A live throughput cap per import: at most this many of its chunks are written at the same time (NULL: no cap
-- beyond the stack's WorkerMaxConcurrency). Changeable while the import runs (PATCH /imports/{id}); the
-- workers read it for every chunk.
ALTER TABLE lead_imports ADD COLUMN max_concurrency integer
    CHECK (max_concurrency IS NULL OR max_concurrency BETWEEN 1 AND 1000);
