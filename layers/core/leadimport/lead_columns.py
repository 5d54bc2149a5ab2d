"""The column names with a meaning to the importer: the one list every module reads.

* DEDICATED_COLUMNS go to the lead's own columns and are never tokens (the guide: caller_id, email,
  expires_in, remote_ip); additional_data cannot use them either.
* RECOGNIZED_COLUMNS are matched in the file's header ignoring case and stored in lower case: the
  dedicated ones and `country` (the phone's country when it has no +prefix; it stays a token).
"""

from __future__ import annotations

from typing import Final

DEDICATED_COLUMNS: Final = ("caller_id", "email", "expires_in", "remote_ip")
RECOGNIZED_COLUMNS: Final = frozenset({*DEDICATED_COLUMNS, "country"})
