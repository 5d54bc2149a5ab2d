-- The per-phone advisory lock that serializes every writer of a (company, phone) is taken on two int4 keys:
-- the company and hashtext(phone). The company key was CAST(company_id AS int), which fails for a company id
-- past 2^31 - 1 (companies.id is bigint): that company's every chunk would fail. The company key is now the id
-- folded into int4 (ids that differ by a multiple of 2^31 share lock keys: such writers may wait for each other,
-- never skip a lock). The importers (leadimport/store/chunks.py lock_phones), the expiry sweep
-- (store/leads.py expire_due) and the delete guards below all take it through this one function.

CREATE FUNCTION phone_lock_company(company_id bigint) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CAST(company_id % 2147483648 AS int) $$;

CREATE OR REPLACE FUNCTION parent_still_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    used boolean;
BEGIN
    IF TG_TABLE_NAME = 'schedules' THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM leads WHERE company_id = $1 AND schedule_id = $2)
                     OR EXISTS (SELECT 1 FROM schedule_enrollments WHERE company_id = $1 AND schedule_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    ELSIF TG_TABLE_NAME = 'offers' THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM leads WHERE company_id = $1 AND offer_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    ELSIF TG_TABLE_NAME = 'traffic_sources' THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM leads WHERE company_id = $1 AND traffic_source_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    ELSIF TG_TABLE_NAME = 'companies' THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM contacts WHERE company_id = $1)
                     OR EXISTS (SELECT 1 FROM leads WHERE company_id = $1)'
            INTO used USING OLD.id;
    ELSIF TG_TABLE_NAME = 'contacts' THEN
        -- the importers' lock for this phone: a lead being written for it now is committed before we look
        PERFORM pg_advisory_xact_lock(phone_lock_company(OLD.company_id), hashtext(OLD.phone));
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM leads WHERE company_id = $1 AND contact_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    ELSIF TG_TABLE_NAME = 'leads' THEN
        PERFORM pg_advisory_xact_lock(phone_lock_company(OLD.company_id), hashtext(OLD.caller_id));
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM schedule_enrollments WHERE company_id = $1 AND lead_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    END IF;
    IF used THEN
        RAISE EXCEPTION 'delete on table "%" violates a tenant key: row % is still referenced', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
