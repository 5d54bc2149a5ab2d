-- Each row's warnings (what was fixed or left out, the row went in), listed by GET /imports/{id}/errors?kind=warning.
-- Written only for rows that have one, in the chunk's transaction; the key makes a retried chunk write nothing twice.
-- "column" is the file's column the warning is about, '' when it is about the row (a schedule run, say).
CREATE TABLE lead_import_warnings (
    import_id  uuid NOT NULL REFERENCES lead_imports (id) ON DELETE CASCADE,
    row_no     integer NOT NULL,
    code       text NOT NULL,
    "column"   text NOT NULL DEFAULT '',
    message    text NOT NULL,
    PRIMARY KEY (import_id, row_no, code, "column")
);
