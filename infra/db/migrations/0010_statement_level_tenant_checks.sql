-- Tenant integrity checked once per statement instead of once per row.
--
-- The seven per-row foreign keys on the tables an import writes per lead (leads -> schedules, offers,
-- contacts, traffic sources; enrollments -> leads, schedules; contacts -> companies) each fired a trigger
-- per row that ran its own query (executor start-up per row): 37% of PostgreSQL's time in a chunk's write,
-- 12-19 us per lead. They become:
--   * child side: one AFTER ... FOR EACH STATEMENT trigger per table that checks every new or changed row
--     against its parents in ONE query (transition tables), and locks the parents that are shared by the
--     rows (company, schedule, offer, traffic source) FOR KEY SHARE, as a foreign key does, so they cannot
--     go away before the writer commits. The check is planned per statement (EXECUTE): a cached plan goes
--     stale as the tables grow. A violation raises SQLSTATE 23503 (foreign_key_violation), like the keys.
--   * parent side: a row trigger refuses to delete a parent that rows still reference, or to change a
--     parent's id or company. Contacts and leads are per-row parents that are not locked by the writers
--     (a FOR KEY SHARE lock per lead is WAL-logged: the cost this removes); their guard takes the same
--     advisory lock on (company, phone) that every importer holds while it writes leads for that phone, so
--     a delete waits for the writer and then sees its rows.
-- Any writer is checked, not only the importer: the guarantee stays in the database.

ALTER TABLE leads DROP CONSTRAINT leads_company_id_schedule_id_fkey;
ALTER TABLE leads DROP CONSTRAINT leads_company_id_offer_id_fkey;
ALTER TABLE leads DROP CONSTRAINT leads_company_id_contact_id_fkey;
ALTER TABLE leads DROP CONSTRAINT leads_company_id_traffic_source_id_fkey;
ALTER TABLE schedule_enrollments DROP CONSTRAINT schedule_enrollments_company_id_lead_id_fkey;
ALTER TABLE schedule_enrollments DROP CONSTRAINT schedule_enrollments_company_id_schedule_id_fkey;
ALTER TABLE contacts DROP CONSTRAINT contacts_company_id_fkey;

-- ---------------------------------------------------------------- child side: one check per statement

CREATE FUNCTION leads_check_parents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    -- The parents shared by the rows (schedule, offer, traffic source): each distinct one once, locked as a
    -- foreign key locks it, and it must be the row's company's.
    EXECUTE $q$
        WITH need AS (SELECT DISTINCT company_id, schedule_id AS id FROM changed WHERE schedule_id IS NOT NULL),
             got AS (SELECT s.company_id, s.id FROM schedules s JOIN need n ON n.company_id = s.company_id AND n.id = s.id
                     FOR KEY SHARE OF s)
        SELECT format('schedule %s is not one of the company''s schedules', n.id) FROM need n
        WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1$q$ INTO bad;
    IF bad IS NULL THEN
        EXECUTE $q$
            WITH need AS (SELECT DISTINCT company_id, offer_id AS id FROM changed WHERE offer_id IS NOT NULL),
                 got AS (SELECT o.company_id, o.id FROM offers o JOIN need n ON n.company_id = o.company_id AND n.id = o.id
                         FOR KEY SHARE OF o)
            SELECT format('offer %s is not one of the company''s offers', n.id) FROM need n
            WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1$q$ INTO bad;
    END IF;
    IF bad IS NULL THEN
        EXECUTE $q$
            WITH need AS (SELECT DISTINCT company_id, traffic_source_id AS id FROM changed
                          WHERE traffic_source_id IS NOT NULL),
                 got AS (SELECT t.company_id, t.id FROM traffic_sources t
                         JOIN need n ON n.company_id = t.company_id AND n.id = t.id FOR KEY SHARE OF t)
            SELECT format('traffic source %s is not one of the company''s', n.id) FROM need n
            WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1$q$ INTO bad;
    END IF;
    -- The contact differs per row: one index probe each. The LIMIT 1 subquery keeps it a probe: planned as a
    -- hashed subplan (the planner does not know the transition table's size) it read every contact of the
    -- table once per statement (44 us per lead with 200k contacts).
    IF bad IS NULL THEN
        EXECUTE $q$
            SELECT format('contact %s is not one of the company''s contacts', n.contact_id) FROM changed n
            WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM contacts c WHERE c.company_id = n.company_id
                                                                     AND c.id = n.contact_id LIMIT 1) c)
            LIMIT 1$q$ INTO bad;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "leads" violates its tenant keys: %', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER leads_parents_on_insert AFTER INSERT ON leads
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION leads_check_parents();
CREATE TRIGGER leads_parents_on_update AFTER UPDATE ON leads
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION leads_check_parents();

