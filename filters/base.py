"""What every per-document filter stage shares: the keep | (drop, reason) contract over Arrow
batches, the two modes, and error isolation.

A stage implements ``process(row) -> reason | None``. It may set columns on the row (signals,
redacted text) and returns the reason it would drop the document, or None to keep it. The mode
decides what a reason does:

- ``filter``: the row becomes ``rejected`` with ``stage`` and ``reason``;
- ``tag``: nothing is dropped, the verdict is appended to the row's ``flags`` as
  ``"stage:reason"`` so a team can re-threshold later from the written signals.

An exception on one document makes that row ``errored`` at this stage; the batch goes on.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from thresher.schema import ERRORED, KEPT, REJECTED, rows_to_table

Mode = Literal["filter", "tag"]


class FilterStage:
    stage: str = ""

    def __init__(self, mode: Mode = "filter"):
        self.mode = mode

    def process(self, row: dict) -> str | None:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        for row in rows:
            if row["status"] != KEPT:
                continue
            try:
                reason = self.process(row)
            except Exception as e:  # one bad document must not stop the batch
                row.update(status=ERRORED, stage=self.stage, reason=f"{self.stage} failed: {type(e).__name__}: {e}")
                continue
            if reason is None:
                continue
            if self.mode == "filter":
                row.update(status=REJECTED, stage=self.stage, reason=reason)
            else:
                row["flags"] = [*(row["flags"] or []), f"{self.stage}:{reason}"]
        return rows_to_table(rows)
