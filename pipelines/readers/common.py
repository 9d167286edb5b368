"""What every reader shares: the unit of work and the rows a reader emits."""

from __future__ import annotations

from dataclasses import dataclass

from thresher.schema import ERRORED, KEPT, SKIPPED, document_id, empty_row


@dataclass(frozen=True)
class Unit:
    """One input file; ``source`` is its path as the user named it, so ids do not depend on cwd."""

    source: str
    format: str | None  # None: the file's name matches no known format


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
