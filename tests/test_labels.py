"""The committed educational-value label set (data/labels/labels.jsonl.gz) has what its CARD.md claims."""

import collections
import gzip
import json
from pathlib import Path

import pytest

LABELS = Path(__file__).resolve().parents[1] / "data" / "labels" / "labels.jsonl.gz"
METHODS = {"llama33", "hand", "weak_debian", "weak_spam", "weak_navigation"}
MIN_PER_SCORE = 100


@pytest.fixture(scope="module")
def rows():
    with gzip.open(LABELS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_size_and_every_score_present(rows):
    assert len(rows) >= 1500
    counts = collections.Counter(r["score"] for r in rows)
    assert set(counts) == set(range(6))
    assert min(counts.values()) >= MIN_PER_SCORE, counts


def test_no_score_swamps_the_set(rows):
    counts = collections.Counter(r["score"] for r in rows)
    assert max(counts.values()) <= 0.35 * len(rows) + 1, counts


def test_rows_are_well_formed(rows):
    for r in rows:
        assert isinstance(r["score"], int) and 0 <= r["score"] <= 5
        assert r["method"] in METHODS
        assert r["licence"] and r["source"] and r["group"] and r["id"]
        assert r["text"].strip()


def test_no_duplicate_texts_or_ids(rows):
    assert len({r["text"].strip() for r in rows}) == len(rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_real_labels_are_all_kept(rows):
    llama = [r for r in rows if r["method"] == "llama33"]
    assert len(llama) == 75
    assert collections.Counter(r["score"] for r in llama) == {2: 9, 3: 19, 4: 38, 5: 9}


def test_weak_labels_follow_their_rules(rows):
    for r in rows:
        if r["method"] in ("weak_spam", "weak_navigation"):
            assert r["score"] == 0
        if r["method"] == "weak_debian":
            assert r["source"].startswith("debian:") and 2 <= r["score"] <= 5
            assert 150 <= len(r["text"].split()) <= 1500
