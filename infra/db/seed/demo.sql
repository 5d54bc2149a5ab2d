-- Demo data for the local runner and the tests. Applied only to an empty database (no companies).
-- Company 1 is the demo company; company 2 exists so that tenant isolation has someone to hide from.
-- Every scrub rule has something to catch: blacklisted numbers, leads with each call outcome,
-- dispositions, an opted-out and a blocked contact.

INSERT INTO companies (id, name) VALUES (1, 'Acme Debt Relief'), (2, 'Globex Insurance');

INSERT INTO offers (id, company_id, name) VALUES
    (1, 1, 'Debt Relief - Inbound'),
    (2, 1, 'Credit Repair - Inbound'),
    (3, 2, 'Auto Insurance - Inbound');

INSERT INTO schedules (id, company_id, offer_id, name) VALUES
    (1, 1, 1, 'New Debt Leads - Call then SMS'),
    (2, 1, 2, 'Dormant Re-engagement'),
    (3, 2, 3, 'Globex Follow-up');

INSERT INTO schedule_actions (company_id, schedule_id, position, kind, delay_minutes) VALUES
    (1, 1, 1, 'call', 0), (1, 1, 2, 'sms', 30), (1, 1, 3, 'call', 1440),
    (1, 2, 1, 'sms', 0), (1, 2, 2, 'call', 60), (1, 2, 3, 'email', 2880),
    (2, 3, 1, 'call', 5);

INSERT INTO buyers (id, company_id, name) VALUES
    (1, 1, 'National Debt Partners'), (2, 1, 'Freedom Settlement'), (3, 2, 'Globex Buyer');

INSERT INTO traffic_sources (id, company_id, name) VALUES
    (1, 1, 'Facebook Ads'), (2, 1, 'Purchased List'), (3, 2, 'Globex Web');

INSERT INTO blacklist (company_id, phone, reason) VALUES
    (1, '+12025550143', 'litigator'),
    (1, '+13105550199', 'asked never to be called'),
    (2, '+14155550123', 'Globex blacklist');

-- Contacts and earlier leads with a call history, for scrubbing.
INSERT INTO contacts (id, company_id, phone, country, time_zone, opted_out, blocked) VALUES
    (1, 1, '+16175550100', 'US', 'America/New_York', false, false),   -- dialed only (offer 1 schedule)
    (2, 1, '+17185550111', 'US', 'America/New_York', false, false),   -- connected
    (3, 1, '+13125550178', 'US', 'America/Chicago', false, false),    -- converted (offer 2)
    (4, 1, '+12125550101', 'US', 'America/New_York', true, false),    -- opted out
    (5, 1, '+13055550122', 'US', 'America/New_York', false, true),    -- blocked
    (6, 1, '+15125550133', 'US', 'America/Chicago', false, false),    -- disposition "not_interested"
    (7, 1, '+16465550144', 'US', 'America/New_York', false, false),   -- existing lead, never called
    (8, 2, '+17025550155', 'US', 'America/Los_Angeles', false, false);

INSERT INTO leads (id, company_id, owner_type, owner_id, contact_id, caller_id, status) VALUES
    (1, 1, 'schedule', 2, 1, '+16175550100', 'completed'),
    (2, 1, 'offer', 1, 2, '+17185550111', 'completed'),
    (3, 1, 'offer', 2, 3, '+13125550178', 'completed'),
    (4, 1, 'schedule', 2, 4, '+12125550101', 'completed'),
    (5, 1, 'schedule', 2, 5, '+13055550122', 'completed'),
    (6, 1, 'offer', 2, 6, '+15125550133', 'completed'),
    (7, 1, 'offer', 2, 7, '+16465550144', 'live'),
    (8, 2, 'offer', 3, 8, '+17025550155', 'live');

INSERT INTO calls (company_id, lead_id, dialed, connected, converted, disposition) VALUES
    (1, 1, true, false, false, 'no_answer'),
    (1, 2, true, true, false, 'callback'),
    (1, 3, true, true, true, 'sale'),
    (1, 4, true, true, false, 'do_not_call'),
    (1, 6, true, true, false, 'not_interested');

SELECT setval(pg_get_serial_sequence('companies', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('offers', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('schedules', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('schedule_actions', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('buyers', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('traffic_sources', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('contacts', 'id'), 1000, false);
SELECT setval(pg_get_serial_sequence('leads', 'id'), 1000, false);
