"""Use case: are these options usable by this company for this owner? The one check for every way in.

`POST /imports` (the CLI goes through it) and a dropped file's metadata both end here, after the
options model (types, limits, contradictions between options) accepted them: the options must fit
the owner, and every id they name must be the company's own. A refusal is `InvalidOptionsError`
with the sentence the API answers and a dropped file's failed import carries.
"""

from __future__ import annotations

from leadimport.options import ImportOptions, InvalidOptionsError, Owner, contradictions, referenced_ids
from leadimport.store.companies import owned_names
from leadimport.store.db import Database

_LABELS = {"schedule": "schedule", "offer": "offer", "buyer": "buyer", "traffic_source": "traffic source"}
_CODES = {"schedule": "unknown_schedule", "offer": "unknown_owner", "buyer": "unknown_buyer",
          "traffic_source": "unknown_traffic_source"}


def check_import_options(db: Database, company_id: int, owner: Owner, options: ImportOptions) -> str:
    """Raises InvalidOptionsError when the options cannot be used, with every problem at its option (`errors`)
    and the first one's code; returns the owner's name."""
    problems: list[tuple[str, str, str]] = [("contradictory_options", field, sentence)
                                            for field, sentence in contradictions(owner, options)]
    found = owned_names(db, company_id, referenced_ids(owner, options))
    if (owner.type, owner.id) not in found:
        problems.append(("unknown_owner", "owner", f"There is no {owner.type} {owner.id} in your company."))
    lm, defaults = options.lead_management, options.defaults
    where: list[tuple[str, str, int | None]] = [
        ("lead_management.add_to_schedule_id", "schedule", lm.add_to_schedule_id),
        ("lead_management.move_to_schedule_id", "schedule", lm.move_to_schedule_id),
        ("defaults.traffic_source_id", "traffic_source", defaults.traffic_source_id),
        *[("defaults.buyer_ids", "buyer", i) for i in defaults.buyer_ids],
    ]
    source = lm.copy_to_this_schedule_from
    if source is not None:
        where.append(("lead_management.copy_to_this_schedule_from", source.type, source.id))
    for field, kind, id_ in where:
        if id_ is not None and (kind, id_) not in found:
            code = "unknown_owner" if field.endswith("copy_to_this_schedule_from") else _CODES[kind]
            problems.append((code, field, f"There is no {_LABELS[kind]} {id_} in your company."))
    if problems:
        raise InvalidOptionsError(problems[0][0], " ".join(sentence for _, _, sentence in problems),
                                  [{"field": field, "message": sentence} for _, field, sentence in problems])
    return found[(owner.type, owner.id)]
