"""Use case: what the import would do with its file, before it is confirmed (the preview).

The file's rows (all of them, or the first `SAMPLE_ROWS` of a larger file, said so) go through the worker's
row rules and chunk plan against what the database knows now (blacklist, scrub history, contact flags, the
owner's live leads): the totals are the outcomes the import would record, by reason, with what happens to the
owner's existing lead for each number (`update`, `skip`, `expire`, `move`). A few rows are kept to show: the
first `SHOWN_ROWS`, and the first rejected rows after them, so a bad row past the top is seen too.

Used by the splitter when it first reads a preview import's file, and by the API when the user changes the
column mapping (POST /imports/{id}/preview): the same function, from the same uploaded object.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from leadimport.csv_io import CsvHeader, CsvLimits, iter_rows, mapped_phone_column, resolve_columns
from leadimport.options import ImportOptions
from leadimport.reasons import Reason
from leadimport.rules.chunk_plan import decide
from leadimport.rules.pipeline import LeadCandidate, RowRules
from leadimport.store import chunks as chunk_sql
from leadimport.store.aws import UploadStore
from leadimport.store.companies import company_refs
from leadimport.store.db import Database

SAMPLE_ROWS = 10_000  # rows run through the rules and the plan; a larger file's totals are for this sample
SHOWN_ROWS = 20  # rows shown from the top of the file
SHOWN_REJECTED_AFTER = 20  # rejected rows shown from further down


@dataclass(frozen=True)
class PreviewSource:
    """The import whose file is previewed."""

    import_id: str
    company_id: int
    owner_type: str
    owner_id: int
    upload_key: str
    object_version: str | None
    object_size: int | None


def build_preview(db: Database, uploads: UploadStore, source: PreviewSource, header: CsvHeader,
                  options: ImportOptions, mapping: dict[str, str | None], *,
                  limits: CsvLimits | None = None, sample_rows: int | None = None) -> dict[str, Any]:
    """The preview document (stored on the import, served by GET /imports/{id}/preview). Raises
    FileRejectedError when the mapping cannot be used (two columns mapped to one name...)."""
    sample_rows = sample_rows or SAMPLE_ROWS
    columns = resolve_columns(header.columns, mapping).names
    rules = RowRules(options, header.columns, columns, company_refs(db, source.company_id))
    outcomes: list[dict[str, Any]] = []
    candidates: list[LeadCandidate] = []
    bytes_read = header.data_offset
    with uploads.open(source.upload_key, header.data_offset, source.object_version) as stream:
        rows = iter_rows(stream, header, limits=limits or CsvLimits(), phone_column=mapped_phone_column(columns))
        sample = list(itertools.islice(rows, sample_rows))
        whole_file = next(rows, None) is None
    for row in sample:
        bytes_read = row.end_offset
        if row.reason is not None:
            outcomes.append({"row": row.row_no, "outcome": "rejected", "reason": row.reason, "message": row.message,
                             "values": dict(zip(header.columns, row.values, strict=False)),
                             "warnings": []})
            continue
        result = rules.apply(row.row_no, row.values, row.warnings)
        values = rules.source_values(row.values)
        if isinstance(result, LeadCandidate):
            outcomes.append({"row": row.row_no, "outcome": "accepted", "caller_id": result.phone,
                             "country": result.region, "tokens": result.tokens, "warnings": result.warnings,
                             "values": values})
            candidates.append(result)
        else:
            outcomes.append({"row": row.row_no, "outcome": "rejected", "reason": result.reason,
                             "message": result.message, "values": values, "warnings": []})
    _apply_plan(db, source, options, candidates, outcomes)

    rejections = Counter(str(o["reason"]) for o in outcomes if o["outcome"] == "rejected")
    existing = Counter(str(o["existing_lead"]) for o in outcomes if o.get("existing_lead"))
    warnings = Counter(str(w) for o in outcomes if o["outcome"] == "accepted" for w in set(o.get("warnings") or []))
    updated = sum(1 for o in outcomes if o["outcome"] == "accepted" and o.get("existing_lead") == "update")
    accepted = sum(1 for o in outcomes if o["outcome"] == "accepted")
    estimated = None
    if not whole_file and source.object_size and bytes_read > header.data_offset:
        estimated = max(len(sample), round(len(sample) * (source.object_size - header.data_offset)
                                           / (bytes_read - header.data_offset)))
    shown = outcomes[:SHOWN_ROWS] + [o for o in outcomes[SHOWN_ROWS:] if o["outcome"] == "rejected"][
        :SHOWN_REJECTED_AFTER]
    return {
        "encoding": header.encoding, "delimiter": header.delimiter, "header": header.columns,
        "proposed_mapping": dict(zip(header.columns, columns, strict=True)),
        "column_mapping": mapping,
        "rows": shown,
        "totals": {
            "rows": len(sample), "whole_file": whole_file, "sample_limit": sample_rows,
            "estimated_file_rows": len(sample) if whole_file else estimated,
            "created": accepted - updated, "updated": updated, "rejected": sum(rejections.values()),
            "rejections": dict(rejections), "existing_leads": dict(existing), "warnings": dict(warnings),
        },
    }


def _apply_plan(db: Database, source: PreviewSource, options: ImportOptions, candidates: list[LeadCandidate],
                outcomes: list[dict[str, Any]]) -> None:
    """What the chunk plan would do with the accepted rows: the rejections it adds (blacklist, in-file duplicates,
    scrub, duplicate_lead) and, per row, what happens to the owner's live lead for the number."""
    if not candidates:
        return
    phones = sorted({c.phone for c in candidates})
    with db.transaction() as conn:
        scope_offer = (chunk_sql.scope_offer_id(conn, source.company_id, source.owner_type, source.owner_id)
                       if options.scrub.scope == "offer" else None)
        facts = chunk_sql.phone_facts(conn, company_id=source.company_id, import_id=source.import_id,
                                      owner_type=source.owner_type, owner_id=source.owner_id, phones=phones,
                                      scope=options.scrub.scope, scope_offer_id=scope_offer)
    plan = decide(candidates, facts, {}, options, source.owner_type)
    existing: dict[int, str] = {c.row_no: "update" for c, _ in plan.update}
    existing.update({row: "expire" for _, row in plan.expire_leads})
    existing.update({row: "move" for _, row in plan.move_leads})
    rejected = {r.row_no: r for r in plan.rejections}
    existing.update({n: "skip" for n, r in rejected.items() if r.reason == Reason.DUPLICATE_LEAD})
    for outcome in outcomes:
        n = outcome["row"]
        if n in rejected:
            outcome.update(outcome="rejected", reason=rejected[n].reason, message=rejected[n].message, warnings=[])
            for key in ("caller_id", "country", "tokens"):
                outcome.pop(key, None)
        if n in existing:
            outcome["existing_lead"] = existing[n]


__all__ = ["SAMPLE_ROWS", "PreviewSource", "build_preview"]
