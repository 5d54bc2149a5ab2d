-- The import lifecycle in the database: the same transition table as leadimport.imports.status
-- (a test compares the two). Any status change outside it is refused, whoever writes the UPDATE,
-- so a final status (completed, failed, cancelled) can never change again.
CREATE TABLE lead_import_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO lead_import_transitions (from_status, to_status) VALUES
    ('awaiting_upload', 'queued'), ('awaiting_upload', 'failed'), ('awaiting_upload', 'cancelled'),
    ('awaiting_confirmation', 'queued'), ('awaiting_confirmation', 'failed'), ('awaiting_confirmation', 'cancelled'),
    ('queued', 'splitting'), ('queued', 'failed'), ('queued', 'cancelled'),
    ('splitting', 'awaiting_confirmation'), ('splitting', 'processing'), ('splitting', 'completed'),
    ('splitting', 'failed'), ('splitting', 'cancelled'),
    ('processing', 'completed'), ('processing', 'failed'), ('processing', 'cancelled');

CREATE FUNCTION lead_import_status_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lead_import_transitions
                   WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'import % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- Fires only when the status changes: the per-chunk counter updates do not pay for it.
CREATE TRIGGER lead_imports_status_guard
    BEFORE UPDATE OF status ON lead_imports
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION lead_import_status_guard();
