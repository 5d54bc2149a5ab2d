"""leadimport benchmarks: `make bench` (`.venv/bin/python -m benchmarks.run`). Not part of the test suite.

See benchmarks/README.md.
"""
