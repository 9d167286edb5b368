"""A model directory: weight files plus ``card.json``, and the only way a model is loaded.

The card names the scorer (``kind``), its parameters, the SHA-256 of every weight file, and what
training measured (data hashes, metrics, library versions). ``load_model`` reads nothing else
before every listed file matches its checksum: a truncated, swapped or tampered weight file is
refused with ``ModelDirError``. Nothing is unpickled at all (fastText's own binary format;
numpy arrays with ``allow_pickle=False``): the checksums guard integrity, the formats guard
against code execution from a directory a user points at.

This module imports no model library, so the config can check a model directory cheaply.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

CARD = "card.json"
# The shipped model, found from this file: the source tree's data/models/edu in an editable
# install, thresher/data/models/edu in a wheel that maps that folder as package data.
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "edu"
SCORERS = {
    "fasttext": "thresher.classifiers.fasttext_scorer:FastTextScorer",
    "sklearn": "thresher.classifiers.linear_scorer:LinearScorer",
}


class ModelDirError(ValueError):
    """A model directory that cannot be used, phrased as one line."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scorer_class(kind: str):
    if kind not in SCORERS:
        raise ModelDirError(f"unknown model kind {kind!r} (known: {', '.join(SCORERS)})")
    module, name = SCORERS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def read_model_files(directory: str | Path) -> tuple[dict, dict[str, bytes]]:
    """(card, {file name: bytes}) of a model directory: ``card.json`` and every weight file it
    lists, each checked against the card's SHA-256 in memory, so what is returned is what was
    checked. The bytes are the model in transit, for a process that cannot see the directory (a
    Ray actor on another node)."""
    directory = Path(directory)
    card_bytes = _read_bytes(directory / CARD)
    if card_bytes is None:
        raise ModelDirError(f"{directory}: no {CARD}: not a model directory (make one with `thresher train`)")
    try:
        card = json.loads(card_bytes.decode("utf-8"))
    except ValueError as e:
        raise ModelDirError(f"{directory / CARD}: unreadable: {e}") from None
    if not isinstance(card, dict) or card.get("kind") not in SCORERS or not isinstance(card.get("files"), dict) or not card["files"]:
        raise ModelDirError(f"{directory / CARD}: not a model card (needs kind: {' or '.join(SCORERS)}, params and files)")
    files = {CARD: card_bytes}
    for name, expected in card["files"].items():
        if Path(name).name != name or name == CARD:
            raise ModelDirError(f"{directory / CARD}: {name!r} is not a weight file name inside the model directory")
        data = _read_bytes(directory / name)
        if data is None:
            raise ModelDirError(f"{directory}: weight file {name!r} listed in the card is missing")
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelDirError(f"{directory / name}: SHA-256 {actual} does not match the card's {expected}: refusing to load it")
        files[name] = data
    return card, files


def read_card(directory: str | Path) -> dict:
    """The card of a model directory, after checking that every weight file it lists is intact."""
    return read_model_files(directory)[0]


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def load_model(directory: str | Path):
    """The fitted scorer of a model directory, its weights verified first."""
    card = read_card(directory)
    try:
        scorer = scorer_class(card["kind"])(**card.get("params", {}))
    except TypeError as e:
        raise ModelDirError(f"{Path(directory) / CARD}: parameters do not fit a {card['kind']} model: {e}") from None
    unverified = sorted(set(scorer.weight_files) - set(card["files"]))
    if unverified:  # the card's parameters would have the scorer read a file whose checksum the card lacks
        raise ModelDirError(f"{Path(directory) / CARD}: lists no SHA-256 for {unverified[0]}, which its parameters load")
    scorer = scorer.load_weights(Path(directory))
    scorer.card_ = card
    return scorer


def save_model(scorer, directory: str | Path, card: dict) -> dict:
    """Write the scorer's weights and a card (``card`` plus kind, params and the files' SHA-256)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = scorer.save_weights(directory)
    card = {"kind": scorer.kind, "params": scorer.get_params(),
            "files": {name: sha256_file(directory / name) for name in files}, **card}
    (directory / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
