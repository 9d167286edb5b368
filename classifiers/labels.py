"""Labelled documents for ``train`` / ``evaluate``: reading, checking, splitting.

Labels are JSONL (plain, .gz, .zst) or Parquet rows with ``text`` and ``score`` (0-5, integer or
float), an optional ``group`` and an optional ``method`` (how the score was given: by hand, by
an LLM, by a weak rule; the training report gives held-out metrics per method); other columns are
ignored. A text met twice (across files too) is
kept once, the first time, and documents of one group (chunks of one page or manual, a page and
its boilerplate) stay on one side of a split: the same text, or a near copy, on both sides would
flatter the held-out metrics.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thresher.classifiers.model_dir import sha256_file
from thresher.classifiers.scorer import MAX_SCORE, edu_int


class LabelsError(ValueError):
    """Labels that cannot be used, phrased as one line naming the file (and line or row)."""


@dataclass
class Labels:
    texts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # a document without a group is a group of its own
    methods: list[str | None] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)  # path, sha256, rows, duplicates

    @property
    def classes(self) -> np.ndarray:
        """Each document's integer score, the strata of a split."""
        return edu_int(np.asarray(self.scores, dtype=float))

    def subset(self, index: np.ndarray) -> tuple[list[str], np.ndarray]:
        return [self.texts[i] for i in index], np.asarray(self.scores, dtype=float)[index]


def _jsonl_rows(path: Path):
    opener = {".gz": lambda p: gzip.open(p, "rb"), ".zst": _zstd_open}.get(path.suffix, lambda p: open(p, "rb"))
    with opener(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise LabelsError(f"{path}:{number}: not JSON: {e}") from None
            if not isinstance(row, dict):
                raise LabelsError(f"{path}:{number}: not a JSON object")
            yield f"{path}:{number}", row


def _zstd_open(path: Path):
    import zstandard

    return zstandard.open(path, "rb")


def _parquet_rows(path: Path):
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    missing = [c for c in ("text", "score") if c not in schema.names]
    if missing:
        raise LabelsError(f"{path}: no {missing[0]!r} column")
    table = pq.read_table(path, columns=[c for c in ("text", "score", "group", "method") if c in schema.names])
    for number, row in enumerate(table.to_pylist()):
        yield f"{path} row {number}", row


def _check(where: str, row: dict) -> tuple[str, float, str, str | None]:
    text, score, group, method = row.get("text"), row.get("score"), row.get("group"), row.get("method")
    if not isinstance(text, str) or not text.strip():
        raise LabelsError(f"{where}: `text` must be a non-empty string")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score) or not 0 <= score <= MAX_SCORE:
        raise LabelsError(f"{where}: `score` must be a number from 0 to {MAX_SCORE}, not {score!r}")
    for name, value in (("group", group), ("method", method)):
        if value is not None and not isinstance(value, str):
            raise LabelsError(f"{where}: `{name}` must be a string or null, not {value!r}")
    return text, float(score), f"\0{where}" if group is None else group, method


def read_labels(paths: list[str | Path]) -> Labels:
    labels, seen = Labels(), set()
    for path in map(Path, paths):
        if not path.is_file():
            raise LabelsError(f"{path}: no such file")
        if path.suffix == ".parquet":
            rows = _parquet_rows(path)
        elif path.name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".ndjson")):
            rows = _jsonl_rows(path)
        else:
            raise LabelsError(f"{path}: unknown format (expected .jsonl, .jsonl.gz, .jsonl.zst or .parquet)")
        count = duplicates = 0
        for where, row in rows:
            text, score, group, method = _check(where, row)
            count += 1
            if text in seen:
                duplicates += 1
                continue
            seen.add(text)
            labels.texts.append(text)
            labels.scores.append(score)
            labels.groups.append(group)
            labels.methods.append(method)
        if count == 0:
            raise LabelsError(f"{path}: no labelled documents")
        labels.files.append({"path": str(path), "sha256": sha256_file(path), "rows": count, "duplicates": duplicates})
    return labels


def _class_orders(classes: np.ndarray, seed: int) -> list[np.ndarray]:
    """Each class's positions in a seeded random order."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(classes == c)) for c in np.unique(classes)]


def stratified_split(classes: np.ndarray, groups: list[str], test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions, whole groups on one side, each class near its share in test.

    Groups are visited in a seeded random order; one goes to test while that keeps every class it
    holds within its quota (``test_size`` of the class, rounded), so a class of one document, or a
    group bigger than its class's quota, stays in train.
    """
    keys, group_of = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    members = np.split(np.argsort(group_of, kind="stable"), np.cumsum(np.bincount(group_of))[:-1])
    present, totals = np.unique(classes, return_counts=True)
    quota = dict(zip(present.tolist(), (np.rint(test_size * totals)).tolist()))
    taken = dict.fromkeys(quota, 0)
    test = []
    for g in np.random.default_rng(seed).permutation(len(keys)):
        counts = collections.Counter(classes[members[g]].tolist())
        if all(taken[c] + n <= quota[c] for c, n in counts.items()):
            test.extend(members[g])
            for c, n in counts.items():
                taken[c] += n
    in_test = np.zeros(len(classes), bool)
    in_test[test] = True
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def stratified_fraction(index: np.ndarray, classes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A share of ``index`` keeping its class balance; for one seed a smaller share is a subset of
    a larger one, so a learning curve adds documents rather than drawing new ones."""
    chosen = [order[: max(1, round(fraction * len(order)))] for order in _class_orders(classes[index], seed)]
    return np.sort(index[np.concatenate(chosen)])
