"""fastText supervised classifier over the six scores, read out as a continuous score.

fastText learns one class per integer score (0-5). Its class probabilities give ``edu_score`` as
their expected value, sum(p_k * k): a continuous score that ranks documents (Spearman, AUC) where
the top class alone would tie most of them, and whose rounding is ``edu_int``.

Training runs on one thread with a fixed seed, so the same labels give the same weights, byte for
byte: the shipped model can be rebuilt and checked. Each training runs in a fresh process: in one
process, a second training with identical arguments gave other weights (and a third "Encountered
NaN"), while fresh processes always agree, so a training leaves state behind that the next one
reads. ``quantize`` compresses the model (product quantisation, fastText.zip) into a .ftz of a few
MB; the training report measures what that costs.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from thresher.classifiers.scorer import MAX_SCORE, EduScorer, edu_int

_LABEL = "__label__"
# fastText splits words on whitespace only: "learn," and "learn" would be two unrelated words.
# Punctuation becomes a token of its own and case is folded. One str.replace per character that
# occurs is ~5x faster than str.translate or a regex (whose multi-character replacements take
# CPython's slow path): 45 against 240 us for a 500-word page, where predicting takes ~200 us.
_PUNCTUATION = string.punctuation + "“”‘’–—…«»"


# Train (and quantise) in a child process and save the model to a file the parent loads.
_TRAIN = """
import json, sys, fasttext
job = json.loads(sys.argv[1])
model = fasttext.train_supervised(**job["train"])
if job["quantize"]:
    model.quantize(**job["quantize"])
model.save_model(job["out"])
"""


def fasttext_line(text: str) -> str:
    """The one-line, tokenised, lower-cased form fastText is trained on and asked about."""
    text = text.lower()
    for mark in _PUNCTUATION:
        if mark in text:
            text = text.replace(mark, f" {mark} ")
    return text.replace("\n", " ")


class FastTextScorer(EduScorer):
    kind = "fasttext"

    # Defaults chosen by 3-fold cross-validation inside the training split of data/labels (the
    # held-out split unseen). cutoff keeps the 30,000 strongest words and n-grams: a quantised
    # model of ~1 MB that predicts 3x faster than with 100,000 (words it drops are never looked up).
    def __init__(self, *, dim: int = 32, epoch: int = 25, lr: float = 1.0, word_ngrams: int = 2,
                 min_count: int = 2, bucket: int = 200_000, seed: int = 0,
                 quantize: bool = True, cutoff: int = 30_000):
        self.dim = dim
        self.epoch = epoch
        self.lr = lr
        self.word_ngrams = word_ngrams
        self.min_count = min_count
        self.bucket = bucket
        self.seed = seed
        self.quantize = quantize
        self.cutoff = cutoff

    def fit(self, texts: Sequence[str], scores: Sequence[float]) -> FastTextScorer:
        import fasttext

        classes = edu_int(np.asarray(scores, dtype=float))
        with tempfile.TemporaryDirectory(prefix="thresher-fasttext-") as tmp:
            train_path = os.path.join(tmp, "train.txt")
            with open(train_path, "w", encoding="utf-8") as f:
                for text, label in zip(texts, classes):
                    f.write(f"{_LABEL}{label} {fasttext_line(text)}\n")
            job = {
                "train": dict(input=train_path, dim=self.dim, epoch=self.epoch, lr=self.lr, wordNgrams=self.word_ngrams,
                              minCount=self.min_count, bucket=self.bucket, seed=self.seed, loss="softmax",
                              thread=1, verbose=0),
                "quantize": self.quantize and dict(input=train_path, retrain=True, cutoff=self.cutoff, qnorm=True,
                                                   thread=1, verbose=0),
                "out": os.path.join(tmp, self.weight_files[0]),
            }
            done = subprocess.run([sys.executable, "-c", _TRAIN, json.dumps(job)], capture_output=True, text=True)
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise RuntimeError(f"fastText training failed: {error}")
            self._set_model(fasttext.load_model(job["out"]))
        return self

    def _set_model(self, model) -> None:
        self.model_ = model
        self.label_values_ = {label: float(label.removeprefix(_LABEL)) for label in model.get_labels()}

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        labels, probs = self.model_.predict([fasttext_line(t) for t in texts], k=-1)
        values = self.label_values_
        return np.array([sum(p * values[label] for label, p in zip(ls, ps)) for ls, ps in zip(labels, probs)],
                        dtype=np.float64).clip(0, MAX_SCORE)

    @property
    def weight_files(self) -> list[str]:
        return ["model.ftz" if self.quantize else "model.bin"]

    def save_weights(self, directory: Path) -> list[str]:
        self.model_.save_model(str(Path(directory) / self.weight_files[0]))
        return self.weight_files

    def load_weights(self, directory: Path) -> FastTextScorer:
        import fasttext

        self._set_model(fasttext.load_model(str(Path(directory) / self.weight_files[0])))
        return self
