"""Composition root of the scheduled sweeps (stuck imports)."""

from __future__ import annotations

from leadimport import settings
from leadimport.roots.shared import database
from leadimport.services.stuck_imports import mark_stuck_imports


def mark_stuck() -> list[str]:
    return mark_stuck_imports(database(), settings.sweeps().stuck_after_minutes)
