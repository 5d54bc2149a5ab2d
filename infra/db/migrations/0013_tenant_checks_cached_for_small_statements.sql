-- The statement-level tenant checks of 0010, with cached plans for small statements.
--
-- 0010 runs each check with EXECUTE: planned at every statement, so a check never keeps a plan made for
-- tables of another size. For the importer's statements (2,000 rows) planning is a small part of the check;
-- for a writer of one row at a time (a dialer, an API: one lead per statement) it was most of it: a contact, a
-- lead and its enrollment cost 2.40 ms of PostgreSQL CPU per lead with 0010's checks, 1.33-1.50 with these, 1.03-1.10
-- with none (measured here, README).
-- Statements of at most 16 rows now run the same checks as static SQL (plpgsql keeps their plans for the
-- session; a few rows are index probes whatever the plan, and ANALYZE invalidates the plans anyway); larger
-- statements keep EXECUTE. The queries are the same text in both branches: keep them alike.

CREATE OR REPLACE FUNCTION leads_check_parents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed OFFSET 16) THEN
        WITH need AS (SELECT DISTINCT company_id, schedule_id AS id FROM changed WHERE schedule_id IS NOT NULL),
             got AS (SELECT s.company_id, s.id FROM schedules s JOIN need n ON n.company_id = s.company_id AND n.id = s.id
                     FOR KEY SHARE OF s)
        SELECT format('schedule %s is not one of the company''s schedules', n.id) FROM need n
        WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1 INTO bad;
        IF bad IS NULL THEN
            WITH need AS (SELECT DISTINCT company_id, offer_id AS id FROM changed WHERE offer_id IS NOT NULL),
                 got AS (SELECT o.company_id, o.id FROM offers o JOIN need n ON n.company_id = o.company_id AND n.id = o.id
                         FOR KEY SHARE OF o)
            SELECT format('offer %s is not one of the company''s offers', n.id) FROM need n
            WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1 INTO bad;
        END IF;
        IF bad IS NULL THEN
            WITH need AS (SELECT DISTINCT company_id, traffic_source_id AS id FROM changed
                          WHERE traffic_source_id IS NOT NULL),
                 got AS (SELECT t.company_id, t.id FROM traffic_sources t
                         JOIN need n ON n.company_id = t.company_id AND n.id = t.id FOR KEY SHARE OF t)
            SELECT format('traffic source %s is not one of the company''s', n.id) FROM need n
            WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1 INTO bad;
        END IF;
        IF bad IS NULL THEN
            SELECT format('contact %s is not one of the company''s contacts', n.contact_id) FROM changed n
            WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM contacts c WHERE c.company_id = n.company_id
                                                                     AND c.id = n.contact_id LIMIT 1) c)
            LIMIT 1 INTO bad;
        END IF;
    ELSE
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
        -- The contact differs per row: one index probe each (see 0010).
        IF bad IS NULL THEN
            EXECUTE $q$
                SELECT format('contact %s is not one of the company''s contacts', n.contact_id) FROM changed n
                WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM contacts c WHERE c.company_id = n.company_id
                                                                         AND c.id = n.contact_id LIMIT 1) c)
                LIMIT 1$q$ INTO bad;
        END IF;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "leads" violates its tenant keys: %', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION enrollments_check_parents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed OFFSET 16) THEN
        WITH need AS (SELECT DISTINCT company_id, schedule_id AS id FROM changed),
             got AS (SELECT s.company_id, s.id FROM schedules s JOIN need n ON n.company_id = s.company_id AND n.id = s.id
                     FOR KEY SHARE OF s)
        SELECT format('schedule %s is not one of company %s''s schedules', n.id, n.company_id) FROM need n
        WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.company_id = n.company_id AND g.id = n.id) LIMIT 1 INTO bad;
        IF bad IS NULL THEN
            SELECT format('lead %s is not one of company %s''s leads', n.lead_id, n.company_id) FROM changed n
            WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM leads l WHERE l.company_id = n.company_id
                                                                  AND l.id = n.lead_id LIMIT 1) l)
            LIMIT 1 INTO bad;
        END IF;
    ELSE
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
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "schedule_enrollments" violates its tenant keys: %', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION contacts_check_company() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed OFFSET 16) THEN
        SELECT c.company_id FROM (SELECT DISTINCT company_id FROM changed) c
        LEFT JOIN LATERAL (SELECT x.id FROM companies x WHERE x.id = c.company_id FOR KEY SHARE) k ON true
        WHERE k.id IS NULL LIMIT 1 INTO missing;
    ELSE
        EXECUTE $q$
            SELECT c.company_id FROM (SELECT DISTINCT company_id FROM changed) c
            LEFT JOIN LATERAL (SELECT x.id FROM companies x WHERE x.id = c.company_id FOR KEY SHARE) k ON true
            WHERE k.id IS NULL LIMIT 1$q$ INTO missing;
    END IF;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "contacts" violates its tenant key: no company %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
