"""Input discovery and one streaming reader per format.

A reader turns one input file (a *unit* of work) into rows of ``thresher.schema.ROW_SCHEMA``,
a record at a time, never holding the whole file. Whatever goes wrong inside a file becomes an
``errored`` row naming the file and position; the reader never raises.
"""

from __future__ import annotations

from collections.abc import Iterator

from thresher.pipelines import storage
from thresher.pipelines.readers import files, jsonl, parquet, warc
from thresher.pipelines.readers.common import Unit, error_row, skipped_row

__all__ = ["SUFFIXES", "Unit", "detect_format", "discover", "file_size", "plan_work", "read_unit", "unit_bytes_for"]

SUFFIXES = {
    "warc": (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz"),
    "html": (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz"),
    "pdf": (".pdf",),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".json.gz", ".json.zst"),
    "parquet": (".parquet",),
}

_GROUP_FILES = 256
_UNITS_PER_INPUT = 64  # auto unit size: enough units to spread a single file over many cores
_MIN_UNIT_BYTES, _MAX_UNIT_BYTES = 1 << 20, 64 << 20


def detect_format(path: str) -> str | None:
    name = path.lower()
    for fmt, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def discover(paths: list[str], fmt: str = "auto") -> list[Unit]:
    """Expand files, folders (recursively) and globs, local or URIs, into units in a stable order."""
    found: dict[str, None] = {}
    for path in paths:
        found.update(dict.fromkeys(storage.expand(path)))
    return [Unit(source, detect_format(source) if fmt == "auto" else fmt) for source in found]


def unit_bytes_for(total_bytes: int) -> int:
    """The automatic unit size: 1/64 of the input, within 1-64 MB. It depends only on the input,
    never on the cluster, so a rerun on other machines cuts the same units."""
    return min(_MAX_UNIT_BYTES, max(_MIN_UNIT_BYTES, total_bytes // _UNITS_PER_INPUT))


def plan_work(files: list[Unit], unit_bytes: int) -> list[list[Unit]]:
    """Work items of about ``unit_bytes`` each: byte ranges of a large splittable WARC, whole
    files otherwise, small files packed together (a Ray task costs milliseconds to schedule;
    one per small HTML file would cost more than reading it)."""
    items, current, current_bytes = [], [], 0
    for unit in files:
        size = file_size(unit.source)
        if size > unit_bytes and unit.format == "warc" and warc.gzipped_per_record(unit.source):
            items.extend([Unit(unit.source, unit.format, start, min(start + unit_bytes, size))]
                         for start in range(0, size, unit_bytes))
            continue
        if current and (current_bytes + size > unit_bytes or len(current) >= _GROUP_FILES):
            items.append(current)
            current, current_bytes = [], 0
        current.append(unit)
        current_bytes += size
    if current:
        items.append(current)
    return items


def read_unit(unit: Unit, max_record_bytes: int) -> Iterator[dict]:
    """Rows for every record of one input file; no record over ``max_record_bytes`` is held."""
    if unit.format is None:
        yield skipped_row(unit, 0, "unsupported_file_type")
        return
    try:
        with storage.open_binary(unit.source) as probe:
            empty = not probe.read(1)
    except OSError as e:
        yield error_row(unit, 0, f"cannot open: {e.strerror or e}")
        return
    if empty:
        yield error_row(unit, 0, "empty file")
        return
    size = file_size(unit.source)
    reader = {"warc": warc.read, "html": files.read_html, "pdf": files.read_pdf,
              "jsonl": jsonl.read, "parquet": parquet.read}[unit.format]
    try:
        yield from reader(unit, size, max_record_bytes)
    except Exception as e:  # a reader bug must not stop the job; it lands in errors/
        yield error_row(unit, -1, f"reader failed: {type(e).__name__}: {e}")


def file_size(path: str) -> int:
    return storage.size(path)

