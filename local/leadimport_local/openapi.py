"""Regenerate docs/openapi.json from the API's routes (`make openapi`); a test fails when they drift."""

from __future__ import annotations

import json
import sys

from leadimport_local.runner import REPO_ROOT, load_handler

TARGET = REPO_ROOT / "docs" / "openapi.json"


def main() -> int:
    load_handler("api")
    api = sys.modules["leadimport_function_api"].api
    document = json.loads(api.get_openapi_json_schema(title="leadimport API", version="1.0.0"))
    TARGET.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO_ROOT)} ({len(document['paths'])} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
