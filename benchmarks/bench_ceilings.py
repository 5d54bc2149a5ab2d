"""4. Ceilings and a baseline, in the same run as the worker, over the same realistic rows.

(a) phone normalization alone: `PhoneNormalizer().normalize(raw, country)` over the worker's 100k rows
    (--quick 20k), and plain phonenumbers `parse` + `is_valid_number` + `format_number(E164)` over the
    same values as a second reference (region from the row's country, mapped beforehand);
(b) `COPY` of the same rows (8 text columns) into a bare table, through pg8000 native
    `conn.run("COPY ... FROM STDIN WITH (FORMAT csv)", stream=...)` on a TCP_NODELAY socket
    (`leadimport.store.db.connect`): the database's bulk-load ceiling on this machine;
(c) a naive importer as a user would write it, over 20k rows (--quick 3k): csv.DictReader, phonenumbers
    per row, one INSERT ... ON CONFLICT ... RETURNING id for the contact and one INSERT for the lead per
    row (autocommit: a commit per statement), one HSET per row to Redis; same migrated schema (a fresh
    database), same TCP_NODELAY connection as the product, so only the design differs.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    COMPANY_ID,
    OWNER,
    PeakRss,
    Result,
    csv_bytes,
    drop_database,
    fresh_database,
    log,
    new_import,
    phonenumbers_pass,
    realistic,
    realistic_file,
    repeat,
    server_urls,
)

NAME = "ceilings"
_NAIVE_REGIONS = {"us": "US", "uk": "GB", "gb": "GB", "au": "AU", "ca": "CA"}


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    n = 20_000 if quick else 100_000
    n_naive = 3_000 if quick else 20_000
    repeats = 3
    rows = realistic(n)
    results: list[Result] = []
    extra: dict[str, Any] = {"rows": n, "naive_rows": n_naive}

    # ---- (a) phones -------------------------------------------------------------------------------------
    from leadimport.rules.phone import PhoneNormalizer

    pairs = [(r[0], r[3]) for r in rows]

    def normalize_all() -> int:
        normalizer = PhoneNormalizer()  # a new one per run: its caches start empty, as per chunk in the worker
        ok = 0
        for raw, country in pairs:
            if normalizer.normalize(raw, country).e164 is not None:
                ok += 1
        return ok

    warm = PhoneNormalizer()  # builds the shared classifier (compiled metadata) outside the measurement
    for raw, country in pairs[:2000]:
        warm.normalize(raw, country)
    log(f"ceilings: phone normalization over {n:,} rows")
    with PeakRss() as mem:
        runs, accepted = repeat(normalize_all, repeats)
    phone = Result.timed(NAME, "phone: PhoneNormalizer().normalize(raw, country)", n, runs, peak_rss_mb=mem.peak_mb,
                         note=f"{accepted:,} accepted")
    results.append(phone)

    regional = [(raw, _NAIVE_REGIONS.get(country.strip().lower(), "US")) for raw, country in pairs]
    phonenumbers_pass(regional[:2000])  # warm-up: phonenumbers loads its region metadata lazily
    with PeakRss() as mem:
        runs, accepted = repeat(lambda: phonenumbers_pass(regional), repeats)
    results.append(Result.timed(NAME, "phone: phonenumbers parse + is_valid_number + format(E164)", n, runs,
                                peak_rss_mb=mem.peak_mb, note=f"{accepted:,} valid").against(phone))

    # ---- (b) COPY ----------------------------------------------------------------------------------------
    from leadimport.store.db import ConnectionParams, Database, connect

    base_url, redis_url = server_urls()
    url = fresh_database(base_url, "bench_ceilings")
    try:
        payload = csv_bytes(rows)
        conn = connect(ConnectionParams.from_url(url))
        conn.run("CREATE TABLE bench_copy (caller_id text, email text, lead_priority text, country text,"
                 " interest text, debt_amount text, remote_ip text, first_name text)")

        log(f"ceilings: COPY of {n:,} rows into a bare table")
        runs = []
        for _ in range(repeats):
            conn.run("TRUNCATE bench_copy")
            t = time.perf_counter()
            conn.run("COPY bench_copy FROM STDIN WITH (FORMAT csv)", stream=io.BytesIO(payload))
            runs.append(time.perf_counter() - t)
        copied = int(conn.run("SELECT count(*) FROM bench_copy")[0][0])
        assert copied == n, copied
        conn.close()
        results.append(Result.timed(NAME, "COPY into a bare table (pg8000, TCP_NODELAY)", n, runs,
                                    note=f"{len(payload) / 1e6:,.1f} MB of CSV; timing excludes TRUNCATE"))

        # ---- (c) naive importer ------------------------------------------------------------------------------
        path = realistic_file(workdir, n_naive)
        db = Database.from_url(url)
        import_id = new_import(db)
        db.close()
        log(f"ceilings: naive importer over {n_naive:,} rows")
        with PeakRss() as mem:
            t = time.perf_counter()
            created, rejected = naive_import(path, url, redis_url, import_id)
            seconds = time.perf_counter() - t
        results.append(Result.timed(NAME, "naive importer (DictReader, per-row INSERTs + HSET, autocommit)", n_naive,
                                    [seconds], peak_rss_mb=mem.peak_mb,
                                    note=f"created {created:,}, rejected {rejected:,}"))
        extra["naive"] = {"created": created, "rejected": rejected, "seconds": round(seconds, 2)}
    finally:
        drop_database(base_url, "bench_ceilings")
    return results, extra


def naive_import(path: Path, database_url: str, redis_url: str, import_id: str) -> tuple[int, int]:
    """The importer a user writes in an afternoon: one row at a time, a round trip per statement."""
    import phonenumbers
    import redis

    from leadimport.store.db import ConnectionParams, connect

    conn = connect(ConnectionParams.from_url(database_url))
    r = redis.Redis.from_url(redis_url)
    created = rejected = 0
    owner_type, owner_id = OWNER
    with path.open(newline="", encoding="utf-8") as fh:
        for row_no, row in enumerate(csv.DictReader(fh), start=1):
            region = _NAIVE_REGIONS.get((row.get("country") or "").strip().lower(), "US")
            try:
                number = phonenumbers.parse(row["caller_id"], region)
            except phonenumbers.NumberParseException:
                rejected += 1
                continue
            if not phonenumbers.is_valid_number(number):
                rejected += 1
                continue
            phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            tokens = {k: v for k, v in row.items() if k not in ("caller_id", "email") and v}
            contact_id = conn.run(
                "INSERT INTO contacts (company_id, phone, country) VALUES (:c, :p, :r)"
                " ON CONFLICT (company_id, phone) DO UPDATE SET updated_at = now() RETURNING id",
                c=COMPANY_ID, p=phone, r=region)[0][0]
            lead = conn.run(
                "INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, email, tokens, import_id,"
                " import_row) VALUES (:c, :ot, :oid, :ct, :p, :e, CAST(:t AS jsonb), CAST(:i AS uuid), :row)"
                " ON CONFLICT DO NOTHING RETURNING id",
                c=COMPANY_ID, ot=owner_type, oid=owner_id, ct=contact_id, p=phone, e=row.get("email") or None,
                t=json.dumps(tokens), i=import_id, row=row_no)
            if lead:
                r.hset(f"naive:tokens:{COMPANY_ID}:{owner_type}:{owner_id}:{phone}", mapping=tokens)
                created += 1
            else:
                rejected += 1
    conn.close()
    keys = list(r.scan_iter("naive:tokens:*", count=5000))
    for i in range(0, len(keys), 5000):
        r.delete(*keys[i:i + 5000])
    r.close()
    return created, rejected
