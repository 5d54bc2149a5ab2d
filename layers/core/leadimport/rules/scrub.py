"""Scrub decisions: given what the database knows about a phone, is the row excluded, and why.

Pure: the store fetches `PhoneFacts` for all phones of a chunk in one query; this module decides.
Order (the first rejection wins): blacklist, then (after the in-file duplicate check, done by the
store because it spans chunks) the scrub-scope history rules, then the contact's own flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadimport.options import ScrubOptions
from leadimport.reasons import Reason


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    phone: str
    blacklisted: bool = False
    contact_id: int | None = None
    opted_out: bool = False
    blocked: bool = False
    # Leads with this caller_id inside the import's scrub scope (other imports' leads only):
    existing: bool = False
    dialed: bool = False
    connected: bool = False
    converted: bool = False
    dispositions: frozenset[str] = field(default_factory=frozenset)
    # The live lead of the import's own owner with this caller_id, if any:
    live_lead_id: int | None = None
    # A lead of the owner still marked live but past its expiry: dead for every rule, the importer expires it.
    stale_lead_id: int | None = None


NO_FACTS = PhoneFacts(phone="")


def blacklist_reason(facts: PhoneFacts) -> tuple[str, str] | None:
    if facts.blacklisted:
        return Reason.BLACKLISTED, "The number is on the company blacklist."
    return None


def scrub_reason(facts: PhoneFacts, scrub: ScrubOptions) -> tuple[str, str] | None:
    """The scope rules, then the contact flags. None when the row passes."""
    where = "in your company" if scrub.scope == "company" else "on this offer"
    if scrub.scope != "none":
        if scrub.existing and facts.existing:
            return Reason.SCRUBBED_EXISTING, f"A lead with this number already exists {where}."
        if scrub.dialed and facts.dialed:
            return Reason.SCRUBBED_DIALED, f"A lead with this number was already dialed {where}."
        if scrub.connected and facts.connected:
            return Reason.SCRUBBED_CONNECTED, f"A lead with this number already connected to a buyer {where}."
        if scrub.converted and facts.converted:
            return Reason.SCRUBBED_CONVERTED, f"A lead with this number already converted {where}."
        if scrub.dispositions:
            hit = sorted(facts.dispositions.intersection(scrub.dispositions))
            if hit:
                return Reason.SCRUBBED_DISPOSITION, f"An earlier call {where} had the disposition {hit[0]!r}."
    if scrub.opted_out and facts.opted_out:
        return Reason.SCRUBBED_OPTED_OUT, "The contact has opted out."
    if scrub.blocked and facts.blocked:
        return Reason.SCRUBBED_BLOCKED, "The contact is blocked."
    return None
