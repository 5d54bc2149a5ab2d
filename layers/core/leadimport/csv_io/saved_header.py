"""The file's header as the import keeps it (lead_imports.header, JSON): written once by the splitter, read back
by a resumed split and by the errors export of the part of a file that was never read."""

from __future__ import annotations

from typing import Any

from leadimport.csv_io.reader import CsvHeader


def header_to_json(header: CsvHeader, columns: list[str | None]) -> dict[str, Any]:
    return {"columns": header.columns, "delimiter": header.delimiter, "encoding": header.encoding,
            "data_offset": header.data_offset, "warnings": list(header.warnings), "mapped": columns}


def header_from_json(data: dict[str, Any]) -> CsvHeader:
    return CsvHeader(columns=list(data["columns"]), delimiter=data["delimiter"], encoding=data["encoding"],
                     data_offset=int(data["data_offset"]), warnings=list(data.get("warnings", [])))
