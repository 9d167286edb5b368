"""Files that hold one document each: HTML pages (optionally gzipped) and PDFs."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from thresher.pipelines.storage import open_binary
from thresher.pipelines.readers.common import document_row, error_row, too_large


def read_html(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    if unit.source.lower().endswith(".gz"):
        yield _read_one(unit, lambda: gzip.open(open_binary(unit.source)), "html", max_record_bytes)
    else:
        yield _read_one(unit, lambda: open_binary(unit.source), "html", max_record_bytes)


def read_pdf(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    yield _read_one(unit, lambda: open_binary(unit.source), "pdf", max_record_bytes)


def _read_one(unit, open_file, content_type: str, max_record_bytes: int) -> dict:
    try:
        with open_file() as f:
            raw = f.read(max_record_bytes + 1)
    except (OSError, EOFError) as e:
        return error_row(unit, 0, f"cannot read {content_type} file: {type(e).__name__}: {e}")
    if len(raw) > max_record_bytes:
        return too_large(unit, 0, max_record_bytes)
    return document_row(unit, 0, content_type=content_type, raw=raw)
