"""Composition root of the scheduled sweeps: stuck imports, splits to resume, and leads past their expiry."""

from __future__ import annotations

from leadimport import settings
from leadimport.imports import repository as import_repo
from leadimport.roots.continuation import continuation
from leadimport.roots.shared import database
from leadimport.services.lead_expiry import expire_due_leads
from leadimport.services.stuck_imports import mark_stuck_imports
from leadimport.services.token_reconciliation import reconcile_unchecked
from leadimport.store.tokens import shared_token_store

QUEUED_IDLE_SECONDS = 120  # a queued import with no progress this long lost its start: hand it on again


def mark_stuck() -> list[str]:
    return mark_stuck_imports(database(), settings.sweeps().stuck_after_minutes)


def resume_splits() -> list[str]:
    """Hand every split that should be running but is not (its splitter died, its continuation was lost) to
    the splitter again: it resumes from the checkpoint, sending byte-identical chunks."""
    resumed = import_repo.splits_to_resume(database(), QUEUED_IDLE_SECONDS)
    for import_id in resumed:
        continuation()(import_id)
    return resumed


def expire_leads() -> int:
    return expire_due_leads(database(), shared_token_store())


def reconcile_tokens() -> int:
    return reconcile_unchecked(database(), shared_token_store())
