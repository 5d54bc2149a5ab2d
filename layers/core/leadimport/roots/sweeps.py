"""Composition root of the scheduled sweeps: stuck imports, and leads past their expiry."""

from __future__ import annotations

from leadimport import settings
from leadimport.roots.shared import database
from leadimport.services.lead_expiry import expire_due_leads
from leadimport.services.stuck_imports import mark_stuck_imports
from leadimport.store.tokens import shared_token_store


def mark_stuck() -> list[str]:
    return mark_stuck_imports(database(), settings.sweeps().stuck_after_minutes)


def expire_leads() -> int:
    return expire_due_leads(database(), shared_token_store())
