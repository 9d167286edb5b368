"""What every reader shares: the unit of work and the rows a reader emits."""

from __future__ import annotations

from dataclasses import dataclass

from thresher.schema import ERRORED, KEPT, SKIPPED, document_id, empty_row


@dataclass(frozen=True)
class Unit:
    """One input file, or the records of one that start in the byte range [start, end).

    ``source`` is the path as the user named it, so ids do not depend on cwd. Ids come from a
    record's byte offset in the file, so they do not depend on how the file was split either.
    """

    source: str
    format: str | None  # None: the file's name matches no known format
    start: int = 0
    end: int | None = None  # None: to the end of the file


def document_row(unit: Unit, record: int, **values) -> dict:
    values.setdefault("id", document_id(unit.source, record))
    return empty_row(source=unit.source, record=record, format=unit.format, status=KEPT, **values)


def error_row(unit: Unit, record: int, message: str, **values) -> dict:
    values.setdefault("id", document_id(unit.source, record))
    return empty_row(source=unit.source, record=record, format=unit.format, status=ERRORED, stage="read",
                     reason=message, **values)


def skipped_row(unit: Unit, record: int, reason: str) -> dict:
    return empty_row(source=unit.source, record=record, format=unit.format, status=SKIPPED, stage="read", reason=reason)


def too_large(unit: Unit, record: int, max_record_bytes: int, **values) -> dict:
    return error_row(unit, record, f"record too large: over input.max_record_bytes={max_record_bytes}", **values)


def object_row(unit: Unit, record: int, obj: dict, max_record_bytes: int) -> dict:
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
