"""CSV reading for the importer: header checks, streaming rows with byte offsets, column mapping, chunks."""

from leadimport.csv_io.chunker import chunk_rows, estimate_row_bytes, fit_rows
from leadimport.csv_io.mapping import (
    RESERVED_COLUMNS,
    ResolvedColumns,
    apply,
    likely_phone_column,
    mapped_phone_column,
    propose_mapping,
    resolve_columns,
)
from leadimport.csv_io.reader import (
    DELIMITERS,
    CsvHeader,
    CsvLimits,
    CsvRow,
    FileRejectedError,
    iter_rows,
    no_data_rows_error,
    open_csv,
    read_header,
)

__all__ = [
    "DELIMITERS",
    "RESERVED_COLUMNS",
    "CsvHeader",
    "CsvLimits",
    "CsvRow",
    "FileRejectedError",
    "ResolvedColumns",
    "apply",
    "chunk_rows",
    "estimate_row_bytes",
    "fit_rows",
    "iter_rows",
    "likely_phone_column",
    "mapped_phone_column",
    "propose_mapping",
    "no_data_rows_error",
    "open_csv",
    "read_header",
    "resolve_columns",
]
