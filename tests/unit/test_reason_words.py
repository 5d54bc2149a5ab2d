"""Every rejection reason and warning code has words for people (the page shows them beside the code)."""

from __future__ import annotations

from leadimport.reasons import WORDS, Reason, RowWarning


def test_every_code_has_words() -> None:
    codes = {str(c) for c in Reason} | {str(c) for c in RowWarning}
    assert codes == {str(c) for c in WORDS}
    assert all(isinstance(words, str) and words and words != str(code) for code, words in WORDS.items())
