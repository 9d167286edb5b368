"""Input discovery and one streaming reader per format.

A reader turns one input file (a *unit* of work) into rows of ``thresher.schema.ROW_SCHEMA``,
a record at a time, never holding the whole file. Whatever goes wrong inside a file becomes an
``errored`` row naming the file and position; the reader never raises.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from thresher.pipelines.readers import files, jsonl, parquet, warc
from thresher.pipelines.readers.common import Unit, error_row, skipped_row

__all__ = ["SUFFIXES", "Unit", "detect_format", "discover", "file_size", "read_unit"]

SUFFIXES = {
    "warc": (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz"),
    "html": (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz"),
    "pdf": (".pdf",),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".json.gz", ".json.zst"),
    "parquet": (".parquet",),
}



def detect_format(path: str) -> str | None:
    name = path.lower()
    for fmt, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def discover(paths: list[str], fmt: str = "auto") -> list[Unit]:
    """Expand files, folders (recursively) and globs into units, sorted for a stable order."""
    found: dict[str, None] = {}
    for path in paths:
        matches = [path] if os.path.lexists(path) else sorted(glob.glob(path, recursive=True))
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, files in os.walk(match):
                    dirs.sort()
                    for name in sorted(files):
                        found[os.path.join(root, name)] = None
            else:
                found[match] = None
    units = []
    for source in found:
        units.append(Unit(source, detect_format(source) if fmt == "auto" else fmt))
    return units


def read_unit(unit: Unit, max_record_bytes: int) -> Iterator[dict]:
    """Rows for every record of one input file; no record over ``max_record_bytes`` is held."""
    if unit.format is None:
        yield skipped_row(unit, 0, "unsupported_file_type")
        return
    try:
        size = os.path.getsize(unit.source)
        if size == 0:
            yield error_row(unit, 0, "empty file")
            return
    except OSError as e:
        yield error_row(unit, 0, f"cannot open: {e.strerror or e}")
        return
    reader = {"warc": warc.read, "html": files.read_html, "pdf": files.read_pdf,
              "jsonl": jsonl.read, "parquet": parquet.read}[unit.format]
    try:
        yield from reader(unit, size, max_record_bytes)
    except Exception as e:  # a reader bug must not stop the job; it lands in errors/
        yield error_row(unit, -1, f"reader failed: {type(e).__name__}: {e}")


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

