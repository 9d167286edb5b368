"""The language stage: fastText's lid.176 identifier with FineWeb's rule, datatrove's
``LanguageFilter(languages=["en"], language_threshold=0.65)``.

The decision is datatrove's, so ``tests/test_language.py`` runs datatrove's filter as the oracle:
the text is predicted with newlines turned into spaces, over every label (``k=-1``), and a document
is kept when any kept language scores strictly above ``min_score``. With a threshold of 0.5 or more
that is "the top language is kept and scores above the threshold", since scores sum to one.

Two differences from datatrove, both on purpose:

- ``keep: null`` labels only; datatrove's ``languages=None`` still drops documents whose top
  score is at or under the threshold.
- a text with nothing but whitespace gets no language and is dropped as ``language_no_text``;
  fastText would answer with its prior (English, 0.12), a label that says nothing about the text.

The model is the compressed ``lid.176.ftz`` shipped in ``data/models`` (see its SOURCES.md), found
from this file: the source tree's ``data/models`` in an editable install, ``thresher/data/models``
in a wheel that maps that folder as package data. It is run by ``fasttext_lid``, which gives the
fasttext package's scores bit for bit, ~4x sooner (``tests/test_language.py`` checks both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from thresher.config import LanguageConfig
from thresher.filters.base import FilterStage

if TYPE_CHECKING:
    from thresher.filters.fasttext_lid import LanguageIdentifier

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


class ModelChecksumError(ValueError):
    pass


@dataclass(frozen=True)
class ModelFile:
    """A model file and the SHA-256 it must have: fastText parses whatever it is given, so a file
    that is not the one pinned here (truncated, swapped, tampered with) is refused before that."""

    path: Path
    sha256: str

    def load(self) -> LanguageIdentifier:
        return _load_verified(Path(self.path), self.sha256)


@cache  # once per process: stages are pickled to Ray workers without the model
def _load_verified(path: Path, sha256: str) -> LanguageIdentifier:
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} is missing (an editable install reads data/models from the source tree; a wheel must carry it as package data)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelChecksumError(f"model file {path} has SHA-256 {digest}, expected {sha256}: refusing to load it")
    # Imported here, where a text is about to be identified: numba's import (0.2 s) then stays
    # out of the driver, which only builds the stage before starting Ray.
    from thresher.filters.fasttext_lid import LanguageIdentifier

    return LanguageIdentifier(data)


LID176 = ModelFile(MODELS / "lid.176.ftz", "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83")


class LanguageFilter(FilterStage):
    stage = "language"

    def __init__(self, config: LanguageConfig, model: ModelFile = LID176):
        super().__init__(config.mode)
        self.keep = config.keep
        self.min_score = config.min_score
        self.model = model

    def identify(self, text: str) -> tuple[str, float, float]:
        """(top language, its score, the best score of a kept language: 0.0 if none scored)."""
        model = self.model.load()
        scores = model.scores(text)
        top = int(scores.argmax())
        kept = max((scores[i] for i in model.indices(self.keep or ())), default=0.0)
        return model.labels[top], float(scores[top]), max(float(kept), 0.0)

    def process(self, row: dict) -> str | None:
        text = row["text"] or ""
        if text.isspace() or not text:
            row["language"] = row["language_score"] = None
            return None if self.keep is None else "language_no_text"
        top, score, kept = self.identify(text)
        row["language"], row["language_score"] = top, score
        if self.keep is None or kept > self.min_score:
            return None
        return "language_low_score" if top in self.keep else f"language_{top}"
