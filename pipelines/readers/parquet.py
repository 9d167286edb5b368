"""Parquet files with ``text`` or ``html`` columns, streamed a row group batch at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.parquet as pq

from thresher.pipelines.storage import open_binary
from thresher.pipelines.readers.common import error_row, object_row

COLUMNS = ("id", "url", "text", "html")


def read(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    with open_binary(unit.source) as stream:
        yield from _rows(unit, stream, max_record_bytes)


def _rows(unit, stream, max_record_bytes: int) -> Iterator[dict]:
    try:
        parquet = pq.ParquetFile(stream)
    except Exception as e:
        yield error_row(unit, 0, f"not a readable Parquet file: {type(e).__name__}: {e}")
        return
    columns = [c for c in COLUMNS if c in parquet.schema_arrow.names]
    if not {"text", "html"} & set(columns):
        yield error_row(unit, 0, "Parquet file has neither a `text` nor an `html` column")
        return
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=256, columns=columns):
            for obj in batch.to_pylist():
                yield object_row(unit, row, obj, max_record_bytes)
                row += 1
    except Exception as e:
        yield error_row(unit, row, f"cannot read past row {row}: {type(e).__name__}: {e}")
