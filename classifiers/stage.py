"""The classify stage: ``edu_score`` (float 0-5) and ``edu_int`` for every kept document.

The whole batch is scored in one call (fastText's multi-line predict, one sparse matrix product
for scikit-learn): per document, the call overhead would cost as much as the scoring. With
``min_score`` set, a document scoring below it is dropped as ``low_edu_score`` (``mode: filter``)
or flagged ``classify:low_edu_score`` (``mode: tag``); with ``min_score: null`` nothing is dropped.

The model travels inside the stage: the driver reads the model directory's card and weight
files, each checked against the card's SHA-256, and the stage carries those bytes (about 1 MB for
the shipped model) to every Ray actor, wherever it runs, without the directory on that node. Each
process loads the model once, from a private copy of those bytes, checked again as it loads.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from thresher.classifiers.model_dir import CARD, load_model, read_model_files
from thresher.classifiers.scorer import edu_int
from thresher.config import ClassifyConfig
from thresher.filters.base import FilterStage
from thresher.schema import KEPT


_LOADED: dict[str, object] = {}  # per process: the model, by the digest of its files


def _model(files: dict[str, bytes], digest: str):
    if digest not in _LOADED:
        directory = tempfile.mkdtemp(prefix="thresher-model-")
        try:
            for name, data in files.items():
                Path(directory, name).write_bytes(data)
            _LOADED[digest] = load_model(directory)  # fastText and numpy read the weights into memory
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return _LOADED[digest]


class EduClassifier(FilterStage):
    stage = "classify"

    def __init__(self, config: ClassifyConfig):
        super().__init__(config.mode)
        self.min_score = config.min_score
        _, self.files = read_model_files(config.model)
        self.digest = hashlib.sha256(self.files[CARD]).hexdigest()  # the card names every weight file's SHA-256

    def score(self, texts: list[str]) -> np.ndarray:
        return _model(self.files, self.digest).predict(texts)

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
