"""Use case: are these options usable by this company for this owner? The one check for every way in.

`POST /imports` (the CLI goes through it) and a dropped file's metadata both end here, after the
options model (types, limits, contradictions between options) accepted them: the options must fit
the owner, and every id they name must be the company's own. A refusal is `InvalidOptionsError`
with the sentence the API answers and a dropped file's failed import carries.
"""

from __future__ import annotations

from leadimport.options import ImportOptions, InvalidOptionsError, Owner, contradiction, referenced_ids
from leadimport.store.companies import owned_names
from leadimport.store.db import Database

_LABELS = {"schedule": "schedule", "offer": "offer", "buyer": "buyer", "traffic_source": "traffic source"}
_CODES = {"schedule": "unknown_schedule", "offer": "unknown_owner", "buyer": "unknown_buyer",
          "traffic_source": "unknown_traffic_source"}


def check_import_options(db: Database, company_id: int, owner: Owner, options: ImportOptions) -> str:
    """Raises InvalidOptionsError when the options cannot be used; returns the owner's name."""
    conflict = contradiction(owner, options)
    if conflict:
        raise InvalidOptionsError("contradictory_options", conflict)
    refs = referenced_ids(owner, options)
    found = owned_names(db, company_id, refs)
    if (owner.type, owner.id) not in found:
        raise InvalidOptionsError("unknown_owner", f"There is no {owner.type} {owner.id} in your company.")
    source = options.lead_management.copy_to_this_schedule_from
    if source is not None and (source.type, source.id) not in found:
        raise InvalidOptionsError("unknown_owner", f"There is no {source.type} {source.id} in your company.")
    for kind, ids in refs.items():
        for id_ in ids:
            if (kind, id_) not in found:
                raise InvalidOptionsError(_CODES[kind], f"There is no {_LABELS[kind]} {id_} in your company.")
    return found[(owner.type, owner.id)]
