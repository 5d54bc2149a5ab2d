"""Deterministic sample files: the demo (every kind of bad row) and the benchmark's realistic mix."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from leadimport_local.runner import local_dir

HEADER = ["caller_id", "email", "lead_priority", "country", "interest", "debt_amount", "remote_ip", "first_name"]
INTERESTS = ["cars", "houses", "bikes", "loans", "cards", "boats"]
NAMES = ["John", "Mary", "Phil", "Ana", "Wei", "Olu", "Sofia", "Liam", "Zoë", "José"]
AREA_CODES = [201, 202, 205, 206, 212, 213, 214, 215, 248, 303, 305, 310, 312, 404, 415, 480, 503, 512, 602, 614,
              617, 702, 713, 718, 801, 818, 904, 916, 951, 973]


@cache
def valid_us_prefixes() -> list[str]:
    """NPA-NXX pairs that phonenumbers calls valid (with any line number), to generate real-looking leads."""
    import phonenumbers

    out = []
    for npa in AREA_CODES:
        for nxx in range(200, 1000, 7):
            if nxx % 100 == 11:
                continue
            n = phonenumbers.parse(f"+1{npa}{nxx}4567")
            if phonenumbers.is_valid_number(n):
                out.append(f"{npa}{nxx}")
    return out


def _us_number(rng: random.Random) -> str:
    return f"{rng.choice(valid_us_prefixes())}{rng.randrange(10000):04d}"


def _format_us(digits: str, rng: random.Random) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"+1{digits}"
    if style == 1:
        return digits
    if style == 2:
        return f"1{digits}"
    if style == 3:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return f"+1 {digits[:3]}.{digits[3:6]}.{digits[6:]}"


def realistic_rows(n: int, seed: int = 7, bad_phone_rate: float = 0.02, duplicate_rate: float = 0.01,
                   foreign_rate: float = 0.03) -> Iterator[list[str]]:
    """The benchmark's mix: ~2% bad phones, ~1% in-file duplicates, a few token columns, some non-US rows."""
    rng = random.Random(seed)
    recent: list[str] = []
    for i in range(n):
        r = rng.random()
        country = "us"
        if r < bad_phone_rate:
            phone = rng.choice(["555-1234", "12345", "not a phone", "1.95188E+10", "", "N/A", "+1 (000) 000-0000"])
        elif r < bad_phone_rate + duplicate_rate and recent:
            phone = rng.choice(recent)
        elif r < bad_phone_rate + duplicate_rate + foreign_rate:
            country, phone = rng.choice([("uk", f"+44 7911 {rng.randrange(10**6):06d}"),
                                         ("au", f"+61 4{rng.randrange(10**8):08d}"),
                                         ("ca", f"+1 416 5{rng.randrange(10**6):06d}")])
        else:
            phone = _format_us(_us_number(rng), rng)
            if len(recent) < 1000:
                recent.append(phone)
            else:
                recent[rng.randrange(1000)] = phone
        yield [phone, f"lead{i}@example.com", str(rng.randrange(0, 50)), country, rng.choice(INTERESTS),
               str(rng.randrange(500, 50000)), f"203.0.113.{rng.randrange(1, 255)}", rng.choice(NAMES)]


def write_csv(path: Path, rows: Iterator[list[str]], header: list[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def demo_rows(n: int = 3000, seed: int = 11) -> Iterator[list[str]]:
    """A few thousand rows with every kind of bad row the importer knows, in realistic places."""
    rng = random.Random(seed)
    specials: dict[int, list[str]] = {
        5: ["", "nophone@example.com", "1", "us", "cars", "100", "", "NoPhone"],                       # missing_phone
        9: ["NULL", "null@example.com", "1", "us", "cars", "100", "", "Null"],                          # missing_phone
        13: ["1-800-FLOWERS", "vanity@example.com", "1", "us", "flowers", "100", "", "Vanity"],         # invalid_phone
        17: ["1.95188E+10", "excel@example.com", "1", "us", "cars", "100", "", "Excel"],                # invalid_phone
        21: ["555-1234", "short@example.com", "1", "us", "cars", "100", "", "Short"],                   # invalid_phone
        25: ["+12025550143", "litigator@example.com", "1", "us", "cars", "100", "", "Blacklisted"],     # blacklisted
        29: ["+16175550100", "dialed@example.com", "1", "us", "cars", "100", "", "Dialed"],             # scrubbed_dialed
        33: ["+17185550111", "connected@example.com", "1", "us", "cars", "100", "", "Connected"],       # scrubbed_connected
        37: ["+13125550178", "converted@example.com", "1", "us", "cars", "100", "", "Converted"],       # scrubbed_converted
        41: ["+12125550101", "optout@example.com", "1", "us", "cars", "100", "", "OptedOut"],           # scrubbed_*
        45: ["+16465550144", "existing@example.com", "1", "us", "cars", "100", "", "Existing"],         # scrubbed_existing
        49: ["+1 951 876 1336 x123", "ext@example.com", "1", "us", "cars", "100", "", "Extension"],     # warning
        53: ["+19519184730", "not-an-email", "1", "us", "cars", "100", "999.1.1.1", "BadEmailIp"],      # warnings
        57: ["+44 20 7946 0958", "uk@example.com", "2", "uk", "houses", "500", "", "London"],
        61: ["+16785177520", "mary@gmail.com", "1", "au", "houses", "500", "2001:db8::1", "Mary"],
    }
    first_dup = None
    for i in range(1, n + 1):
        if i in specials:
            yield specials[i]
            continue
        if i == 77 and first_dup:
            yield [first_dup, "dup@example.com", "3", "us", "cars", "100", "", "Duplicate"]    # duplicate_in_file
            continue
        if i == 81:
            yield ["+19518761337", "toomany@example.com", "1", "us", "cars", "100", "", "Extra", "field"]  # malformed_row
            continue
        if i == 85:
            yield ["+19518761338", "long@example.com", "1", "us", "x" * 12000, "100", "", "Long"]   # value_too_long
            continue
        row = next(realistic_rows(1, seed=seed * 100003 + i, bad_phone_rate=0.01, duplicate_rate=0, foreign_rate=0.05))
        row[0] = row[0] if rng.random() > 0.002 else "call me maybe"
        if i == 70:
            first_dup = row[0]
        yield row


def ensure_demo_file() -> Path:
    path = local_dir() / "demo-leads.csv"
    if not path.exists():
        write_csv(path, demo_rows())
    return path
