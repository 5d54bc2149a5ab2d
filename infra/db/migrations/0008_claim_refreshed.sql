-- A phone's claim records whether its row refreshed the owner's live lead (counted as updated) or created one:
-- when a row of a later-processed chunk takes the phone over, the right counter moves, dry runs included
-- (they write no lead and no change record to ask instead).
ALTER TABLE lead_import_phones ADD COLUMN refreshed boolean NOT NULL DEFAULT false;
