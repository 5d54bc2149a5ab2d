"""What a company owns: the ids an import's options may refer to. One query for all of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leadimport.rules.pipeline import CompanyRefs
from leadimport.store.chunks import id_array
from leadimport.store.db import Database


def company_exists(db: Database, company_id: int) -> bool:
    return bool(db.run("SELECT 1 FROM companies WHERE id = :c", c=company_id))


def owned_names(db: Database, company_id: int, ids: Mapping[str, Sequence[int]]) -> dict[tuple[str, int], str]:
    """(kind, id) -> name for the ids of `ids` (kinds: schedule, offer, buyer, traffic_source) that belong to the
    company; an id of another company, or of nothing, is absent."""
    rows = db.run(
        """SELECT 'schedule', id, name FROM schedules WHERE company_id = :c AND id = ANY(CAST(:s AS bigint[]))
           UNION ALL
           SELECT 'offer', id, name FROM offers WHERE company_id = :c AND id = ANY(CAST(:o AS bigint[]))
           UNION ALL
           SELECT 'buyer', id, name FROM buyers WHERE company_id = :c AND id = ANY(CAST(:b AS bigint[]))
           UNION ALL
           SELECT 'traffic_source', id, name FROM traffic_sources
           WHERE company_id = :c AND id = ANY(CAST(:t AS bigint[]))""",
        c=company_id, s=id_array(ids.get("schedule", ())), o=id_array(ids.get("offer", ())),
        b=id_array(ids.get("buyer", ())), t=id_array(ids.get("traffic_source", ())),
    )
    return {(str(r[0]), int(r[1])): str(r[2]) for r in rows or []}


def company_refs(db: Database, company_id: int) -> CompanyRefs:
    """The company's traffic sources and buyers, for rows that name their own."""
    rows = db.run(
        """SELECT 'traffic_source', id, name FROM traffic_sources WHERE company_id = :c
           UNION ALL SELECT 'buyer', id, name FROM buyers WHERE company_id = :c""", c=company_id)
    sources = [(int(r[1]), str(r[2])) for r in rows or [] if r[0] == "traffic_source"]
    buyers = [(int(r[1]), str(r[2])) for r in rows or [] if r[0] == "buyer"]
    return CompanyRefs(CompanyRefs.keyed(sources), CompanyRefs.keyed(buyers))
