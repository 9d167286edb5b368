"""JSON Lines (plain, .gz, .zst) with ``text`` or ``html`` per row, streamed line by line."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator

from thresher.pipelines.readers.common import document_row, error_row, too_large


def _open_text(path: str):
    lower = path.lower()
    if lower.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if lower.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def object_row(unit, record: int, obj: dict, max_record_bytes: int) -> dict:
    """A row from a JSON object or Parquet row: ``text`` passes through, ``html`` is extracted."""
    url = obj.get("url") if isinstance(obj.get("url"), str) else None
    ids = {} if obj.get("id") is None else {"id": str(obj["id"])}
    text, html = obj.get("text"), obj.get("html")
    if isinstance(text, str):
        fields = {"text": text}
    elif isinstance(html, (str, bytes)):
        raw = html.encode("utf-8") if isinstance(html, str) else html
        fields = {"raw": raw, "content_type": "html", "charset": "utf-8" if isinstance(html, str) else None}
    else:
        return error_row(unit, record, "row has no string `text` or `html` field", url=url, **ids)
    if len(fields.get("text") or fields.get("raw")) > max_record_bytes:
        return too_large(unit, record, max_record_bytes, url=url, **ids)
    return document_row(unit, record, url=url, **ids, **fields)


def read(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    with _open_text(unit.source) as lines:
        line_no = 0
        try:
            for line_no, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield error_row(unit, line_no, f"malformed JSON: {e}")
                    continue
                if not isinstance(obj, dict):
                    yield error_row(unit, line_no, f"JSON line is a {type(obj).__name__}, not an object")
                    continue
                yield object_row(unit, line_no, obj, max_record_bytes)
        except (OSError, EOFError, ValueError) as e:  # truncated .gz / .zst
            yield error_row(unit, line_no + 1, f"cannot read past line {line_no}: {type(e).__name__}: {e}")
