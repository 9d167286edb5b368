"""``thresher train`` and ``thresher evaluate``.

Training holds out a stratified share of the labels (``test_size``, seeded, whole groups), fits
the scorer on 25%, 50% and 100% of the rest (a learning curve, every point measured on the same
held-out documents), and writes the 100% model: its card's metrics are held-out metrics of exactly
the weights shipped. For a quantised fastText model the same training without quantisation is measured
too, so the card says what compression cost. The directory is written beside ``out`` and swapped
into place only when complete.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from thresher.classifiers.labels import Labels, LabelsError, read_labels, stratified_fraction, stratified_split
from thresher.classifiers.metrics import evaluate
from thresher.classifiers.model_dir import CARD, ModelDirError, load_model, save_model, scorer_class

FRACTIONS = (0.25, 0.5, 1.0)
CURVE_METRICS = ("spearman", "f1_at_3", "auc_at_3", "mae")


class TrainingError(ValueError):
    """A training request that cannot be carried out as given (exit 2), one line."""


def _versions() -> dict:
    found = {"python": platform.python_version()}
    for package in ("thresher", "numpy", "scipy", "scikit-learn", "fasttext-numpy2-wheel"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def _log(message: str) -> None:
    print(f"thresher: {message}", file=sys.stderr, flush=True)


def _make_scorer(kind: str, params: dict):
    try:
        return scorer_class(kind)(**params)
    except (TypeError, ModelDirError) as e:
        raise TrainingError(f"--kind {kind} --param: {e}") from None


def train(data: list[str], out: str | Path, kind: str = "fasttext", params: dict | None = None,
          test_size: float = 0.2, seed: int = 0, command: str | None = None) -> dict:
    """Train, measure and write a model directory; returns its card."""
    out = Path(out)
    if out.exists() and not (out / CARD).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise TrainingError(f"--out {out}: exists and is not a model directory; refusing to replace it")
    scorer = _make_scorer(kind, params or {})
    labels = read_labels(data)
    classes = labels.classes
    train_idx, test_idx = stratified_split(classes, labels.groups, test_size, seed)
    if len(test_idx) == 0 or len(set(classes[train_idx])) < 2:
        raise LabelsError(f"--data: {len(labels.texts)} documents in {len(set(classes))} score classes: too few to train and hold out")
    test_texts, test_scores = labels.subset(test_idx)
    _log(f"{len(labels.texts)} labelled documents: {len(train_idx)} to train on, {len(test_idx)} held out")

    curve = []
    for fraction in FRACTIONS:
        subset = stratified_fraction(train_idx, classes, fraction, seed)
        model, seconds = _fit(scorer, labels, subset, {})
        predictions = model.predict(test_texts)
        metrics = evaluate(test_scores, predictions)
        curve.append({"fraction": fraction, "n_train": len(subset), **{k: metrics[k] for k in CURVE_METRICS}})
        _log(f"{fraction:.0%} of the training split ({len(subset)} documents): fit in {seconds:.1f} s, "
             + ", ".join(f"{k} {_fmt(metrics[k])}" for k in CURVE_METRICS))

    card = {
        "data": {
            "files": labels.files, "documents": len(labels.texts), "groups": len(set(labels.groups)),
            "train": len(train_idx), "test": len(test_idx),
            "test_size": test_size, "seed": seed,
            "score_counts": {str(c): int((classes == c).sum()) for c in sorted(set(classes.tolist()))},
        },
        "metrics": metrics,  # the last point of the curve: the model written
        "metrics_by_method": _by_method(labels, test_idx, test_scores, predictions),
        "learning_curve": curve,
    }
    if kind == "fasttext" and scorer.quantize:
        card["quantization"] = _quantization_cost(scorer, model, labels, train_idx, test_texts, test_scores)
    card["versions"] = _versions()
    card["command"] = command

    from thresher.classifiers.report import write_report

    staging = out.parent / f".{out.name}.staging-{os.getpid()}"  # beside out: the swap is a rename
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        card = save_model(model, staging, card)
        write_report(staging, card, test_scores, predictions)
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _by_method(labels: Labels, test_idx, test_scores, predictions) -> dict:
    """Held-out metrics per label method: weak rules can be easier to learn than the judgement
    they stand in for, and the overall figure would hide it."""
    methods = np.asarray([labels.methods[i] or "unknown" for i in test_idx], dtype=object)
    if len(set(methods)) < 2:
        return {}
    return {str(m): {k: v for k, v in evaluate(test_scores[methods == m], predictions[methods == m]).items()
                     if k in ("n", "positives", *CURVE_METRICS)} for m in sorted(set(methods))}


def _fit(scorer, labels: Labels, index, params: dict):
    from sklearn.base import clone

    texts, scores = labels.subset(index)
    start = time.perf_counter()
    model = clone(scorer).set_params(**params).fit(texts, scores)
    return model, time.perf_counter() - start


def _quantization_cost(scorer, quantized, labels, train_idx, test_texts, test_scores) -> dict:
    """The same training (same seed, one thread: the same weights before compression) unquantised."""
    full, _ = _fit(scorer, labels, train_idx, {"quantize": False})
    sides = {}
    for name, model in (("unquantized", full), ("quantized", quantized)):
        with tempfile.TemporaryDirectory() as tmp:
            (file,) = model.save_weights(Path(tmp))
            size = os.path.getsize(Path(tmp) / file)
        metrics = evaluate(test_scores, model.predict(test_texts))
        sides[name] = {"bytes": size, **{k: metrics[k] for k in CURVE_METRICS}}
    _log("quantisation: " + "; ".join(f"{name} {side['bytes'] / 1e6:.1f} MB, spearman {_fmt(side['spearman'])}, "
                                      f"f1_at_3 {_fmt(side['f1_at_3'])}" for name, side in sides.items()))
    return sides


def _swap(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        os.replace(staging, out)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate_model(model_dir: str | Path, data: list[str]) -> dict:
    """Metrics of a model directory's scorer on labelled documents."""
    model = load_model(model_dir)
    labels = read_labels(data)
    trained_on = {f["sha256"] for f in model.card_.get("data", {}).get("files", [])}
    overlap = [f["path"] for f in labels.files if f["sha256"] in trained_on]
    if overlap:
        _log(f"{', '.join(overlap)}: the model was trained on (most of) these labels; these are not held-out metrics "
             f"(the card's are)")
    return evaluate(labels.scores, model.predict(labels.texts))
