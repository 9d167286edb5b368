"""JSON Lines (plain, .gz, .zst) with ``text`` or ``html`` per row, streamed line by line."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator

from thresher.pipelines.storage import open_binary
from thresher.pipelines.readers.common import error_row, object_row


class MalformedLine(ValueError):
    """A JSON Lines line that is not a JSON object, phrased as one line naming the file and line."""


def _open_text(path: str):
    """A JSON Lines file (plain, .gz, .zst, local or a URI) as text lines."""
    lower, raw = path.lower(), open_binary(path)
    if lower.endswith(".gz"):
        return gzip.open(raw, "rt", encoding="utf-8", errors="replace")
    if lower.endswith(".zst"):
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), encoding="utf-8", errors="replace")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def json_objects(path: str) -> Iterator[tuple[int, dict]]:
    """(line number from 1, object) of each non-blank line; MalformedLine for the first line that
    is not a JSON object. For files read whole or not at all (benchmarks, blend sources), where
    ``read`` turns each bad line of an input into an error row and goes on."""
    with _open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise MalformedLine(f"{path}: line {number}: malformed JSON: {e}") from None
            if not isinstance(obj, dict):
                raise MalformedLine(f"{path}: line {number}: a {type(obj).__name__}, not an object")
            yield number, obj


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
