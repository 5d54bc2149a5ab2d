-- A row of an import that created a lead holds its phone by that lead (leadimport/store/chunks.py phone_claims):
-- the import records no claim row for it. Should another writer delete such a lead, or change its caller_id, import
-- or row, the claim it held is recorded in lead_import_phones first, so a later chunk of the import still finds
-- which row holds the phone (a recorded claim wins over a lead; one already recorded stays). Neither the importer
-- nor undo or the expiry sweep deletes leads or changes those columns: the triggers cost nothing on their paths
-- (UPDATE OF fires only when a statement sets one of the columns).

CREATE FUNCTION lead_claim_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.import_id IS NOT NULL AND OLD.import_row IS NOT NULL THEN
        INSERT INTO lead_import_phones (import_id, phone, row_no, refreshed)
        VALUES (OLD.import_id, OLD.caller_id, OLD.import_row, false)
        ON CONFLICT (import_id, phone) DO NOTHING;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER leads_claim_kept_on_delete BEFORE DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION lead_claim_kept();
CREATE TRIGGER leads_claim_kept_on_key_change BEFORE UPDATE OF caller_id, import_id, import_row ON leads
    FOR EACH ROW
    WHEN (OLD.caller_id IS DISTINCT FROM NEW.caller_id OR OLD.import_id IS DISTINCT FROM NEW.import_id
          OR OLD.import_row IS DISTINCT FROM NEW.import_row)
    EXECUTE FUNCTION lead_claim_kept();
