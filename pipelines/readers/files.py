"""Files that hold one document each: HTML pages (optionally gzipped) and PDFs."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from thresher.schema import KEPT, document_id, empty_row


def read_html(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    opener = gzip.open if unit.source.lower().endswith(".gz") else open
    yield _read_one(unit, lambda: opener(unit.source, "rb"), "html", max_record_bytes)


def read_pdf(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    yield _read_one(unit, lambda: open(unit.source, "rb"), "pdf", max_record_bytes)


def _read_one(unit, open_file, content_type: str, max_record_bytes: int) -> dict:
    from thresher.pipelines.readers import error_row

    try:
        with open_file() as f:
            raw = f.read(max_record_bytes + 1)
    except (OSError, EOFError) as e:
        return error_row(unit, 0, f"cannot read {content_type} file: {type(e).__name__}: {e}")
    if len(raw) > max_record_bytes:
        return error_row(unit, 0, f"record too large: over input.max_record_bytes={max_record_bytes}")
    return empty_row(
        id=document_id(unit.source, 0), source=unit.source, record=0, format=unit.format,
        status=KEPT, content_type=content_type, raw=raw,
    )
