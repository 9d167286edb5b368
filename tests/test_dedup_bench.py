"""The near-duplicate benchmark's yardstick: the pair scorer and the reader of a thresher run's
output on hand-checkable clusters of real document ids, and the quality-set generator."""

import hashlib
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from dedup_data import QualitySet  # noqa: E402
from dedup_quality import Predictions, pair_scores  # noqa: E402

RAILS = "dedup/cs336/documents_with_fuzzy_duplicates/rails_mit_license.txt"
REACT = "dedup/cs336/documents_with_fuzzy_duplicates/react_mit_license.txt"
TORCH = "dedup/cs336/documents_with_fuzzy_duplicates/pytorch_license.txt"
DOC1 = "dedup/cs336/documents_with_line_duplicates/doc1.txt"
DOC2 = "dedup/cs336/documents_with_line_duplicates/doc2.txt"
TAG_PAGE = "dedup/dolma_paragraph/documents.jsonl.gz#1"  # advocatesaz.org/tag/good-cholesterol/
OTHER_TAG_PAGE = "dedup/dolma_paragraph/documents.jsonl.gz#0"  # same site, shares half its paragraphs
# True clusters: {rails, react} (1 pair), {torch}, {doc1, doc2} (1 pair), {tag page, 2 copies} (3 pairs).
TRUTH = {RAILS: "mit", REACT: "mit", TORCH: "torch", DOC1: "crawler", DOC2: "crawler",
         TAG_PAGE: "tag", TAG_PAGE + "~copy1": "tag", TAG_PAGE + "~copy2": "tag"}
IDS = list(TRUTH)


def score(pred: dict):
    return pair_scores([TRUTH[i] for i in IDS], [pred[i] for i in IDS])


def test_perfect_prediction_scores_one_whatever_the_labels():
    s = score({i: f"other-name-{c}" for i, c in TRUTH.items()})
    assert (s.true_pairs, s.pred_pairs, s.tp) == (5, 5, 5)
    assert s.precision == s.recall == s.f1 == 1.0


def test_one_missed_pair_lowers_recall_only():
    pred = dict(TRUTH, **{REACT: "react alone"})
    s = score(pred)
    assert (s.pred_pairs, s.tp) == (4, 4)
    assert s.precision == 1.0 and s.recall == pytest.approx(4 / 5)
    assert s.f1 == pytest.approx(2 * 0.8 / 1.8)


def test_one_merged_cluster_lowers_precision_only():
    s = score(dict(TRUTH, **{TORCH: "mit"}))  # {rails, react, torch}: 3 pairs, 2 of them wrong
    assert (s.pred_pairs, s.tp) == (7, 5)
    assert s.precision == pytest.approx(5 / 7) and s.recall == 1.0


def test_reads_a_thresher_output_folder(tmp_path):
    # The kept document carries dup_cluster; a rejected copy points to it with duplicate_of only;
    # a document missing from the output (another stage dropped it) counts as a singleton.
    (tmp_path / "documents").mkdir()
    (tmp_path / "rejected").mkdir()
    kept = [{"id": RAILS, "dup_cluster": "c1"}, {"id": TORCH, "dup_cluster": None}, {"id": DOC1, "dup_cluster": "c2"},
            {"id": TAG_PAGE, "dup_cluster": "c3"}, {"id": TAG_PAGE + "~copy1", "dup_cluster": "c3"}]
    rejected = [{"id": REACT, "dup_cluster": None, "duplicate_of": RAILS},
                {"id": DOC2, "dup_cluster": "c2", "duplicate_of": DOC1}]
    pq.write_table(pa.Table.from_pylist(kept), tmp_path / "documents/part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rejected), tmp_path / "rejected/part-00000.parquet")
    labels, missing, unknown = Predictions(str(tmp_path)).labels(IDS)
    assert (missing, unknown) == (1, 0)
    s = pair_scores([TRUTH[i] for i in IDS], labels)
    assert (s.pred_pairs, s.tp) == (3, 3)  # the 2 pairs of the missing copy2 are lost
    assert s.recall == pytest.approx(3 / 5)


@pytest.fixture(scope="module")
def quality_set():
    return QualitySet(seed=0).build()


def test_generator_is_deterministic_across_processes(quality_set, tmp_path):
    out = tmp_path / "q.jsonl"
    code = f"import sys; sys.path.insert(0, 'bench'); from dedup_data import QualitySet, write_jsonl; " \
           f"from pathlib import Path; write_jsonl(QualitySet(seed=0).build(), Path({str(out)!r}))"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    here = "".join(json.dumps(d.__dict__, ensure_ascii=False) + "\n" for d in quality_set)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(here.encode()).hexdigest()


def test_cs336_fixtures_and_copies_are_labelled(quality_set):
    cluster = {d.id: d.cluster for d in quality_set}
    assert cluster[RAILS] == cluster[REACT] != cluster[TORCH]
    assert cluster[DOC1] == cluster[DOC2]
    assert cluster[TAG_PAGE] != cluster[OTHER_TAG_PAGE]
    copies = [d for d in quality_set if "~copy" in d.id]
    assert copies and all(cluster[d.origin] == d.cluster and d.text != "" and d.edits for d in copies)
    siblings = [d for d in quality_set if d.id.startswith("template-")]
    assert len({d.cluster for d in siblings}) == len(siblings)  # same template, different documents
    assert len({d.id for d in quality_set}) == len(quality_set)
