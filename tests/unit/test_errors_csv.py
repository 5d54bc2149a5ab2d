"""The error CSV's cells are safe to open in a spreadsheet: a cell a spreadsheet would run as a formula is
prefixed with a quote."""

from __future__ import annotations

import pytest

from leadimport.services.imports_api import neutralize

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("cell", ["=SUM(A1:A9)", "+16175550100", "-5", "@home", "\tcmd", "\rcmd"])
def test_every_formula_lead_character_is_neutralized(cell: str) -> None:
    assert neutralize(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "plain", "16175550100", "a=b", " =x", "'quoted"])
def test_other_cells_are_left_as_they_are(cell: str) -> None:
    assert neutralize(cell) == cell
