"""The classify stage: ``edu_score`` (float 0-5) and ``edu_int`` for every kept document.

The whole batch is scored in one call (fastText's multi-line predict, one sparse matrix product
for scikit-learn): per document, the call overhead would cost as much as the scoring. With
``min_score`` set, a document scoring below it is dropped as ``low_edu_score`` (``mode: filter``)
or flagged ``classify:low_edu_score`` (``mode: tag``); with ``min_score: null`` nothing is dropped.

The stage is pickled to each Ray actor without its model; the model is loaded once per process,
from the directory the config named, after the card is found unchanged since the config was
checked and every weight file matches the card's SHA-256.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.classifiers.model_dir import CARD, ModelDirError, load_model, sha256_file
from thresher.classifiers.scorer import edu_int
from thresher.config import ClassifyConfig
from thresher.filters.base import FilterStage
from thresher.schema import KEPT


@cache  # once per process
def _model(directory: str, card_sha256: str):
    found = sha256_file(Path(directory) / CARD)
    if found != card_sha256:
        raise ModelDirError(f"{directory}/{CARD} changed since the run was configured: refusing to load it")
    return load_model(directory)


class EduClassifier(FilterStage):
    stage = "classify"

    def __init__(self, config: ClassifyConfig):
        super().__init__(config.mode)
        self.model_dir = config.model
        self.min_score = config.min_score
        self.card_sha256 = sha256_file(Path(config.model) / CARD)

    def score(self, texts: list[str]) -> np.ndarray:
        return _model(self.model_dir, self.card_sha256).predict(texts)

    def __call__(self, batch: pa.Table) -> pa.Table:
        kept = pc.equal(batch.column("status"), KEPT).to_numpy(zero_copy_only=False)
        scores = np.zeros(len(batch))
        if kept.any():
            texts = batch.column("text").filter(kept).to_pylist()
            scores[kept] = self.score([text or "" for text in texts])
        for name, values in (("edu_score", pa.array(scores, mask=~kept)), ("edu_int", pa.array(edu_int(scores), mask=~kept))):
            batch = batch.set_column(batch.schema.get_field_index(name), name, values)
        return batch if self.min_score is None else super().__call__(batch)

    def process(self, row: dict) -> str | None:
        return "low_edu_score" if row["edu_score"] < self.min_score else None
