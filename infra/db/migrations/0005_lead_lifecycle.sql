-- The lead lifecycle (see README "A live lead already exists"):
-- * a re-imported row refreshes the owner's live lead instead of being rejected: imports count it as
--   updated, and the rows still add up;
-- * what an import did to leads it did not create (updated, expired, moved) and to contacts' flags is
--   recorded with the previous values, so undo can put them back;
-- * leads past their expiry are found by the expiry sweep through a partial index.
ALTER TABLE lead_imports ADD COLUMN updated_leads integer NOT NULL DEFAULT 0;
ALTER TABLE lead_imports DROP CONSTRAINT lead_imports_check;
ALTER TABLE lead_imports ADD CONSTRAINT lead_imports_rows_add_up
    CHECK (processed_rows = created_leads + updated_leads + rejected_rows);
ALTER TABLE lead_import_chunks ADD COLUMN updated_leads integer NOT NULL DEFAULT 0;

CREATE TABLE lead_import_changes (
    import_id  uuid NOT NULL REFERENCES lead_imports (id) ON DELETE CASCADE,
    lead_id    bigint NOT NULL,
    -- updated: the row refreshed it; expired / moved: Expire Existing or Move To Another Schedule;
    -- runs: its schedule runs were stopped or (re)started (Manage Schedule, Opt-Out, Block)
    kind       text NOT NULL CHECK (kind IN ('updated', 'expired', 'moved', 'runs')),
    row_no     integer,          -- the row of the import that made the change
    previous   jsonb NOT NULL,   -- the lead (and its active enrollments) as it was before
    PRIMARY KEY (import_id, lead_id, kind)
);
CREATE INDEX lead_import_changes_row ON lead_import_changes (import_id, row_no);

CREATE TABLE lead_import_contact_flags (
    import_id  uuid NOT NULL REFERENCES lead_imports (id) ON DELETE CASCADE,
    contact_id bigint NOT NULL,
    opted_out  boolean NOT NULL,  -- the flags before the import changed them
    blocked    boolean NOT NULL,
    PRIMARY KEY (import_id, contact_id)
);

CREATE INDEX leads_live_expiry ON leads (expires_at) WHERE status = 'live' AND expires_at IS NOT NULL;