CREATE FUNCTION enrollments_check_parents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    EXECUTE $q$
        WITH need AS (SELECT DISTINCT company_id, schedule_id AS id FROM changed),
             got AS (SELECT s.company_id, s.id FROM schedules s JOIN need n ON n.company_id = s.company_id AND n.id = s.id
                     FOR KEY SHARE OF s)
        SELECT format('schedule %s is not one of company %s''s schedules', n.id, n.company_id) FROM need n
        WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1$q$ INTO bad;
    IF bad IS NULL THEN
        EXECUTE $q$
            SELECT format('lead %s is not one of company %s''s leads', n.lead_id, n.company_id) FROM changed n
            WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM leads l WHERE l.company_id = n.company_id
                                                                  AND l.id = n.lead_id LIMIT 1) l)
            LIMIT 1$q$ INTO bad;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "schedule_enrollments" violates its tenant keys: %', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER enrollments_parents_on_insert AFTER INSERT ON schedule_enrollments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION enrollments_check_parents();
CREATE TRIGGER enrollments_parents_on_update AFTER UPDATE ON schedule_enrollments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION enrollments_check_parents();

CREATE FUNCTION contacts_check_company() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    EXECUTE $q$
        SELECT c.company_id FROM (SELECT DISTINCT company_id FROM changed) c
        LEFT JOIN LATERAL (SELECT x.id FROM companies x WHERE x.id = c.company_id FOR KEY SHARE) k ON true
        WHERE k.id IS NULL LIMIT 1$q$ INTO missing;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "contacts" violates its tenant key: no company %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER contacts_company_on_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION contacts_check_company();
CREATE TRIGGER contacts_company_on_update AFTER UPDATE ON contacts
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION contacts_check_company();

-- ---------------------------------------------------------------- parent side: restrict

-- A parent's id and company never change (every tenant key would have to follow).
CREATE FUNCTION tenant_keys_are_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.company_id IS DISTINCT FROM OLD.company_id THEN
        RAISE EXCEPTION 'the id and company of a row of "%" never change', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER schedules_keys_fixed BEFORE UPDATE OF id, company_id ON schedules
    FOR EACH ROW EXECUTE FUNCTION tenant_keys_are_fixed();
CREATE TRIGGER offers_keys_fixed BEFORE UPDATE OF id, company_id ON offers
    FOR EACH ROW EXECUTE FUNCTION tenant_keys_are_fixed();
CREATE TRIGGER traffic_sources_keys_fixed BEFORE UPDATE OF id, company_id ON traffic_sources
    FOR EACH ROW EXECUTE FUNCTION tenant_keys_are_fixed();
CREATE TRIGGER contacts_keys_fixed BEFORE UPDATE OF id, company_id ON contacts
    FOR EACH ROW EXECUTE FUNCTION tenant_keys_are_fixed();
CREATE TRIGGER leads_keys_fixed BEFORE UPDATE OF id, company_id ON leads
    FOR EACH ROW EXECUTE FUNCTION tenant_keys_are_fixed();

-- Deleting a parent that rows still reference is refused (RESTRICT). The writers lock the shared parents
-- FOR KEY SHARE (above), so a delete waits for them; the row lock is taken before this trigger runs and the
-- check reads with a fresh snapshot, so it sees what they committed.
CREATE FUNCTION parent_still_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
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
        PERFORM pg_advisory_xact_lock(CAST(OLD.company_id AS int), hashtext(OLD.phone));
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM leads WHERE company_id = $1 AND contact_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    ELSIF TG_TABLE_NAME = 'leads' THEN
        PERFORM pg_advisory_xact_lock(CAST(OLD.company_id AS int), hashtext(OLD.caller_id));
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM schedule_enrollments WHERE company_id = $1 AND lead_id = $2)'
            INTO used USING OLD.company_id, OLD.id;
    END IF;
    IF used THEN
        RAISE EXCEPTION 'delete on table "%" violates a tenant key: row % is still referenced', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER schedules_restrict_delete BEFORE DELETE ON schedules
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
CREATE TRIGGER offers_restrict_delete BEFORE DELETE ON offers
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
CREATE TRIGGER traffic_sources_restrict_delete BEFORE DELETE ON traffic_sources
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
CREATE TRIGGER companies_restrict_delete BEFORE DELETE ON companies
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
CREATE TRIGGER contacts_restrict_delete BEFORE DELETE ON contacts
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
CREATE TRIGGER leads_restrict_delete BEFORE DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION parent_still_referenced();
