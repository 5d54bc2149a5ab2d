-- leads.company_id -> companies is implied by (company_id, contact_id) -> contacts (company_id, id)
-- and contacts.company_id -> companies; the extra check ran once per inserted lead for nothing.
ALTER TABLE leads DROP CONSTRAINT leads_company_id_fkey;
